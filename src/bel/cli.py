"""The `bel` command line: `bel train|eval|bench|link|demo|push`, each with `--help`.

Each subcommand lives in its own module `bel.commands.<name>` exposing `add_arguments(parser)` and `run(args) -> int`;
`add_arguments` imports only light modules (options shared between subcommands come from `bel.commands.options`) and
`run` imports the heavy ones (torch, training, ...) when the subcommand runs, so `bel link` never pays for training.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

SUBCOMMANDS = {
    "train": "Train a reranker (Accelerate; also `accelerate launch train.py`).",
    "eval": "Evaluate a checkpoint or the retriever on a dataset split.",
    "bench": "Time every packing mode on the same candidates.",
    "link": "Link mentions in .txt / PubTator / BioC / JSONL files with a checkpoint.",
    "demo": "Train (or reuse) a small model on NCBI Disease and link an example sentence.",
    "push": "Upload a saved checkpoint directory to the Hugging Face Hub.",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bel", description="Fast biomedical entity linking.")
    parser.add_argument("--log-level", default="INFO", help="Logging level (default: INFO).")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in SUBCOMMANDS.items():
        _module(name).add_arguments(commands.add_parser(name, help=summary, description=summary))
    return parser


def _module(name: str):
    return importlib.import_module(f"bel.commands.{name}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    return int(_module(args.command).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
