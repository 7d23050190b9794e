"""`bel link MODEL INPUT --output OUT`: link mentions in .txt / PubTator / BioC / JSONL files with a checkpoint.

Runs in bounded memory (documents stream through in batches), resumes after a crash (rerun the same command), and
shards over processes: `ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 --num_machines 1
-m bel link ...` (or torchrun) gives each process the documents i with i % world == rank; the main process merges.
A rerun refuses a partial run made with another checkpoint, options or input (`--overwrite` starts over); a second
run on the same output exits at once (exit 2, naming the lock and its PID); `--on-error stop|skip` decides what a
bad record does. Path mistakes (missing model or input, a file as model, a directory or unwritable place as output,
the input as output) are one-line errors with exit 2 before any model is loaded, and so is `--backend onnx` without
onnxruntime. `--backend` (torch, int8, onnx), `--no-cascade` and `--repeated-names` are part of what a resumed run
must match.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import sys
from pathlib import Path

from bel.commands import options

logger = logging.getLogger(__name__)
ON_ERROR = ("stop", "skip")  # = bel.linking.ON_ERROR (not imported here: `--help` stays light)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")  # `name` or `org/name`


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
        help="for .txt input: one document per non-empty line (default) or the whole file. A line `ID<TAB>text` "
        "keeps ID as its document id (e.g. a PMID), any other line is `FILENAME:LINE`; in file mode the id is the "
        "file name without extension",
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
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="score each document independently of its batch: byte-identical output whatever --batch-size, at "
        "about 1.2x the time (without it, a few scores may differ by 1e-6 between batch sizes)",
    )
    _add_run_arguments(parser)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """What to do with bad records and partial runs, which KB, backend and cascade, threads and progress."""
    parser.add_argument(
        "--on-error",
        choices=ON_ERROR,
        default="stop",
        help="a record that cannot be read or linked: stop there (default; what was linked is kept, rerun after "
        "fixing the file to resume) or skip it, listing it in OUT.errors.jsonl (index, id, location, message)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="discard a partial run of this output (by default a rerun resumes it, and refuses when the checkpoint, "
        "the options or the already-linked part of the input differ)",
    )
    options.add_inference_arguments(parser)
    options.add_repeated_names_argument(parser)
    options.add_kb_file_argument(parser)
    options.add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from bel.cli import USER_ERRORS
    from bel.linking import is_disk_error

    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    try:
        settings = _settings(args)
        _link(args, settings, rank, world)
    except USER_ERRORS + (OSError,) as error:  # the mistakes `bel` reports for every command, on one line here
        disk = isinstance(error, OSError) and is_disk_error(error)
        if getattr(args, "debug", False) or not (disk or isinstance(error, USER_ERRORS)):
            raise
        kept = "; the documents linked so far are kept: fix this and rerun the same command to resume"
        print(f"bel link: error: {error}{kept if disk else ''}", file=sys.stderr)
        return 2
    if rank == 0:
        print(settings.output)
    return 0


def _settings(args: argparse.Namespace):
    """Check paths and formats (before any model is loaded) and build the run's settings."""
    from bel.linking import INPUT_FORMATS, OUTPUT_FORMATS, LinkSettings, guess_format

    source, output = Path(args.input), Path(args.output)
    check_paths(args.model, source, output, getattr(args, "kb_file", None))
    options.check_backend_installed(args)
    input_format = args.input_format or guess_format(source, INPUT_FORMATS)
    try:
        output_format = args.output_format or guess_format(output, OUTPUT_FORMATS)
    except ValueError:
        output_format = "jsonl"
    return LinkSettings(
        model=args.model,
        input=source,
        output=output,
        input_format=input_format,
        output_format=output_format,
        on_error=args.on_error,
        kb_file=Path(args.kb_file) if args.kb_file else None,
        command=shlex.join(["bel", *sys.argv[1:]]) if sys.argv[1:] else None,
        **{name: getattr(args, name) for name in settings_from_options()},
    )


def check_paths(model: str, source: Path, output: Path, kb_file: str | None = None) -> None:
    """The mistakes caught before loading anything, with the checks `bel eval` uses for the model and the output
    (a saved linker, or a Hub repo id; a writable file path) plus bel link's own: the input, and output = input."""
    from bel.saving import check_saved_linker

    if Path(model).expanduser().exists() or not HUB_ID.match(model):
        check_saved_linker(Path(model).expanduser())
    if not source.exists():
        raise ValueError(f"input file {source} does not exist.")
    if not source.is_file():
        raise ValueError(f"input {source} is not a file.")
    if kb_file is not None and not Path(kb_file).is_file():
        raise ValueError(f"--kb-file {kb_file} is not a file.")
    options.check_output_file(output, "--output")
    if source.resolve() == output.resolve() or (output.exists() and os.path.samefile(source, output)):
        raise ValueError(f"the output {output} is the input file; pass another --output (it would be overwritten).")
    output.parent.mkdir(parents=True, exist_ok=True)


def _link(args: argparse.Namespace, settings, rank: int, world: int) -> None:
    import torch

    from bel.linking import link_shard, merge_shards, prepare_run, run_lock, wait_for_shards
    from bel.saving import load_linker

    if world > 1 and not args.threads:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    with options.runtime(args), run_lock(settings, rank):
        if Path(args.model).is_dir():  # so that a run that cannot resume is refused before the model loads
            settings.resolve_checkpoint()
        prepare_run(settings, rank, world, overwrite=args.overwrite)
        try:
            device = options.device_for(args)
            linker = load_linker(args.model, device=device, kb_file=args.kb_file, backend=args.backend)
        except OSError as error:
            raise ValueError(f"cannot load the model {args.model}: {error}") from None
        link_shard(linker, settings, rank=rank, world=world, progress=not args.no_progress)
        if rank == 0:
            if world > 1:
                wait_for_shards(settings, world)
            merge_shards(settings, world, linker=linker)


def settings_from_options() -> tuple[str, ...]:
    """The fields of `bel.linking.LinkSettings` given by the option of the same name: the output-changing ones (bar
    the formats, which are guessed from the file names when not given) and the batch size."""
    from bel.linking import IDENTITY_OPTIONS

    return ("batch_size", *(name for name in IDENTITY_OPTIONS if not name.endswith("_format")))
