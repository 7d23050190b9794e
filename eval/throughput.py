"""Reranking throughput and Acc@1 on gold spans: pair, packed, packed + cascade, and the int8 / ONNX backends.

Example::

    python eval/throughput.py runs/ncbi-end-to-end-linker/best --dataset ncbi-disease --split test \\
        --timing-documents 30 --repeats 3 --output eval/runs/throughput-ncbi-test/throughput.json

One process, one thread (`--threads`), the same built examples (the checkpoint's retriever, C candidates, abbreviations
expanded, as `bel eval`) for every configuration:

- `pair`: the same weights, one (mention, candidate) pair per sequence (dynamic padding, length-sorted batches);
- `packed`: the checkpoint's packing mode; `packed+cascade`: unique exact matches decided by the retriever
  (`bel.inputs_bel.retriever_decides`), the rest packed and reranked;
- `packed+int8`, `packed+cascade+int8`: dynamic int8 linear layers; `packed+onnx`, `packed+cascade+onnx`: the encoder
  run by ONNX Runtime (when `bel.onnx_backend` and onnxruntime are there).

Acc@1 is measured once per configuration over every document of the split (`pair` only over the timing documents
unless `--pair-accuracy all`: it is slow). Speed: `--repeats` interleaved timings of `model.score` over the first
`--timing-documents` documents, medians; `forward_seconds` is the encoder + scorer share (`model.score(timings=...)`).
Retrieval is the same for every configuration and not timed here (see `bel bench --end-to-end` for whole runs).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import logging
import statistics
import sys
import time

import torch

from bel.backends_bel import apply_backend
from bel.commands import write_json_result
from bel.evaluation import cascade_metrics, example_metrics, score_examples
from bel.examples import checkpoint_examples, load_documents, load_knowledge_base
from bel.manifest import run_manifest
from bel.saving import load_components

logger = logging.getLogger("throughput")


def variants(model, with_onnx: bool) -> dict:
    """The model per backend: fp32, int8 and (when available) ONNX Runtime."""
    quantized = copy.deepcopy(model)
    apply_backend(quantized.base_model, "int8")  # the encoder; the scorer stays in float, as the pipeline does
    models = {"fp32": model, "int8": quantized}
    if with_onnx:
        from bel.onnx_backend import use_onnx

        models["onnx"] = use_onnx(copy.deepcopy(model))
    return models


def configurations(mode: str, backends: list[str]) -> dict[str, tuple[str, str, bool]]:
    """name: (backend, packing mode, cascade)."""
    configs = {"pair": ("fp32", "pair", False), "packed": ("fp32", mode, False), "packed+cascade": ("fp32", mode, True)}
    for backend in backends:
        if backend != "fp32":
            configs[f"packed+{backend}"] = (backend, mode, False)
            configs[f"packed+cascade+{backend}"] = (backend, mode, True)
    return configs


def timed_score(model, tokenizer, examples, mode: str, cascade: bool) -> tuple[list, float, float]:
    """Scores, wall seconds and forward seconds of one `score_examples` call."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    scores = score_examples(model, tokenizer, examples, mode=mode, cascade=cascade, timings=timings)
    return scores, time.perf_counter() - start, timings.get("forward", 0.0)


def accuracy(examples, scores, retriever, cascade: bool) -> dict:
    metrics = example_metrics(examples, scores, retriever)
    return {
        "mentions": metrics["mentions"],
        "acc@1": metrics["acc@1"],
        "acc@5": metrics["acc@5"],
        "acc@1_in_kb": metrics["acc@1_in_kb"],
        "retriever_acc@1": metrics["retriever_acc@1"],
        "cascade": cascade_metrics(examples, scores, cascade),
    }


def measure(args, models, tokenizer, examples, retriever, configs) -> dict:
    timing = examples[: args.timing_documents]
    results = {
        name: {"backend": b, "mode": m, "cascade": c, "seconds_all": [], "forward_all": []}
        for name, (b, m, c) in configs.items()
    }
    for name, (backend, mode, cascade) in configs.items():
        subset = timing if name == "pair" and args.pair_accuracy == "timing" else examples
        scores, seconds, _ = timed_score(models[backend], tokenizer, subset, mode, cascade)
        results[name]["accuracy"] = accuracy(subset, scores, retriever, cascade)
        results[name]["accuracy_documents"] = len(subset)
        logger.info("%s: acc@1 %.4f (%.1fs)", name, results[name]["accuracy"]["acc@1"], seconds)
    for repeat in range(args.repeats):
        for name, (backend, mode, cascade) in configs.items():
            _, seconds, forward = timed_score(models[backend], tokenizer, timing, mode, cascade)
            results[name]["seconds_all"].append(seconds)
            results[name]["forward_all"].append(forward)
            logger.info("repeat %d %s: %.2fs (forward %.2fs)", repeat, name, seconds, forward)
    mentions = sum(len(e.candidate_ids) for e in timing)
    base = statistics.median(results["pair"]["seconds_all"])
    packed, packed_forward = (statistics.median(results["packed"][k]) for k in ("seconds_all", "forward_all"))
    for result in results.values():
        seconds, forward = statistics.median(result["seconds_all"]), statistics.median(result["forward_all"])
        result.update(
            seconds=seconds,
            forward_seconds=forward,
            mentions_per_second=mentions / seconds,
            speedup_vs_pair=base / seconds,
            speedup_vs_packed=packed / seconds,
            forward_speedup_vs_packed=packed_forward / forward if forward else None,
        )
    return {"timing_documents": len(timing), "timing_mentions": mentions, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--timing-documents", type=int, default=30)
    parser.add_argument("--max-documents", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pair-accuracy", choices=("timing", "all"), default="timing")
    parser.add_argument("--backends", default="fp32,int8,onnx", help="comma-separated: fp32, int8, onnx (CPU ones)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]; on a GPU only fp32 runs")
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    model, tokenizer, retriever = load_components(args.checkpoint)
    model.eval().to(args.device)
    kb = load_knowledge_base(args.dataset, args.data_dir)
    docs = load_documents(args.dataset, args.split, args.data_dir)[: args.max_documents]
    examples = checkpoint_examples(model.config, docs, retriever, kb)
    backends = args.backends.split(",") if args.device == "cpu" else ["fp32"]  # int8 and ONNX run on the CPU
    with_onnx = "onnx" in backends and importlib.util.find_spec("onnxruntime") is not None
    backends = [b for b in backends if b != "onnx" or with_onnx]
    models = variants(model, with_onnx)
    result = {
        "checkpoint": args.checkpoint,
        "dataset": args.dataset,
        "split": args.split,
        "documents": len(examples),
        "num_candidates": model.config.num_candidates,
        "threads": torch.get_num_threads(),
        "device": args.device,
        **measure(args, models, tokenizer, examples, retriever, configurations(model.config.mode, backends)),
        "manifest": run_manifest(sys.argv),
    }
    write_json_result(result, args.output)


if __name__ == "__main__":
    main()
