"""`bel link` from raw text, the release 50b4b58 against the current code: documents/s and time per stage, one run.

Example (one thread, all 500 BC5CDR test abstracts)::

    python eval/link_profile.py runs/bc5cdr-end-to-end-linker/best "$BEL_DATA_DIR/bc5cdr/CDR_TestSet.PubTator.txt" \\
        --release-dir /tmp/release-50b4b58 --output-dir eval/runs/link-profile-bc5cdr-500

The release's source is extracted into `--release-dir` with `git archive 50b4b58` when it is not there yet.

Configurations, each run in a fresh subprocess (its own peak RSS), interleaved `--repeats` times, medians reported:

- ``release``: the release's `bel.linking.link_file` (``PYTHONPATH=RELEASE/src``, same venv) on an equivalent
  checkpoint written into a temporary folder by `release_checkpoint`: the same weights, tokenizer and config, and the
  same retriever rows re-saved in the release's retriever format 1. The release has no learned detector: from raw
  text its dictionary matcher finds the mentions (so it links other mentions than the current code).
- ``current``: today's `bel.profiling.profile_link` with the checkpoint's defaults (learned detector, cascade on).
- ``current-int8`` (when the pipeline has the int8 backend): the same with ``backend="int8"``.

The release has no stage timers: its per-stage time comes from a separate run under cProfile, attributing the
cumulative time of known functions to the stages (`release_stages`) on the first `--profile-documents`
documents; its shares are scaled to the unprofiled wall time
(cProfile slows Python code more than the torch kernels, so Python-heavy stages are over-stated). Its documents/s is
always the unprofiled run's. This file imports only the standard library at the top: it runs as the release's child
process too (``--child``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RELEASE = "50b4b58"
STAGES = ("read", "detect", "retrieve", "prepare", "pack", "forward", "postprocess", "write", "merge", "other")
WARM_UP_DOCUMENTS = 3


# ---------------------------------------------------------------------------------------------------- release child
def release_child(checkpoint: str, corpus: str, output: str, profile: bool) -> None:
    """Link `corpus` from raw text with the release's code (on sys.path) and write its figures as JSON."""
    from bel.linking import iter_documents, link_file, pipeline_input
    from bel.saving import load_linker

    started = time.perf_counter()
    linker = load_linker(checkpoint)
    load_seconds = time.perf_counter() - started
    warm = [d for _, d in zip(range(WARM_UP_DOCUMENTS), iter_documents(Path(corpus), "pubtator"), strict=False)]
    started = time.perf_counter()
    linker([pipeline_input(d, True) for d in warm])  # builds the dictionary matcher, loads the retriever
    warm_up_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="bel-release-") as workdir:
        target = Path(workdir) / "linked.jsonl"
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        link_file(linker, corpus, target, input_format="pubtator", detect_mentions=True)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - started
        records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    mentions = sum(len(r["mentions"]) for r in records)
    result = {
        "documents": len(records),
        "mentions": mentions,
        "seconds": seconds,
        "documents_per_second": len(records) / seconds,
        "mentions_per_second": mentions / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "warm_up_seconds": warm_up_seconds,
        "load_seconds": load_seconds,
        "decided_by": {"reranker": mentions},  # the release reranks every mention
        "code": str(Path(sys.modules["bel"].__file__).parent),
    }
    if profiler:
        result["profiled_stage_seconds"] = release_stages(pstats.Stats(profiler), seconds)
    Path(output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _cumulative(stats: pstats.Stats, file_suffix: str, function: str) -> float:
    """Cumulative seconds of `function` defined in a file ending with `file_suffix` (the outermost one when the
    file defines several of that name: they may nest, e.g. a tokenizer's `pack` calling a packer's `pack`)."""
    times = [
        entry[3]
        for (filename, _, name), entry in stats.stats.items()
        if name == function and filename.endswith(file_suffix)
    ]
    return max(times, default=0.0)


def release_stages(stats: pstats.Stats, wall: float) -> dict[str, float]:
    """The release's run split into STAGES from cProfile's cumulative times (bel/ file, function):
    read: linking iter_documents; detect: MentionMatcher.find; retrieve: retriever search plus abbreviation finding
    and expansion; pack: BelTokenizer.pack; forward: the rest of model.score (padding, forward, logits); prepare: the
    rest of the pipeline's `_forward_many`; postprocess: the pipeline's postprocess; write: the batch writer `flush`
    minus the pipeline call inside it; merge: merge_shards; other: what is left of `wall`."""

    def cum(suffix: str, name: str) -> float:
        return _cumulative(stats, f"bel/{suffix}", name)

    retrieve = (
        cum("retrieval_bel.py", "search")
        + cum("retrieval_bel.py", "find_abbreviations")
        + cum("retrieval_bel.py", "expand_abbreviations")
    )
    pack = cum("tokenization_bel.py", "pack")
    score = cum("modeling_bel.py", "score")
    stages = {
        "read": cum("linking.py", "iter_documents"),
        "detect": cum("pipeline_bel.py", "find"),
        "retrieve": retrieve,
        "prepare": max(0.0, cum("pipeline_bel.py", "_forward_many") - retrieve - score),
        "pack": pack,
        "forward": max(0.0, score - pack),
        "postprocess": cum("pipeline_bel.py", "postprocess"),
        "write": max(0.0, cum("linking.py", "flush") - cum("pipeline_bel.py", "__call__")),
        "merge": cum("linking.py", "merge_shards"),
    }
    stages["other"] = max(0.0, wall - sum(stages.values()))
    return stages


# ---------------------------------------------------------------------------------------------------- checkpoint
def release_checkpoint(source: Path, target: Path) -> Path:
    """An equivalent checkpoint the release can load: config, weights and tokenizer linked from `source`, and its
    retriever (format 2) re-saved in format 1 (row-major TF-IDF matrix; same rows, names, aliases, idf). The
    detector/ folder is left out: the release cannot use it."""
    import numpy as np

    from bel.retrieval_bel import CandidateRetriever

    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (target / name).unlink(missing_ok=True)
        (target / name).symlink_to((source / name).resolve())
    retriever = CandidateRetriever.load(source / "retriever")
    folder = target / "retriever"
    folder.mkdir(exist_ok=True)
    config = {
        "format_version": 1,
        "ngram_range": list(retriever.ngram_range),
        "max_df": retriever.max_df,
        "num_rows": len(retriever.row_name),
        "num_entities": len(retriever.entity_ids()),
        "num_ngrams": len(retriever.vocabulary),
    }
    (folder / "retriever_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / "retriever_vocab.json").write_text(json.dumps(retriever.vocabulary, ensure_ascii=False), "utf-8")
    names = {
        "entity_ids": retriever.row_entity,
        "names": retriever.row_name,
        "alias_sources": {str(k): v for k, v in sorted(retriever.alias_sources.items())},
    }
    (folder / "retriever_names.json").write_text(json.dumps(names, ensure_ascii=False), encoding="utf-8")
    matrix = retriever.matrix
    np.savez(
        folder / "retriever_index.npz",
        idf=retriever.idf,
        data=matrix.data,
        indices=matrix.indices,
        indptr=matrix.indptr,
        shape=np.asarray(matrix.shape, dtype=np.int64),
        preferred=retriever.row_preferred,
        alias=retriever.row_alias,
    )
    return target


# ---------------------------------------------------------------------------------------------------- parent
def run_release(release_src: Path, checkpoint: Path, corpus: Path, threads: int, profile: bool = False) -> dict:
    """One release run in a fresh interpreter with only the release's `bel` importable (PYTHONPATH first)."""
    with tempfile.TemporaryDirectory(prefix="bel-release-") as workdir:
        output = Path(workdir) / "release.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--child", str(checkpoint), str(corpus)]
        command += ["--child-output", str(output), "--threads", str(threads)] + (["--cprofile"] if profile else [])
        environment = {**os.environ, "PYTHONPATH": str(release_src), "HF_HUB_OFFLINE": "1"}
        completed = subprocess.run(command, env=environment, cwd=workdir, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"release run failed: {completed.stderr[-3000:]}")
        return json.loads(output.read_text(encoding="utf-8"))


def current_configurations(threads: int) -> dict[str, dict]:
    """The current code's configurations: defaults, and int8 when this pipeline offers it."""
    from bel.backends_bel import check_backend

    configurations = {"current": {"detect_mentions": True, "threads": threads}}
    try:
        check_backend("int8")
    except ValueError:
        return configurations
    configurations["current-int8"] = {**configurations["current"], "backend": "int8"}
    return configurations


def measure(args: argparse.Namespace, checkpoint: Path, corpus: Path, profiled: Path) -> dict[str, list[dict]]:
    """Every configuration `args.repeats` times, interleaved, on `corpus`; the release's cProfile run last, on
    `profiled`."""
    from bel.profiling import profile_in_subprocess

    configurations = current_configurations(args.threads)
    runs: dict[str, list[dict]] = {"release": [], **{name: [] for name in configurations}}
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}/{args.repeats}: release", file=sys.stderr, flush=True)
        runs["release"].append(run_release(args.release_dir / "src", checkpoint, corpus, args.threads))
        for name, options in configurations.items():
            print(f"repeat {repeat + 1}/{args.repeats}: {name}", file=sys.stderr, flush=True)
            runs[name].append(profile_in_subprocess(args.model, corpus, **options))
    print("release under cProfile", file=sys.stderr, flush=True)
    runs["release-cprofile"] = [run_release(args.release_dir / "src", checkpoint, profiled, args.threads, True)]
    return runs


def summarise(runs: dict[str, list[dict]]) -> dict:
    """Medians per configuration; the release's stage seconds are its cProfile shares times its unprofiled time."""
    from bel.profiling import median_profile, stage_shares

    profiled = runs.pop("release-cprofile")[0]
    shares = stage_shares(profiled["profiled_stage_seconds"])
    for run in runs["release"]:
        run["stage_seconds"] = {name: shares[name] * run["seconds"] for name in STAGES}
    summary = {name: median_profile(profiles) for name, profiles in runs.items()}
    summary["release"]["stage_seconds_source"] = "cProfile shares of a separate run x the unprofiled seconds"
    summary["release_cprofile_run"] = profiled
    for name in runs:
        if name != "release":
            summary[f"{name}_vs_release"] = (
                summary[name]["documents_per_second"] / summary["release"]["documents_per_second"]
            )
    return summary


def markdown_table(summary: dict, names: list[str]) -> str:
    """Documents/s, mentions/s, peak RSS and seconds (share) per stage, one column per configuration."""
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for key, label in (("documents", "documents"), ("mentions", "mentions"), ("seconds", "wall seconds")):
        lines.append(f"| {label} | " + " | ".join(f"{summary[n][key]:.4g}" for n in names) + " |")
    for key, label in (("documents_per_second", "documents/s"), ("mentions_per_second", "mentions/s")):
        lines.append(f"| {label} | " + " | ".join(f"{summary[n][key]:.3f}" for n in names) + " |")
    lines.append("| peak RSS (MiB) | " + " | ".join(f"{summary[n]['peak_rss_mb']:.0f}" for n in names) + " |")
    for stage in STAGES:
        cells = [f"{summary[n]['stage_seconds'][stage]:.2f} ({summary[n]['stage_shares'][stage]:.1%})" for n in names]
        lines.append(f"| {stage} s (share) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="current checkpoint directory (with detector/)")
    parser.add_argument("input", type=Path, help="PubTator file; its mentions are ignored (raw text)")
    parser.add_argument("--release-dir", type=Path, default=Path(f"/work/release-{RELEASE}"))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-documents", type=int, help="link only the first N documents (a temporary copy)")
    parser.add_argument(
        "--profile-documents",
        type=int,
        default=100,
        help="the release's cProfile run links only the first N documents (its stage shares; default 100)",
    )
    parser.add_argument("--output-dir", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-output", help=argparse.SUPPRESS)
    parser.add_argument("--cprofile", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def extract_release(release_dir: Path) -> None:
    """The release's source tree in `release_dir` (`git archive RELEASE`, from this repository), unless it is there."""
    if (release_dir / "src" / "bel").is_dir():
        return
    release_dir.mkdir(parents=True, exist_ok=True)
    repository = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "archive", RELEASE], cwd=repository, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(release_dir)], input=archive, check=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.child:  # the release's side: only the standard library and the release's bel
        import torch

        torch.set_num_threads(args.threads)
        release_child(args.model, str(args.input), args.child_output, args.cprofile)
        return 0
    from bel.manifest import run_manifest
    from bel.profiling import subset_corpus

    extract_release(args.release_dir)
    with tempfile.TemporaryDirectory(prefix="bel-link-profile-") as workdir:
        checkpoint = release_checkpoint(Path(args.model), Path(workdir) / "release-checkpoint")
        corpus = args.input
        if args.max_documents:
            corpus = subset_corpus(args.input, args.max_documents, workdir, "pubtator")
        profiled = subset_corpus(args.input, args.profile_documents, Path(workdir) / "profiled", "pubtator")
        runs = measure(args, checkpoint, corpus, profiled)
    summary = summarise(runs)
    names = [name for name in ("release", "current", "current-int8") if name in summary]
    result = {
        "manifest": run_manifest(sys.argv),
        "release": RELEASE,
        "checkpoint": args.model,
        "input": args.input.name,
        "max_documents": args.max_documents,
        "profile_documents": args.profile_documents,
        "threads": args.threads,
        "repeats": args.repeats,
        "runs": runs,
        **summary,
    }
    table = markdown_table(summary, names)
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        (args.output_dir / "link_profile.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        (args.output_dir / "link_profile.md").write_text(table, encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
