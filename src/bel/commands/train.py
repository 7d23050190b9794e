"""`bel train`: train a reranker in this process (for several processes use `accelerate launch train.py`)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bel.commands.options import restrict_train_arguments
    from bel.training import add_train_arguments

    add_train_arguments(parser)
    restrict_train_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from bel.saving import check_saved_linker
    from bel.training import config_from_args, train

    if getattr(args, "init_from", None):  # before the corpora and the retriever are built
        check_saved_linker(args.init_from)
    best = train(config_from_args(args))
    print(best)
    return 0
