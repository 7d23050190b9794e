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
import time
from pathlib import Path

import torch

from bel.commands import write_json_result
from bel.data.datasets import DATASETS, load_corpus
from bel.detection_bel import MentionDetector
from bel.detector_training import gold_entities, strict_scores

VARIANTS = {  # (decoding, trim, merge): each adds one step of MentionDetector.decode
    "argmax": ("argmax", False, False),
    "viterbi": ("viterbi", False, False),
    "viterbi+trim": ("viterbi", True, False),
    "viterbi+trim+merge": ("viterbi", True, True),
}


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
    started = time.perf_counter()
    scored = detector.word_log_probs([(d.text, [(p.offset, p.end) for p in d.passages]) for d in documents])
    gold = [gold_entities(d, args.dataset) for d in documents]
    result = {"detector": args.detector, "dataset": args.dataset, "split": args.split, "documents": len(documents)}
    result["forward_seconds"] = time.perf_counter() - started
    for variant, (detector.decoding, detector.trim, detector.merge) in VARIANTS.items():
        predicted = [detector.decode(d.text, p) for d, p in zip(documents, scored, strict=True)]
        result[variant] = strict_scores(gold, predicted) | {
            kind: strict_scores(gold, predicted, kind)["f1"] for kind in detector.types
        }
        print(f"{variant:20s} " + " ".join(f"{k} {v:.4f}" for k, v in result[variant].items() if isinstance(v, float)))
    if args.output:
        write_json_result(result, args.output)  # with the run's manifest
    return result


if __name__ == "__main__":
    main()
