"""`bel link MODEL INPUT --output OUT`: link mentions in .txt / PubTator / BioC / JSONL files with a checkpoint.

Runs in bounded memory (documents stream through in batches), resumes after a crash (rerun the same command), and
shards over processes: `ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 --num_machines 1
-m bel link ...` (or torchrun) gives each process the documents i with i % world == rank; the main process merges.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from bel.commands import options

logger = logging.getLogger(__name__)
# fields of bel.linking.LinkSettings given by the option of the same name
SETTINGS_FROM_OPTIONS = ("batch_size", "top_k", "txt_mode", "detect_mentions", "detector")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bel.linking import INPUT_FORMATS, OUTPUT_FORMATS

    parser.add_argument("model", help="checkpoint directory (saved with bel.save_linker) or Hub repo id")
    parser.add_argument("input", help="input file (.txt, .pubtator, BioC .xml/.json, .jsonl)")
    options.add_output_argument(parser, "documents")
    parser.add_argument("--input-format", choices=INPUT_FORMATS, default=None, help="default: from the extension")
    parser.add_argument(
        "--output-format",
        choices=OUTPUT_FORMATS,
        default=None,
        help="default: from the output extension (jsonl when unknown)",
    )
    options.add_count_arguments(parser, [("--batch-size", 8, "documents linked per batch (default: 8)")])
    options.add_count_arguments(
        parser,
        [("--top-k", 5, "candidates kept per mention in JSONL output (default: 5)")],
        kind=options.non_negative_int,
        metavar="K",
    )
    parser.add_argument(
        "--txt-mode",
        choices=("line", "file"),
        default="line",
        help="for .txt input: one document per non-empty line (default) or the whole file",
    )
    parser.add_argument(
        "--detect-mentions",
        action="store_true",
        help="ignore given mentions and detect them (always on for .txt); see --detector",
    )
    parser.add_argument(
        "--detector",
        choices=("auto", "model", "dictionary"),
        default="auto",
        help="what detects mentions in raw text: the checkpoint's learned detector when it has one, else the "
        "dictionary matcher (auto, default), or force one",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    import torch

    from bel.linking import (
        INPUT_FORMATS,
        OUTPUT_FORMATS,
        LinkSettings,
        guess_format,
        link_shard,
        merge_shards,
        wait_for_shards,
    )
    from bel.saving import load_linker

    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    source, output = Path(args.input), Path(args.output)
    try:
        if not source.is_file():
            raise ValueError(f"input file {source} does not exist.")
        input_format = args.input_format or guess_format(source, INPUT_FORMATS)
        try:
            output_format = args.output_format or guess_format(output, OUTPUT_FORMATS)
        except ValueError:
            output_format = "jsonl"
        settings = LinkSettings(
            model=args.model,
            input=source,
            output=output,
            input_format=input_format,
            output_format=output_format,
            **{name: getattr(args, name) for name in SETTINGS_FROM_OPTIONS},
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        if world > 1:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        linker = load_linker(args.model)
        link_shard(linker, settings, rank=rank, world=world, progress=not args.no_progress)
        if rank == 0:
            if world > 1:
                wait_for_shards(settings, world)
            merge_shards(settings, world)
            print(output)
    except ValueError as error:
        print(f"bel link: error: {error}", file=sys.stderr)
        return 2
    return 0
