"""`bel push DIR REPO_ID`: upload a directory saved with `bel.save_linker` to the Hugging Face Hub in one commit."""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="checkpoint directory written by `bel train`, `bel demo` or save_linker")
    parser.add_argument("repo_id", help="target repository, e.g. my-org/bel-ncbi-minilm (created if missing)")
    parser.add_argument("--revision", default=None, help="branch to commit to (created if missing; default: main)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument(
        "--commit-message", default=None, help="commit message (default: Upload bel linker from DIRNAME)"
    )
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the cached login)")


def run(args: argparse.Namespace) -> int:
    from bel.saving import check_saved_linker, push_to_hub

    check_saved_linker(args.directory)  # before any network call

    url = push_to_hub(
        args.directory,
        args.repo_id,
        revision=args.revision,
        private=args.private,
        token=args.token,
        commit_message=args.commit_message,
    )
    print(url)
    return 0
