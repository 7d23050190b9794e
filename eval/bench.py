"""Speed benchmark entry point (same options as `bel bench`; see `bel.benchmark` for the JSON keys).

The recorded benchmarks run through eval/recipes/speed_bench.sh, which writes a run folder under eval/runs/:

    python eval/bench.py --dataset ncbi-disease --split test --num-candidates 16 --output eval/runs/NAME/bench.json
"""

from __future__ import annotations

import sys

from bel.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
