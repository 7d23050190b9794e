"""How much the cross-encoder itself knows: Acc@1 on the mentions the cascade leaves to the reranker, ranking by
`cross + w * retrieval score` for a sweep of w (w = 0: the cross-encoder alone; large w: the retriever, ties broken by
the cross-encoder).

The checkpoint's learned retrieval weight is set to 0, so `cross` is the scorer's own logit; the retrieval score is the
retriever's score of each candidate, as the model receives it.

Example::

    python eval/reranker_fusion.py runs/ncbi-domain-aligned-hybrid/best --dataset ncbi-disease --split dev \
        --output eval/runs/ncbi-retrieval-prior-probe/recorded/fusion_dev.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from bel.commands import options, write_json_result
from bel.evaluation import score_examples
from bel.examples import checkpoint_examples, load_documents, load_knowledge_base
from bel.saving import load_components

WEIGHTS = (0, 1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 1000)


def reranked_rows(
    checkpoint: str, dataset: str, split: str, data_dir: str | None = None
) -> list[tuple[list[str], list[float], list[float], set]]:
    """(candidate ids, cross-encoder logits, retrieval scores, gold ids) of each reranked mention with a gold id."""
    kb = load_knowledge_base(dataset, data_dir)
    model, tokenizer, retriever = load_components(checkpoint)
    documents = load_documents(dataset, split, data_dir)
    examples = checkpoint_examples(model.config, documents, retriever, kb)
    if model.retrieval_weight is not None:
        model.retrieval_weight.data.fill_(0.0)
    cross = score_examples(model, tokenizer, examples, cascade=True)
    rows = []
    for d, example in enumerate(examples):
        for m, ids in enumerate(example.candidate_ids):
            if example.retriever_decided[m] or not example.gold_ids[m] or not ids:
                continue
            rows.append((ids, cross[d][m], example.input.candidate_scores[m], set(example.gold_ids[m])))
    return rows


def fused_accuracy(rows, weight: float) -> float:
    hits = [ids[int(np.argmax(np.array(c) + weight * np.array(r[: len(c)])))] in gold for ids, c, r, gold in rows]
    return float(np.mean(hits)) if hits else 0.0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a saved linker directory")
    options.add_data_arguments(parser, files=False)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--output", type=Path, help="JSON file for the figures (default: print them)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = reranked_rows(args.checkpoint, args.dataset, args.split, args.data_dir)
    result = {
        "checkpoint": args.checkpoint,
        "dataset": args.dataset,
        "split": args.split,
        "reranked_mentions": len(rows),
        "acc@1_by_weight": {str(w): fused_accuracy(rows, w) for w in WEIGHTS},
        "gold_in_candidates": float(np.mean([bool(set(ids) & gold) for ids, _, _, gold in rows])) if rows else 0.0,
    }
    write_json_result(result, args.output)  # with the run's manifest; printed when there is no --output
    return result


if __name__ == "__main__":
    main()
