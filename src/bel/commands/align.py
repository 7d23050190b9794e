"""`bel align`: synonym-align an encoder on a knowledge base (SapBERT-style); the result is an `--encoder` for
`bel train` and the dense retriever. For several processes: `accelerate launch -m bel align ...`."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bel.alignment import AlignConfig
    from bel.commands.options import add_dataclass_arguments, restrict_train_arguments

    add_dataclass_arguments(parser, AlignConfig)
    restrict_train_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from bel.alignment import AlignConfig, align
    from bel.commands.options import dataclass_from_args

    print(align(dataclass_from_args(AlignConfig, args)))
    return 0
