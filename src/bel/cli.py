"""The `bel` command line: `bel train|align|eval|bench|link|demo|push|soup`, each with `--help`.

Each subcommand lives in its own module `bel.commands.<name>` exposing `add_arguments(parser)` and `run(args) -> int`;
`add_arguments` imports only light modules (options shared between subcommands come from `bel.commands.options`) and
`run` imports the heavy ones (torch, training, ...) when the subcommand runs, so `bel link` never pays for training.

Errors: a user mistake raised by a subcommand (ValueError, FileNotFoundError, PermissionError, IsADirectoryError,
NotADirectoryError) prints one line `bel COMMAND: error: MESSAGE` on stderr and exits 2, like a usage error; any
other OSError (disk full, read-only file system, I/O error: the environment, not the command line) exits 1 the same
way; Ctrl-C exits 130 without a traceback. `--debug` (on every subcommand, or before it) re-raises for the full
traceback. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
EXIT_USER_ERROR, EXIT_ENVIRONMENT_ERROR, EXIT_INTERRUPTED = 2, 1, 130
DEBUG_HELP = "show the full traceback of an error instead of one line"

SUBCOMMANDS = {
    "train": "Train a reranker (Accelerate; also `accelerate launch train.py`).",
    "align": "Synonym-align an encoder on a KB's names (an --encoder for train and dense retrieval).",
    "eval": "Evaluate a checkpoint or the retriever on a dataset split.",
    "bench": "Time every packing mode on the same candidates.",
    "link": "Link mentions in .txt / PubTator / BioC / JSONL files with a checkpoint.",
    "demo": "Train (or reuse) a small model on NCBI Disease and link an example sentence.",
    "push": "Upload a saved checkpoint directory to the Hugging Face Hub.",
    "soup": "Average the weights of checkpoints trained from one start (a model soup) into one checkpoint.",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bel", description="Fast biomedical entity linking.")
    parser.add_argument("--log-level", default="INFO", type=_log_level, help="Logging level (default: INFO).")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in SUBCOMMANDS.items():
        subparser = commands.add_parser(name, help=summary, description=summary)
        _module(name).add_arguments(subparser)
        # SUPPRESS: unset when not given here, so `bel --debug eval ...` keeps the top-level value
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def _log_level(text: str) -> str:
    level = text.upper()
    if not isinstance(logging.getLevelName(level), int):
        raise argparse.ArgumentTypeError(f"unknown level {text!r} (use DEBUG, INFO, WARNING or ERROR)")
    return level


def _module(name: str):
    return importlib.import_module(f"bel.commands.{name}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(_module(args.command).run(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"bel {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (*USER_ERRORS, OSError) as error:
        if args.debug:
            raise
        print(f"bel {args.command}: error: {_one_line(error)}", file=sys.stderr)
        print("(run with --debug for the traceback)", file=sys.stderr)
        return EXIT_USER_ERROR if isinstance(error, USER_ERRORS) else EXIT_ENVIRONMENT_ERROR


def _one_line(error: BaseException) -> str:
    """The error's message on one line (an OSError without its own text is described by its errno)."""
    text = str(error) or type(error).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
