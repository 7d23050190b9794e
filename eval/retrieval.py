"""Evaluate first-stage candidate retrieval: recall@k, throughput and peak memory.

Example::

    python eval/retrieval.py --dataset ncbi-disease --split test --top-k 64 --output eval/retrieval_ncbi.json
    python eval/retrieval.py --dataset ncbi-disease --dense-encoder DIR --fusion-weight 0.3 0.5 0.7 --threads 1

With ``--dense-encoder`` the same index also gets a dense part (mean-pooled, normalised name embeddings of that encoder)
and recall is reported for TF-IDF alone, dense alone, hybrid (interpolation at each ``--fusion-weight``) and reciprocal
rank fusion, under ``methods`` and in a printed table; the top-level figures stay those of TF-IDF.

The index and the queries are built exactly as for training and serving (``bel.examples.build_retriever``,
``bel.inputs_bel.retrieval_queries``): every KB name plus the training split's mention strings as aliases of each of
their gold entities (``--no-aliases`` turns them off), mentions queried with their document's short forms expanded. Recall policy: a mention counts as a hit at k when ANY of its gold ids (mapped to the KB's primary id,
e.g. OMIM alt ids of MEDIC) is among the top-k entities; composite mentions are therefore "any-of" and are also reported
separately. NIL mentions (PubTator ``-1``) are excluded and counted. Mentions whose gold ids are all absent from the KB
(BC5CDR supplementary-concept C ids) are kept in ``recall`` (as misses, they can never be hit) and excluded from
``recall_in_kb``; both are reported with their counts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from pathlib import Path

from bel.data.datasets import DATASETS, load_corpus, load_kb
from bel.examples import build_retriever, training_aliases
from bel.inputs_bel import retrieval_queries
from bel.retrieval_bel import DEFAULT_FUSION_WEIGHT

KS = (1, 5, 16, 64)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def search_figures(retriever, queries: list[str], distinct: list[str], mentions: list, kb, args) -> dict:
    """Recall of one retriever configuration, and its search speed (all queries, then distinct surface forms)."""
    top_k = max(args.top_k, *KS)
    start, cpu_start = time.perf_counter(), time.process_time()
    results = retriever.search(queries, top_k=top_k, batch_size=args.batch_size)
    search_seconds, search_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    start, cpu_start = time.perf_counter(), time.process_time()
    retriever.search(distinct, top_k=top_k, batch_size=args.batch_size)
    distinct_seconds, distinct_cpu = time.perf_counter() - start, time.process_time() - cpu_start

    groups: dict[str, list[list[int]]] = {"all": [], "in_kb": [], "composite": [], "not_in_kb": []}
    nil = 0
    for mention, candidates in zip(mentions, results, strict=True):
        if not mention.ids:
            nil += 1
            continue
        gold = {kb.canonical_id(i) for i in mention.ids} - {None}
        ranks = [r for r, c in enumerate(candidates) if c.entity_id in gold]
        hits = [int(bool(ranks) and ranks[0] < k) for k in KS]
        groups["all"].append(hits)
        groups["in_kb" if gold else "not_in_kb"].append(hits)
        if mention.composite:
            groups["composite"].append(hits)

    def recall(rows: list[list[int]]) -> dict[str, float | None]:
        return {
            f"recall@{k}": (round(sum(r[i] for r in rows) / len(rows), 4) if rows else None) for i, k in enumerate(KS)
        }

    return {
        "nil_mentions": nil,
        "evaluated_mentions": len(groups["all"]),
        "mentions_gold_not_in_kb": len(groups["not_in_kb"]),
        "composite_mentions": len(groups["composite"]),
        "recall": recall(groups["all"]),
        "recall_in_kb": recall(groups["in_kb"]),
        "recall_composite": recall(groups["composite"]),
        "top_k_searched": top_k,
        "search_seconds": round(search_seconds, 2),
        "mentions_per_second": round(len(mentions) / search_seconds, 1),
        "distinct_mentions": len(distinct),
        "distinct_mentions_per_second": round(len(distinct) / distinct_seconds, 1),
        "mentions_per_cpu_second": round(len(mentions) / search_cpu, 1),
        "distinct_mentions_per_cpu_second": round(len(distinct) / distinct_cpu, 1),
    }


def variants(retriever, args) -> dict[str, object]:
    """The configurations to compare: TF-IDF alone, and with a dense part also dense alone (interpolation weight 0),
    hybrid at each ``--fusion-weight`` and reciprocal rank fusion."""
    if retriever.dense is None:
        return {"tfidf": retriever}
    found = {"tfidf": retriever.variant(tfidf_only=True), "dense": retriever.variant(fusion_weight=0.0)}
    for weight in args.fusion_weight:
        found[f"hybrid@{weight:g}"] = retriever.variant(fusion="interpolation", fusion_weight=weight)
    found["rrf"] = retriever.variant(fusion="rrf")
    return found


def evaluate(args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    kb = load_kb(args.dataset, args.data_dir, kb=args.kb)
    train = [] if args.no_aliases else load_corpus(args.dataset, "train", args.data_dir)
    aliases, _ = training_aliases(kb, train)
    retriever = build_retriever(kb, train, ngram_range=tuple(args.ngram_range), max_df=args.max_df)
    build_seconds = time.perf_counter() - start
    dense_seconds = None
    if args.dense_encoder:
        start = time.perf_counter()
        retriever.with_dense(args.dense_encoder, batch_size=args.dense_batch_size)
        dense_seconds = time.perf_counter() - start
    documents = load_corpus(args.dataset, args.split, args.data_dir)
    mentions = [m for doc in documents for m in doc.mentions]
    queries = [
        query
        for doc in documents
        for query in retrieval_queries(doc.text, [(m.start, m.end) for m in doc.mentions], not args.no_abbreviations)
    ]
    distinct = list(dict.fromkeys(m.text.lower() for m in mentions))  # worst case: no repeated surface forms
    methods = {
        name: search_figures(variant, queries, distinct, mentions, kb, args)
        for name, variant in variants(retriever, args).items()
    }
    return {
        "dataset": args.dataset,
        "split": args.split,
        "kb": args.kb or ("medic" if args.dataset == "ncbi-disease" else "mesh"),
        "kb_entities": len(kb),
        "indexed_names": len(retriever),
        "train_aliases": 0 if args.no_aliases else len(aliases),
        "abbreviations_expanded": not args.no_abbreviations,
        "ngram_range": list(args.ngram_range),
        "mentions": len(mentions),
        **methods["tfidf"],  # the top-level figures stay those of the TF-IDF retriever
        "build_seconds": round(build_seconds, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "max_df": args.max_df,
        "dense_encoder": args.dense_encoder,
        "dense_embedding_seconds": None if dense_seconds is None else round(dense_seconds, 2),
        "threads": args.threads,
        "methods": methods,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def print_table(methods: dict[str, dict]) -> None:
    """Recall (all evaluated mentions) and search speed per configuration."""
    print(f"{'method':<14}" + "".join(f"{'R@' + str(k):>8}" for k in KS) + f"{'ment/s':>10}{'distinct/s':>12}")
    for name, figures in methods.items():
        recalls = "".join(f"{figures['recall'][f'recall@{k}']:>8.4f}" for k in KS)
        speed = f"{figures['mentions_per_second']:>10.1f}{figures['distinct_mentions_per_second']:>12.1f}"
        print(f"{name:<14}{recalls}{speed}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", default=None, help="corpora/KB directory (default: $BEL_DATA_DIR or ../shared/data)"
    )
    parser.add_argument("--dataset", choices=DATASETS, default="ncbi-disease")
    parser.add_argument("--split", choices=("train", "dev", "test"), default="test")
    parser.add_argument("--kb", choices=("medic", "mesh"), default=None, help="override the dataset's default KB")
    parser.add_argument(
        "--top-k", type=int, default=64, help="candidates retrieved per mention (>= 64 always searched)"
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--ngram-range", type=int, nargs=2, default=None, metavar=("MIN", "MAX"))
    parser.add_argument(
        "--max-df",
        type=float,
        default=None,
        help="drop n-grams found in more than this fraction of names (speed option; default keep all)",
    )
    parser.add_argument("--no-aliases", action="store_true", help="index KB names only, no training aliases")
    parser.add_argument(
        "--no-abbreviations",
        action="store_true",
        help="query mentions as written (default: expand short forms defined in the document)",
    )
    parser.add_argument(
        "--dense-encoder",
        default=None,
        metavar="DIR",
        help="encoder directory: also report dense and hybrid retrieval (e.g. bel.encoders.default_encoder())",
    )
    parser.add_argument(
        "--fusion-weight",
        type=float,
        nargs="+",
        default=[DEFAULT_FUSION_WEIGHT],
        help="TF-IDF weight(s) of the interpolation fusion to report (with --dense-encoder)",
    )
    parser.add_argument("--dense-batch-size", type=int, default=256, help="names embedded per batch")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--output", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.ngram_range is None:
        from bel.retrieval_bel import DEFAULT_NGRAM_RANGE

        args.ngram_range = list(DEFAULT_NGRAM_RANGE)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = evaluate(args)
    print(json.dumps(report, indent=2))
    print_table(report["methods"])
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
