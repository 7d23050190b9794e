"""Strict mention-detection F1 of a trained detector under each decoding step, from one forward pass.

The detector runs once on the split (``MentionDetector.word_log_probs``); its word label log-probabilities are then
decoded four ways, each adding one step of ``MentionDetector.decode``: ``argmax`` (each word's best label, an ``I-``
after ``O`` opening an entity: the decoding before issue 12's second round), ``viterbi`` (the best valid BIO sequence),
``+trim`` (edges no mention has removed), ``+merge`` (touching entities of one type joined: the default).

Example::

    python eval/detector_decoding.py runs/det/ncbi/detector --dataset ncbi-disease --split dev \
        --output eval/runs/ncbi-detector-decoding/decoding.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from bel.data.datasets import DATASETS, load_corpus
from bel.detection_bel import MentionDetector, decode_labels, merge_adjacent, trim_entity, viterbi_labels
from bel.detector_training import gold_entities

VARIANTS = ("argmax", "viterbi", "viterbi+trim", "viterbi+trim+merge")


def decode(text: str, passages, labels: list[str], variant: str) -> set[tuple[int, int, str]]:
    """Entities of one document decoded with the steps of `variant`."""
    entities: list[tuple[int, int, str]] = []
    for words, log_probs in passages:
        if variant == "argmax":
            tags = [labels[i] for i in log_probs.argmax(-1).tolist()]
        else:
            tags = viterbi_labels(log_probs, labels)
        found = decode_labels(tags, words)
        if "trim" in variant:
            found = [(s, e, k) for s, e, k in (trim_entity(text, a, b) + (k,) for a, b, k in found) if e > s]
        entities.extend(merge_adjacent(text, found) if "merge" in variant else found)
    return set(entities)


def scores(gold: list[set], predicted: list[set], kind: str | None = None) -> dict:
    """Strict precision, recall and F1 (of one entity type when `kind` is given)."""

    def keep(entities: set) -> set:
        return {e for e in entities if kind is None or e[2] == kind}

    tp = sum(len(keep(g) & keep(p)) for g, p in zip(gold, predicted, strict=True))
    fp = sum(len(keep(p) - keep(g)) for g, p in zip(gold, predicted, strict=True))
    fn = sum(len(keep(g) - keep(p)) for g, p in zip(gold, predicted, strict=True))
    precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("detector", help="a detector directory (OUTPUT/detector or CHECKPOINT/detector)")
    parser.add_argument("--dataset", choices=DATASETS, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    documents = load_corpus(args.dataset, args.split)
    detector = MentionDetector.from_pretrained(args.detector)
    labels = [detector.id2label[i] for i in range(len(detector.id2label))]
    started = time.perf_counter()
    scored = detector.word_log_probs([(d.text, [(p.offset, p.end) for p in d.passages]) for d in documents])
    gold = [set(gold_entities(d, args.dataset)) for d in documents]
    result = {"detector": args.detector, "dataset": args.dataset, "split": args.split, "documents": len(documents)}
    result["forward_seconds"] = time.perf_counter() - started
    for variant in VARIANTS:
        predicted = [decode(d.text, p, labels, variant) for d, p in zip(documents, scored, strict=True)]
        result[variant] = scores(gold, predicted) | {k: scores(gold, predicted, k)["f1"] for k in detector.types}
        print(f"{variant:20s} " + " ".join(f"{k} {v:.4f}" for k, v in result[variant].items() if isinstance(v, float)))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
