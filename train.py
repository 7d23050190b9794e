"""Train a bel reranker with Accelerate (logic in `bel.training`).

accelerate launch train.py --dataset ncbi-disease --data-dir ../shared/data --mode sentence --output-dir runs/x
ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 --num_machines 1 train.py ...  # 2 CPU ranks
"""

from __future__ import annotations

import argparse
import logging
import sys

from bel.training import add_train_arguments, config_from_args, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    best = train(config_from_args(args))
    logging.getLogger("train").info("best checkpoint: %s", best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
