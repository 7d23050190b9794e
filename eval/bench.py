"""Speed benchmark entry point (same options as `bel bench`; see `bel.benchmark` for the JSON keys).

    python eval/bench.py --dataset ncbi-disease --split test --num-candidates 16 --output eval/bench_ncbi_test.json
"""

from __future__ import annotations

import sys

from bel.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
