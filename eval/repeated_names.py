"""Repeated names on gold spans: Acc@1 and reranking time of `repeated_names` = each / first / pool, in one run.

The examples are built once (as `bel eval` builds them: abbreviations expanded, typed candidates when the retriever
has KB categories, the confidence cascade on); then each mode scores them, the modes interleaved `--repeats` times,
and the median seconds of each are reported with the ratio to `each` (the reranker reading every mention in its own
sentence). `mentions_left_to_the_reranker` counts the mentions the cascade leaves to the reranker,
`repeats_among_them` those that repeat an earlier one of their document. `gold` counts, in the split's annotations,
the mentions with an id, those that repeat an earlier mention text of their document (case and spacing ignored) and
those repeats whose gold ids differ from the first occurrence's; `--gold-only` reports just that, without a model.

Example::

    python eval/repeated_names.py runs/ncbi-domain-aligned-hybrid/best --dataset ncbi-disease --split test \
        --output eval/runs/repeated-names/ncbi-test.json
    python eval/repeated_names.py --gold-only --dataset bc5cdr-chemical --split train
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from bel.commands import options, write_json_result
from bel.consistency_bel import REPEATED_NAMES_MODES, repeat_groups, repeat_key
from bel.evaluation import example_metrics, score_examples
from bel.examples import checkpoint_examples, load_documents, load_knowledge_base, mention_types
from bel.inputs_bel import retrieval_queries
from bel.saving import load_components


def gold_repeats(documents) -> dict:
    """Mentions with an id, the repeats of an earlier mention text of their document, and repeats with other ids."""
    mentions = repeats = other_ids = 0
    for document in documents:
        first: dict[str, set] = {}
        for mention in sorted(document.mentions, key=lambda m: (m.start, m.end)):
            if not mention.ids:
                continue
            mentions += 1
            key = repeat_key(mention.text)
            if key in first:
                repeats += 1
                other_ids += first[key] != set(mention.ids)
            else:
                first[key] = set(mention.ids)
    return {"mentions_with_ids": mentions, "repeats": repeats, "repeats_with_other_ids": other_ids}


def repeat_counts(examples) -> dict:
    """Mentions the cascade leaves to the reranker, and how many of them repeat an earlier one of their document."""
    reranked = repeats = 0
    for example in examples:
        queries = retrieval_queries(example.input.text, example.input.mentions)
        ids = [[] if done else row for row, done in zip(example.candidate_ids, example.retriever_decided, strict=True)]
        for m, leader in enumerate(repeat_groups(queries, ids)):
            if not example.retriever_decided[m]:
                reranked += 1
                repeats += leader != m
    return {"mentions_left_to_the_reranker": reranked, "repeats_among_them": repeats}


def measure(checkpoint: str, dataset: str, split: str, repeats: int, data_dir: str | None = None) -> dict:
    kb = load_knowledge_base(dataset, data_dir)
    model, tokenizer, retriever = load_components(checkpoint)
    model.eval()
    documents = load_documents(dataset, split, data_dir)
    typed = bool(retriever.entity_categories and retriever.type_categories)
    types = mention_types(documents, dataset) if typed else None
    examples = checkpoint_examples(model.config, documents, retriever, kb, types=types)
    seconds = {mode: [] for mode in REPEATED_NAMES_MODES}
    metrics = {}
    for _ in range(repeats):
        for mode in REPEATED_NAMES_MODES:
            start = time.perf_counter()
            with torch.inference_mode():
                scores = score_examples(model, tokenizer, examples, cascade=True, repeated_names=mode)
            seconds[mode].append(time.perf_counter() - start)
            found = example_metrics(examples, scores, retriever, num_candidates=model.config.num_candidates)
            metrics[mode] = {key: found[key] for key in ("acc@1", "acc@5", "acc@1_in_kb", "mentions")}
    for mode in REPEATED_NAMES_MODES:
        metrics[mode]["seconds"] = seconds[mode]
        metrics[mode]["median_seconds"] = statistics.median(seconds[mode])
    for mode in REPEATED_NAMES_MODES:
        metrics[mode]["speedup_vs_each"] = metrics["each"]["median_seconds"] / metrics[mode]["median_seconds"]
    return {
        "checkpoint": checkpoint,
        "dataset": dataset,
        "split": split,
        "type_filter": typed,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "gold": gold_repeats(documents),
        **repeat_counts(examples),
        "modes": metrics,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", nargs="?", help="a saved linker directory (not with --gold-only)")
    parser.add_argument("--gold-only", action="store_true", help="count the gold repeats only (no model)")
    options.add_data_arguments(parser, files=False)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per mode, interleaved (default: 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--output", type=Path, help="JSON file for the figures (default: print them)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.gold_only:
        documents = load_documents(args.dataset, args.split, args.data_dir)
        result = {"dataset": args.dataset, "split": args.split, "gold": gold_repeats(documents)}
    elif args.checkpoint:
        result = measure(args.checkpoint, args.dataset, args.split, args.repeats, args.data_dir)
    else:
        parser.error("pass a checkpoint, or --gold-only")
    write_json_result(result, args.output)
    return result


if __name__ == "__main__":
    main()
