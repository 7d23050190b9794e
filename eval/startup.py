"""Start-up cost of a saved linker's retriever: format 2 (lookup tables saved) against format 1 (recomputed on load).

Usage: python eval/startup.py CHECKPOINT_DIR [--repeats 5] [--output FILE.json]
Writes both formats of CHECKPOINT_DIR/retriever to a temporary folder, then times `CandidateRetriever.load` plus one
search, interleaved, and prints the medians and their ratio as JSON (one run, so the machine's load hits both alike).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bel.manifest import run_manifest
from bel.retrieval_bel import CandidateRetriever


def save_as_format_1(retriever: CandidateRetriever, directory: Path) -> None:
    """The files as bel wrote them before format 2: the index row-major, no lookup tables."""
    retriever.save(directory)
    config = json.loads((directory / "retriever_config.json").read_text())
    config["format_version"] = 1
    config.pop("lookups_version", None)
    (directory / "retriever_config.json").write_text(json.dumps(config))
    names = json.loads((directory / "retriever_names.json").read_text())
    names.pop("exact_keys", None)
    (directory / "retriever_names.json").write_text(json.dumps(names))
    matrix = retriever.matrix
    with np.load(directory / "retriever_index.npz") as arrays:
        kept = {key: arrays[key] for key in ("idf", "shape", "preferred", "alias")}
    np.savez(directory / "retriever_index.npz", data=matrix.data, indices=matrix.indices, indptr=matrix.indptr, **kept)


def load_and_search(directory: Path) -> float:
    start = time.perf_counter()
    CandidateRetriever.load(directory).search(["acute renal failure"], top_k=16)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args()
    retriever = CandidateRetriever.load(Path(args.checkpoint) / "retriever")
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp) / "format1", Path(tmp) / "format2"
        save_as_format_1(retriever, old)
        retriever.save(new)
        times: dict[str, list[float]] = {"format_1": [], "format_2": []}
        for _ in range(args.repeats):
            times["format_1"].append(load_and_search(old))
            times["format_2"].append(load_and_search(new))
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "checkpoint": args.checkpoint,
        "rows": len(retriever),
        "seconds": {name: [round(x, 3) for x in values] for name, values in times.items()},
        "median_seconds": {name: round(value, 3) for name, value in medians.items()},
        "speedup": round(medians["format_1"] / medians["format_2"], 2),
        "manifest": run_manifest(sys.argv),
    }
    text = json.dumps(result, indent=2)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
