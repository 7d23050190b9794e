"""`bel link` from raw text: documents per second with the learned detector vs the dictionary matcher, one run.

Example::

    python eval/link_speed.py runs/bc5cdr-end-to-end-linker/best "$BEL_DATA_DIR/bc5cdr/CDR_TestSet.PubTator.txt" \\
        --output eval/runs/bc5cdr-link-speed/link_speed.json

The checkpoint is loaded once; each detector is warmed up on a few documents (the detector's weights, the dictionary's
trie) and its one-time cost reported apart; then `bel.linking.link_file` links the whole file from raw text
(`detect_mentions=True`) with each detector in turn, `--repeats` times interleaved, and the median is reported.
`--repeated-names first each` times each of those settings too (interleaved with the detectors): the top-level
figures are the first setting's, `by_repeated_names` holds them all.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from bel.consistency_bel import REPEATED_NAMES_MODES
from bel.linking import iter_documents, link_file, pipeline_input
from bel.manifest import run_manifest
from bel.saving import load_linker

DETECTORS = ("model", "dictionary")


def warm_up(linker, path: Path, detector: str) -> float:
    """Seconds of the detector's first use (loading or building it) on three documents."""
    documents = [doc for _, doc in zip(range(3), iter_documents(path, "pubtator"), strict=False)]
    start = time.perf_counter()
    linker([pipeline_input(doc, detect=True) for doc in documents], detector=detector)
    return time.perf_counter() - start


def time_link(
    linker, path: Path, detector: str, workdir: Path, repeated_names: str | None = None
) -> tuple[float, int, int]:
    """Seconds to link `path` from raw text, documents and mentions written."""
    output = workdir / f"{detector}.jsonl"
    output.unlink(missing_ok=True)
    start = time.perf_counter()
    link_file(
        linker,
        path,
        output,
        input_format="pubtator",
        detect_mentions=True,
        detector=detector,
        repeated_names=repeated_names,
    )
    seconds = time.perf_counter() - start
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    return seconds, len(records), sum(len(r["mentions"]) for r in records)


def summary(timings: list[tuple[float, int, int]]) -> dict:
    seconds = statistics.median(t for t, _, _ in timings)
    return {
        "seconds_all": [t for t, _, _ in timings],
        "seconds": seconds,
        "documents": timings[0][1],
        "mentions": timings[0][2],
        "documents_per_second": timings[0][1] / seconds,
    }


def first_documents(path: Path, count: int, workdir: Path) -> Path:
    """A PubTator copy of the first `count` documents of `path` (blank-line separated)."""
    blocks = path.read_text(encoding="utf-8").strip().split("\n\n")[:count]
    subset = workdir / path.name
    subset.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return subset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="saved linker directory (with detector/)")
    parser.add_argument("input", type=Path, help="PubTator file; its mentions are ignored (raw text)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-documents", type=int, help="link only the first N documents (a temporary copy)")
    parser.add_argument(
        "--repeated-names",
        nargs="+",
        choices=REPEATED_NAMES_MODES,
        default=[None],
        help="pipeline settings to time (default: the checkpoint's)",
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    linker = load_linker(args.model)
    result = {
        "manifest": run_manifest(sys.argv),
        "checkpoint": args.model,
        "input": args.input.name,
        "threads": args.threads,
    }
    result["warm_up_seconds"] = {name: warm_up(linker, args.input, name) for name in DETECTORS}
    settings = [(mode, name) for mode in args.repeated_names for name in DETECTORS]
    runs: dict[tuple, list] = {setting: [] for setting in settings}
    with tempfile.TemporaryDirectory() as workdir:
        if args.max_documents:
            args.input = first_documents(args.input, args.max_documents, Path(workdir))
        for _ in range(args.repeats):
            for mode, name in settings:
                runs[mode, name].append(time_link(linker, args.input, name, Path(workdir), mode))
    by_mode = {}
    for mode in args.repeated_names:
        figures = {name: summary(runs[mode, name]) for name in DETECTORS}
        figures["detector_vs_dictionary"] = (
            figures["model"]["documents_per_second"] / figures["dictionary"]["documents_per_second"]
        )
        by_mode[mode or "checkpoint"] = figures
    result.update(next(iter(by_mode.values())))
    result["by_repeated_names"] = by_mode
    text = json.dumps(result, indent=2)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
