"""`bel soup CKPT CKPT ... --output-dir DIR`: one checkpoint with the mean weights of several (see `bel.souping`)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoints",
        nargs="+",
        help="two or more saved linkers (OUTPUT/best) or detector folders of one configuration, trained from one "
        "start (e.g. the same `bel train` command with other --seed values)",
    )
    parser.add_argument("--output-dir", required=True, help="where to write the souped checkpoint (new or empty)")


def run(args: argparse.Namespace) -> int:
    from bel.souping import soup_checkpoints

    print(soup_checkpoints(args.checkpoints, args.output_dir))
    return 0
