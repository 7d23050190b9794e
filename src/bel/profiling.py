"""Where the time of a whole `bel link` run goes: documents/s, mentions/s, peak RSS and seconds per stage.

`profile_link` runs `bel.linking.link_file` (what `bel link` does with one process) over a corpus in this process,
from raw text (``detect_mentions=True``: the checkpoint's detector finds the mentions) or from the corpus's given
spans, and splits its wall time into stages:

- ``read``: parsing the input and hashing it for resumption (`bel.linking`),
- ``detect``, ``retrieve``, ``prepare`` (building the reranker's inputs), ``pack``, ``forward``, ``postprocess``: the
  pipeline's own `stage_seconds`,
- ``write``: appending records to the work file (JSON, fsync, progress sidecar),
- ``merge``: verifying the work file and writing the final output,
- ``other``: the rest (the pipeline's input checks and batching, locks, setting the run up).

`profile_in_subprocess` runs one configuration in a fresh interpreter (``python -m bel.profiling``) so that its peak
RSS (``ru_maxrss``, which only grows) is that configuration's own; `profile_configurations` interleaves several
configurations `repeats` times and reports the median of each figure (`median_profile`).
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

PIPELINE_STAGES = ("detect", "retrieve", "prepare", "pack", "forward", "postprocess")
STAGES = ("read", *PIPELINE_STAGES, "write", "merge", "other")
WARM_UP_DOCUMENTS = 3


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports ru_maxrss in KiB, macOS in bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def profile_link(
    linker,
    corpus: str | os.PathLike,
    *,
    detect_mentions: bool,
    input_format: str | None = None,
    batch_size: int = 8,
    cascade: bool | None = None,
    warm_up: int = WARM_UP_DOCUMENTS,
) -> dict:
    """Link `corpus` once with `linker` into a temporary JSONL file and profile the run (see the module docstring).

    The first `warm_up` documents are linked beforehand (loading the detector, building the dictionary matcher) and
    that one-time cost is reported apart as `warm_up_seconds`."""
    from bel.linking import INPUT_FORMATS, guess_format, link_file

    corpus = Path(corpus)
    fmt = input_format or guess_format(corpus, INPUT_FORMATS)
    options = {"batch_size": batch_size, "detect_mentions": detect_mentions, "cascade": cascade}
    warm_up_seconds = _warm_up(linker, corpus, fmt, warm_up, options)
    linker.stage_seconds.clear()
    steps: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bel-profile-") as workdir:
        output = Path(workdir) / "linked.jsonl"
        started = time.perf_counter()
        link_file(linker, corpus, output, input_format=fmt, stage_seconds=steps, **options)
        seconds = time.perf_counter() - started
        documents, mentions, decided_by = count_output(output)
    stages = stage_breakdown(seconds, steps, linker.stage_seconds)
    return {
        "documents": documents,
        "mentions": mentions,
        "seconds": seconds,
        "documents_per_second": documents / seconds if seconds else 0.0,
        "mentions_per_second": mentions / seconds if seconds else 0.0,
        "peak_rss_mb": peak_rss_mb(),
        "warm_up_seconds": warm_up_seconds,
        "stage_seconds": stages,
        "stage_shares": stage_shares(stages),
        "pipeline_seconds": steps.get("link", 0.0),
        "decided_by": decided_by,
    }


def _warm_up(linker, corpus: Path, fmt: str, count: int, options: dict) -> float:
    from bel.linking import iter_documents, pipeline_input

    if count <= 0:
        return 0.0
    documents = [d for _, d in zip(range(count), iter_documents(corpus, fmt, errors="collect"), strict=False)]
    items = [pipeline_input(d, options["detect_mentions"]) for d in documents if hasattr(d, "passages")]
    extra = {} if options["cascade"] is None else {"cascade": options["cascade"]}
    started = time.perf_counter()
    if items:
        linker(items, batch_size=options["batch_size"], errors="collect", **extra)
    return time.perf_counter() - started


def count_output(path: Path) -> tuple[int, int, dict[str, int]]:
    """Documents and mentions of a JSONL output of `bel link`, and how many mentions each stage decided."""
    documents, mentions, decided_by = 0, 0, collections.Counter()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            documents += 1
            mentions += len(record["mentions"])
            decided_by.update(m.get("decided_by", "reranker") for m in record["mentions"])
    return documents, mentions, dict(sorted(decided_by.items()))


def stage_breakdown(wall: float, steps: dict[str, float], pipeline: dict[str, float]) -> dict[str, float]:
    """Seconds per stage of STAGES from the run's steps (`bel.linking`) and the pipeline's `stage_seconds`;
    `other` is what they leave of the wall time (never below 0)."""
    stages = {"read": steps.get("read", 0.0)}
    stages.update({name: pipeline.get(name, 0.0) for name in PIPELINE_STAGES})
    stages["write"] = steps.get("write", 0.0)
    stages["merge"] = steps.get("merge", 0.0)
    stages["other"] = max(0.0, wall - sum(stages.values()))
    return stages


def stage_shares(stages: dict[str, float]) -> dict[str, float]:
    """Each stage's fraction of the total (rounded to 4 decimals)."""
    total = sum(stages.values())
    return {name: round(value / total, 4) if total else 0.0 for name, value in stages.items()}


# ---------------------------------------------------------------------------------------------------- subprocesses
def profile_in_subprocess(
    checkpoint: str | os.PathLike,
    corpus: str | os.PathLike,
    *,
    detect_mentions: bool,
    threads: int | None = None,
    backend: str = "torch",
    cascade: bool | None = None,
    input_format: str | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    timeout: float = 6 * 3600,
) -> dict:
    """`profile_link` of one configuration in a fresh interpreter (its own peak RSS); the result gains
    `load_seconds` (loading the checkpoint)."""
    with tempfile.TemporaryDirectory(prefix="bel-profile-") as workdir:
        result_file = Path(workdir) / "profile.json"
        command = [sys.executable, "-m", "bel.profiling", str(checkpoint), str(corpus), "--output", str(result_file)]
        command += ["--backend", backend, "--batch-size", str(batch_size), "--device", device]
        command += ["--detect-mentions"] if detect_mentions else []
        command += ["--threads", str(threads)] if threads else []
        command += ["--input-format", input_format] if input_format else []
        command += [] if cascade is None else ["--cascade" if cascade else "--no-cascade"]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"profiling subprocess failed ({completed.returncode}): {completed.stderr[-2000:]}")
        return json.loads(result_file.read_text(encoding="utf-8"))


def profile_configurations(
    checkpoint: str | os.PathLike, corpus: str | os.PathLike, configurations: dict[str, dict], repeats: int = 1
) -> dict[str, dict]:
    """Run every configuration (name -> keyword arguments of `profile_in_subprocess`) `repeats` times, interleaved,
    each run in a fresh subprocess; the median profile of each (`median_profile`)."""
    runs: dict[str, list[dict]] = {name: [] for name in configurations}
    for repeat in range(repeats):
        for name, options in configurations.items():
            logger.info("profiling %s (run %d of %d)", name, repeat + 1, repeats)
            runs[name].append(profile_in_subprocess(checkpoint, corpus, **options))
    return {name: median_profile(profiles) for name, profiles in runs.items()}


def median_profile(profiles: Sequence[dict]) -> dict:
    """The median of each timing and memory figure of repeated profiles of one configuration (counts from the
    first; every run links the same input); `seconds_all` keeps each run's wall time."""
    first = profiles[0]
    seconds = statistics.median(p["seconds"] for p in profiles)
    stages = {name: statistics.median(p["stage_seconds"][name] for p in profiles) for name in first["stage_seconds"]}
    result = {**first, "seconds": seconds, "seconds_all": [p["seconds"] for p in profiles]}
    result["documents_per_second"] = first["documents"] / seconds if seconds else 0.0
    result["mentions_per_second"] = first["mentions"] / seconds if seconds else 0.0
    for key in ("peak_rss_mb", "warm_up_seconds", "load_seconds", "pipeline_seconds"):
        if key in first:
            result[key] = statistics.median(p[key] for p in profiles)
    result["stage_seconds"] = stages
    result["stage_shares"] = stage_shares(stages)
    result["repeats"] = len(profiles)
    return result


def subset_corpus(corpus: str | os.PathLike, count: int, directory: str | os.PathLike, input_format: str) -> Path:
    """A copy of the first `count` documents of `corpus` in `directory` (PubTator: blank-line separated blocks;
    line-mode txt and JSONL: non-empty lines), under the same file name so the format guess still holds."""
    source = Path(corpus)
    Path(directory).mkdir(parents=True, exist_ok=True)
    target = Path(directory) / source.name
    text = source.read_text(encoding="utf-8")
    if input_format == "pubtator":
        blocks = [block for block in text.strip().split("\n\n") if block.strip()][:count]
        target.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    elif input_format in ("txt", "jsonl"):
        lines = [line for line in text.splitlines() if line.strip()][:count]
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        raise ValueError(f"--max-documents is not supported for {input_format} input; pass a smaller file.")
    return target


# ---------------------------------------------------------------------------------------------------- child process
def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bel.profiling", description="Profile one `bel link` run.")
    parser.add_argument("checkpoint")
    parser.add_argument("corpus")
    parser.add_argument("--output", required=True, help="JSON file the profile is written to")
    parser.add_argument("--detect-mentions", action="store_true", help="link from raw text (else the given spans)")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--input-format", default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    cascade = parser.add_mutually_exclusive_group()
    cascade.add_argument("--cascade", dest="cascade", action="store_true", default=None)
    cascade.add_argument("--no-cascade", dest="cascade", action="store_false")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the child process of `profile_in_subprocess`: load, profile, write the JSON."""
    import torch

    from bel.saving import load_linker

    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    backend = {} if args.backend == "torch" else {"backend": args.backend}
    linker = load_linker(args.checkpoint, device=args.device, **backend)
    load_seconds = time.perf_counter() - started
    result = profile_link(
        linker,
        args.corpus,
        detect_mentions=args.detect_mentions,
        input_format=args.input_format,
        batch_size=args.batch_size,
        cascade=args.cascade,
    )
    result.update(load_seconds=load_seconds, threads=torch.get_num_threads(), backend=args.backend, device=args.device)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
