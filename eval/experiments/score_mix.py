"""Diagnose a reranker trained with retrieval scores: how much does its learned scorer add to the retriever's prior?

Scores dev and test once, then re-ranks with ``logits = scorer + alpha * retrieval_score`` for several ``alpha``
(``alpha = 0``: the learned scorer alone; the checkpoint itself uses its learned retrieval weight).

Example::

    python eval/experiments/score_mix.py runs/ncbi_sc_abbr_e2/best --dataset ncbi-disease --output score_mix.json
"""

from __future__ import annotations

import argparse
import json
import logging

import torch

from bel.evaluation import example_metrics, score_examples
from bel.examples import build_examples, load_documents, load_knowledge_base
from bel.saving import load_components

ALPHAS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 1000.0)


def mixed_accuracy(examples, scores, weight: float, alpha: float, retriever) -> float:
    mixed = [
        [
            [s + (alpha - weight) * r for s, r in zip(ms, mr, strict=True)]
            for ms, mr in zip(doc_scores, example.input.candidate_scores, strict=True)
        ]
        for doc_scores, example in zip(scores, examples, strict=True)
    ]
    return example_metrics(examples, mixed, retriever, num_candidates=len(examples[0].candidate_ids[0]))["acc@1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--dataset", default="ncbi-disease")
    parser.add_argument("--data-dir")
    parser.add_argument("--splits", nargs="+", default=["dev", "test"])
    parser.add_argument("--output")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model, tokenizer, retriever = load_components(args.model)
    if model.retrieval_weight is None:
        raise SystemExit(f"{args.model} was trained without retrieval scores: nothing to mix.")
    weight = float(model.retrieval_weight.detach())
    kb = load_knowledge_base(args.dataset, args.data_dir)
    result = {
        "model": args.model,
        "retrieval_weight": weight,
        "scorer_weight_norm": float(model.scorer.weight.detach().norm()),
        "acc@1": {},
    }
    for split in args.splits:
        examples = build_examples(
            load_documents(args.dataset, split, args.data_dir),
            retriever,
            model.config.num_candidates,
            kb=kb,
            retrieve_k=64,
        )
        with torch.inference_mode():
            scores = score_examples(model, tokenizer, examples)
        result["acc@1"][split] = {
            str(a): round(mixed_accuracy(examples, scores, weight, a, retriever), 4) for a in ALPHAS
        }
    text = json.dumps(result, indent=2)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
