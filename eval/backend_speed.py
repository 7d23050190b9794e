"""Forward-pass seconds of the reranker on torch fp32, torch int8 and ONNX Runtime, and their top-1 agreement with fp32.

Example (one thread, ~3 min)::

    python eval/backend_speed.py runs/ncbi-end-to-end-linker/best --documents 20 \\
        --output eval/runs/backend-speed/ncbi_backend_speed.json

The first `--documents` documents of the split, with their gold spans, are retrieved once (`bel.examples.build_examples`,
the checkpoint's candidate count) and scored by `model.score` in the checkpoint's packing mode, every mention reranked
(no cascade). Each backend's model is loaded once and warmed up by one call; then the backends are timed in turn,
`--repeats` times interleaved, and the medians reported: `forward_seconds` (padding, the encoder and the scorer: what
the backend changes) and `score_seconds` (plus packing, the same for all). `top1_agreement` is the share of mentions
whose top-1 candidate equals fp32's; `acc@1` is scored against the gold ids as `bel eval` does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from bel.backends_bel import int8_engine
from bel.evaluation import example_metrics
from bel.examples import checkpoint_examples, load_documents, load_knowledge_base
from bel.manifest import run_manifest
from bel.saving import load_components, retriever_for_kb

BACKENDS = ("torch", "int8", "onnx")


def time_scoring(model, tokenizer, inputs, max_tokens: int) -> tuple[dict, list]:
    """`({"forward_seconds", "score_seconds"}, scores)` of one `model.score` call over `inputs`."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    scores = model.score(tokenizer, inputs, max_tokens=max_tokens, timings=timings)
    return {"forward_seconds": timings["forward"], "score_seconds": time.perf_counter() - start}, scores


def top1(scores) -> list[int]:
    return [max(range(len(m)), key=m.__getitem__) if m else -1 for doc in scores for m in doc]


def load_models(checkpoint: str, backends) -> tuple[dict, object, object]:
    """`({backend: model}, tokenizer, retriever)`, with each backend's load (and ONNX export) seconds logged."""
    models, tokenizer, retriever = {}, None, None
    for backend in backends:
        start = time.perf_counter()
        models[backend], tokenizer, retriever = load_components(checkpoint, backend=backend)
        print(f"{backend}: loaded in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return models, tokenizer, retriever


def measure(models: dict, tokenizer, examples, retriever, repeats: int, max_tokens: int) -> dict:
    """Medians of `repeats` interleaved timings per backend, Acc@1 and the top-1 agreement with fp32."""
    inputs = [e.input for e in examples]
    runs = {backend: [] for backend in models}
    scores = {}
    for model in models.values():  # warm-up: first-call allocations (ONNX Runtime's arena, torch's kernels)
        time_scoring(model, tokenizer, inputs[:2], max_tokens)
    for _ in range(repeats):
        for backend, model in models.items():
            timing, scores[backend] = time_scoring(model, tokenizer, inputs, max_tokens)
            runs[backend].append(timing)
    reference = top1(scores["torch"])
    mentions = len(reference)
    results = {}
    for backend, timings in runs.items():
        forward = statistics.median(t["forward_seconds"] for t in timings)
        metrics = example_metrics(
            examples, scores[backend], retriever, num_candidates=models[backend].config.num_candidates
        )
        results[backend] = {
            "forward_seconds": forward,
            "score_seconds": statistics.median(t["score_seconds"] for t in timings),
            "forward_seconds_runs": [t["forward_seconds"] for t in timings],
            "mentions_per_second_forward": mentions / forward,
            "top1_agreement": sum(a == b for a, b in zip(top1(scores[backend]), reference, strict=True)) / mentions,
            "acc@1": metrics["acc@1"],
        }
    for backend in results:
        results[backend]["forward_speedup_vs_fp32"] = (
            results["torch"]["forward_seconds"] / results[backend]["forward_seconds"]
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a saved bel linker (e.g. runs/ncbi-end-to-end-linker/best)")
    parser.add_argument("--dataset", default="ncbi-disease")
    parser.add_argument("--split", default="test")
    parser.add_argument("--data-dir", default=None, help="default: $BEL_DATA_DIR")
    parser.add_argument("--documents", type=int, default=20, help="first N documents of the split (default: 20)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats, median reported (default: 3)")
    parser.add_argument("--max-tokens", type=int, default=2048, help="padded tokens per batch (bel eval's default)")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads (default: 1)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--output", help="JSON result file (default: stdout)")
    args = parser.parse_args(argv)
    if "torch" not in args.backends:
        parser.error("--backends must include torch (the reference of the agreement)")
    torch.set_num_threads(args.threads)
    models, tokenizer, retriever = load_models(args.checkpoint, args.backends)
    kb = load_knowledge_base(args.dataset, args.data_dir)
    retriever = retriever_for_kb(args.checkpoint, kb, retriever=retriever)
    documents = load_documents(args.dataset, args.split, args.data_dir)[: args.documents]
    num_candidates = models["torch"].config.num_candidates
    examples = checkpoint_examples(models["torch"].config, documents, retriever, kb)  # as `bel eval` builds them
    result = {
        "settings": {
            "checkpoint": args.checkpoint,
            "dataset": args.dataset,
            "split": args.split,
            "documents": len(examples),
            "mentions": sum(len(e.candidate_ids) for e in examples),
            "num_candidates": num_candidates,
            "mode": models["torch"].config.mode,
            "max_tokens": args.max_tokens,
            "threads": args.threads,
            "int8_engine": int8_engine(),
            "repeats": args.repeats,
        },
        "results": measure(models, tokenizer, examples, retriever, args.repeats, args.max_tokens),
        "manifest": run_manifest(),
    }
    text = json.dumps(result, indent=2)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
