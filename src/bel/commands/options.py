"""Command-line options shared by the `bel` subcommands, each declared once with the same help everywhere.

Values are checked by argparse while parsing (choices, positive numbers, comma-separated lists), so a bad option
fails at once with a usage error and exit code 2 instead of deep inside a command after everything is loaded.
It imports nothing beyond what `import bel` already loads, so `--help` pays for no extra module.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from bel.configuration_bel import LOSSES, PACKING_MODES, SLOT_POOLINGS, TEMPLATES
from bel.data.datasets import DATASETS, SPLITS


def positive_int(text: str) -> int:
    """argparse `type=` for an integer >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse `type=` for an integer >= 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None


def choice_list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """argparse `type=` for one or more comma-separated values from `choices` (`pair,mention`); use it with
    `nargs="+"` and `action=FlattenAction` so space- and comma-separated lists mix (`--modes pair,mention sentence`)."""

    def parse(text: str) -> list[str]:
        values = [value.strip() for value in text.split(",") if value.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"expected one or more of {', '.join(choices)}")
        for value in values:
            if value not in choices:
                raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from {', '.join(choices)})")
        return values

    parse.__name__ = "choice list"
    return parse


class FlattenAction(argparse.Action):
    """Store the values of a `nargs="+"` option whose `type` returns lists as one flat list, duplicates removed."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        flat = [value for group in values for value in group]
        setattr(namespace, self.dest, list(dict.fromkeys(flat)))


def add_data_arguments(
    parser: argparse.ArgumentParser, *, dataset_help: str = "dataset", split: bool = True, files: bool = True
) -> None:
    """`--data-dir`, `--dataset` and, unless disabled, `--split`, `--corpus-file` and `--kb-file`."""
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="corpora directory (default: $BEL_DATA_DIR, else ../shared/data beside the repository)",
    )
    parser.add_argument(
        "--dataset",
        default="ncbi-disease",
        choices=DATASETS,
        metavar="DATASET",
        help=f"{dataset_help}: {', '.join(DATASETS)} (default: ncbi-disease)",
    )
    if split:
        parser.add_argument(
            "--split",
            default="test",
            choices=SPLITS,
            metavar="SPLIT",
            help=f"split of --dataset: {', '.join(SPLITS)} (default: test)",
        )
    if files:
        parser.add_argument("--corpus-file", metavar="FILE", help="explicit PubTator file instead of --dataset/--split")
        add_kb_file_argument(parser)


KB_FILE_HELP = (
    "explicit KB file (any format bel.kb reads) instead of the dataset's; a checkpoint whose retriever indexes another "
    "KB gets its retriever rebuilt from this one, without its training aliases, and the log says so"
)


def add_kb_file_argument(parser: argparse.ArgumentParser) -> None:
    """`--kb-file`: one meaning in every subcommand (a KB swap for a trained linker is logged, never ignored)."""
    parser.add_argument("--kb-file", metavar="FILE", help=KB_FILE_HELP)


def add_encoder_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--encoder",
        default=None,
        help="Hub id or local directory of the encoder of a fresh model (default: the bundled all-MiniLM-L6-v2)",
    )


def add_packing_arguments(
    parser: argparse.ArgumentParser, *, mode: str | None = None, template: str | None = None
) -> None:
    """`--mode` and `--template`; a None default means the checkpoint's own."""
    for name, choices, default in (("mode", PACKING_MODES, mode), ("template", TEMPLATES, template)):
        parser.add_argument(
            f"--{name}",
            default=default,
            choices=choices,
            metavar=name.upper(),
            help=f"packing {name}: {', '.join(choices)} (default: {_default(default)})",
        )


def add_num_candidates_argument(parser: argparse.ArgumentParser, *, default: int | None = None) -> None:
    """`--num-candidates`; a None default means the checkpoint's own."""
    parser.add_argument(
        "--num-candidates",
        type=positive_int,
        default=default,
        metavar="N",
        help=f"retrieved candidates per mention (default: {_default(default)})",
    )


def _default(value) -> str:
    return "the checkpoint's" if value is None else str(value)


def add_mode_list_arguments(parser: argparse.ArgumentParser) -> None:
    """`--modes` and `--templates`: space- or comma-separated lists, checked while parsing."""
    for name, choices in (("modes", PACKING_MODES), ("templates", TEMPLATES)):
        parser.add_argument(
            f"--{name}",
            type=choice_list(choices),
            nargs="+",
            action=FlattenAction,
            default=list(choices),
            metavar=name.removesuffix("s").upper(),
            help=f"packing {name} timed, space- or comma-separated (default: all: {','.join(choices)})",
        )


def add_count_arguments(
    parser: argparse.ArgumentParser,
    counts: Sequence[tuple[str, int | None, str]],
    *,
    kind: Callable[[str], int] = positive_int,
    metavar: str = "N",
) -> None:
    """Integer options from a table of `(flag, default, help)`, each parsed by `kind` (positive integers by default)."""
    for flag, default, text in counts:
        parser.add_argument(flag, type=kind, default=default, metavar=metavar, help=text)


DETECTORS = ("auto", "model", "dictionary")


def add_detector_argument(parser: argparse.ArgumentParser) -> None:
    """`--detector`; None (not given) leaves the pipeline's own default, "auto"."""
    parser.add_argument(
        "--detector",
        default=None,
        choices=DETECTORS,
        metavar="DETECTOR",
        help="what finds mentions in raw text: auto (the checkpoint's learned detector when it has one, else the "
        "dictionary), model or dictionary (default: auto)",
    )


BACKENDS = ("torch", "int8", "onnx")  # bel.backends_bel.BACKENDS plus bel.onnx_backend's "onnx"


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """`--backend`: how the reranker (and the learned detector) run; checked by argparse, installed-ness at load."""
    parser.add_argument(
        "--backend",
        default="torch",
        choices=BACKENDS,
        metavar="BACKEND",
        help="inference backend: torch (fp32, default), int8 (dynamic int8 linear layers, CPU) or onnx (the encoder "
        "exported once to ONNX, cached, run by onnxruntime; needs pip install 'bel-linking[onnx]')",
    )


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """`--backend`, `--device` and `--no-cascade`: how and where the models run, and whether the cascade is on."""
    add_backend_argument(parser)
    add_device_argument(parser)
    add_cascade_argument(parser)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """`--device`: where the models run (see [`device_for`])."""
    parser.add_argument(
        "--device",
        default="auto",
        metavar="DEVICE",
        help="cpu, cuda, cuda:N or auto (default: this process's GPU, cuda:$LOCAL_RANK, when torch sees one, else "
        "cpu); the int8 and onnx backends run on the CPU",
    )


def device_for(args: argparse.Namespace) -> str:
    """The torch device of `--device` (auto: `cuda:$LOCAL_RANK` when CUDA is there, else cpu), checked against
    `--backend`: int8 (torch dynamic quantisation) and onnx (onnxruntime's CPU provider) run on the CPU only."""
    import torch

    device = getattr(args, "device", "auto") or "auto"
    if device == "auto":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    backend = getattr(args, "backend", "torch")
    if device != "cpu" and backend != "torch":
        raise ValueError(
            f"--backend {backend} runs on the CPU only: pass --device cpu, or --backend torch on {device}."
        )
    return device


def add_cascade_argument(parser: argparse.ArgumentParser) -> None:
    """`--no-cascade`: rerank every mention (`args.cascade` False); unset, None means the checkpoint's config.cascade."""
    parser.add_argument(
        "--no-cascade",
        dest="cascade",
        action="store_const",
        const=False,
        default=None,
        help="rerank every mention, also those the retriever decides alone (a unique exact name match); default: "
        "the checkpoint's config.cascade",
    )


def add_repeated_names_argument(parser: argparse.ArgumentParser) -> None:
    """`--repeated-names first|pool|each`; unset, None means the checkpoint's config.repeated_names."""
    from bel.consistency_bel import REPEATED_NAMES_MODES

    parser.add_argument(
        "--repeated-names",
        choices=REPEATED_NAMES_MODES,
        default=None,
        help="mentions of one document that repeat a name (same query, same candidates): first (rerank the first, "
        "the others take its link), pool (rerank all, share their mean probabilities) or each (link every one "
        "alone); default: the checkpoint's config.repeated_names, else first",
    )


def check_backend_installed(args: argparse.Namespace) -> None:
    """Refuse `--backend onnx` in one line before anything is loaded when onnxruntime or the exporter is missing."""
    if getattr(args, "backend", "torch") == "onnx":
        from bel.onnx_backend import require_onnx

        require_onnx()


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """`--threads` (torch intra-op threads) and `--no-progress` (silences every progress bar)."""
    parser.add_argument(
        "--threads", type=positive_int, default=None, metavar="N", help="torch threads (default: torch's choice)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide every progress bar")


@contextlib.contextmanager
def runtime(args: argparse.Namespace) -> Iterator[None]:
    """Apply `--threads` and `--no-progress` (see [`add_runtime_arguments`]) while a command runs, then restore them:
    torch's thread count, and the progress bars of transformers (weight loading) and huggingface_hub (downloads)."""
    import torch
    import transformers.utils.logging as transformers_logging
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    threads = torch.get_num_threads()
    bars = (transformers_logging.is_progress_bar_enabled(), not are_progress_bars_disabled())
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    if getattr(args, "no_progress", False):
        transformers_logging.disable_progress_bar()
        disable_progress_bars()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if bars[0]:
            transformers_logging.enable_progress_bar()
        if bars[1]:
            enable_progress_bars()


def check_output_file(path: str | os.PathLike | None, option: str = "--output") -> None:
    """Fail before any work when `path` (the value of `option`) cannot be written: it is a directory, a parent is a
    file, or its folder is not writable (permissions, read-only file system). The folder is probed by creating and
    removing a temporary file in it (or in its nearest existing parent: missing folders are created on write)."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"{option} {target} is a directory; pass a file path (e.g. {target / 'result.json'}).")
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(f"{option} {target}: {folder} is a file, not a folder; pass a path in a folder.")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".bel-write-check-"):
            pass
    except OSError as error:
        raise PermissionError(
            f"{option} {target} cannot be written: {folder} is not writable ({error.strerror or error}); "
            "pass a path in a writable folder."
        ) from error
    if target.exists() and not os.access(target, os.W_OK):
        raise PermissionError(f"{option} {target} exists and is read-only; pass another path or make it writable.")


OUTPUTS = {  # what a command writes to --output: required, metavar, help
    "json": (False, "FILE.json", "write the JSON result here (default: stdout)"),
    "documents": (True, "FILE", "output file of the linked documents; written atomically when every document is done"),
}


def add_output_argument(parser: argparse.ArgumentParser, result: str = "json") -> None:
    """`--output` of a command writing `result`, a key of OUTPUTS (a JSON result by default)."""
    required, metavar, text = OUTPUTS[result]
    parser.add_argument("--output", required=required, metavar=metavar, help=text)


# The options of `bel train` are declared by bel.training.add_train_arguments (shared with `train.py`); these are the
# checks `bel train` adds to them while they lack their own.
TRAIN_CHOICES = {
    "dataset": DATASETS,
    "mode": PACKING_MODES,
    "template": TEMPLATES,
    "loss": LOSSES,
    "slot_pooling": SLOT_POOLINGS,
    "stage": ("linker", "detector", "both"),
    "detector_context": ("passage", "document"),
}
TRAIN_POSITIVE = (
    "num_candidates",
    "batch_size",
    "max_sequence_length",
    "max_train_documents",
    "eval_max_documents",
    "eval_max_tokens",
    "gradient_accumulation_steps",
    "detector_epochs",
    "detector_batch_size",
    "kb_examples_count",
    "kb_dev_mentions",
    "max_names_per_entity",
    "neighbours",
)


def restrict_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add choices and positive-integer checks to the options of `bel train` that do not declare them yet."""
    for action in parser._actions:  # argparse has no public accessor for a parser's actions
        if action.dest in TRAIN_CHOICES and action.choices is None:
            action.choices = TRAIN_CHOICES[action.dest]
            if not all(choice in (action.help or "") for choice in action.choices):
                action.help = f"{action.help} (one of {', '.join(action.choices)})"
        elif action.dest in TRAIN_POSITIVE and action.type is int:
            action.type = positive_int


def add_dataclass_arguments(parser: argparse.ArgumentParser, options: type) -> None:
    """One flag per field of the dataclass ``options`` (``--field-name``; help from the field's ``help`` metadata)."""
    defaults = options()
    for option in dataclasses.fields(options):
        flag = "--" + option.name.replace("_", "-")
        default = getattr(defaults, option.name)
        text = option.metadata.get("help", f"default: {default}")
        if option.type in ("bool", "bool | None"):  # None: the option decides from the rest of the run
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=text)
            continue
        kind = {"int": int, "float": float}.get(option.type.replace(" | None", ""), str)
        parser.add_argument(flag, type=kind, default=default, help=text)


def dataclass_from_args(options: type, args: argparse.Namespace):
    """An ``options`` dataclass filled from the parsed flags of :func:`add_dataclass_arguments`."""
    return options(**{option.name: getattr(args, option.name) for option in dataclasses.fields(options)})
