"""Strict mention-detection F1 of a trained detector under each decoding step, from one forward pass.

The detector runs once on the split (``MentionDetector.word_log_probs``); its word label log-probabilities are then
decoded five ways, each adding one step of ``MentionDetector.decode``: ``argmax`` (each word's best label, an ``I-``
after ``O`` opening an entity: the decoding before issue 12's second round), ``viterbi`` (the best valid BIO sequence),
``+trim`` (edges no mention has removed), ``+merge`` (touching entities of one type joined), ``+propagate`` (the
occurrences of each detected name vote; two thirds of yes tag all of them, fewer none: the default). More rows vary
the last step: the share of yes votes that tags a name (0: only add; 1: every occurrence or none), without short forms,
names of 4 characters or more.

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
from bel.detector_training import decoded_scores, gold_entities, strict_scores
from bel.propagation_bel import propagate_names

VARIANTS = {  # (decoding, trim, merge, propagate): each adds one step of MentionDetector.decode
    "argmax": ("argmax", False, False, False),
    "viterbi": ("viterbi", False, False, False),
    "viterbi+trim": ("viterbi", True, False, False),
    "viterbi+trim+merge": ("viterbi", True, True, False),
    "viterbi+trim+merge+propagate": ("viterbi", True, True, True),
}
PROPAGATION_VARIANTS = {  # propagate_names options applied to the "viterbi+trim+merge" entities
    "+propagate, add only (min_share 0)": {"min_share": 0.0},
    "+propagate, min_share 1/3": {"min_share": 1 / 3},
    "+propagate, min_share 1/2": {"min_share": 1 / 2},
    "+propagate, min_share 2/3": {"min_share": 2 / 3},
    "+propagate, min_share 3/4": {"min_share": 3 / 4},
    "+propagate, min_share 1 (every occurrence or none)": {"min_share": 1.0},
    "+propagate, no short forms": {"abbreviations": False},
    "+propagate, names >= 4 characters": {"min_length": 4},
}


def split_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """`parser`'s arguments plus the split to score (`--dataset`, `--split`), `--threads` and `--output`."""
    parser.add_argument("--dataset", choices=DATASETS, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    return args


def split_documents(args: argparse.Namespace) -> tuple[list, list, list]:
    """The split's documents, their `(text, passages)` detector inputs and their gold entities."""
    documents = load_corpus(args.dataset, args.split)
    inputs = [(d.text, [(p.offset, p.end) for p in d.passages]) for d in documents]
    return documents, inputs, [gold_entities(d, args.dataset) for d in documents]


def detector_on_split(description: str, argv: list[str] | None) -> tuple:
    """`(args, documents, inputs, gold, detector)` of a script scoring one detector (its directory, then
    `split_arguments`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("detector", help="a detector directory (OUTPUT/detector or CHECKPOINT/detector)")
    args = split_arguments(parser, argv)
    documents, inputs, gold = split_documents(args)
    return args, documents, inputs, gold, MentionDetector.from_pretrained(args.detector)


def main(argv: list[str] | None = None) -> dict:
    args, documents, inputs, gold, detector = detector_on_split(__doc__.split("\n\n")[0], argv)
    started = time.perf_counter()
    scored = detector.word_log_probs(inputs)
    result = {"detector": args.detector, "dataset": args.dataset, "split": args.split, "documents": len(documents)}
    result["forward_seconds"] = time.perf_counter() - started
    for variant, (detector.decoding, detector.trim, detector.merge, detector.propagate) in VARIANTS.items():
        result[variant] = decoded_scores(detector, documents, scored, gold)
    detector.decoding, detector.trim, detector.merge, detector.propagate = VARIANTS["viterbi+trim+merge"]
    merged = [detector.decode(d.text, passages) for d, passages in zip(documents, scored, strict=True)]
    for variant, options in PROPAGATION_VARIANTS.items():
        predicted = [
            propagate_names(d.text, found, [(p.offset, p.end) for p in d.passages], **options)
            for d, found in zip(documents, merged, strict=True)
        ]
        result[variant] = strict_scores(gold, predicted) | {
            kind: strict_scores(gold, predicted, kind)["f1"] for kind in detector.types
        }
    return report(result, [*VARIANTS, *PROPAGATION_VARIANTS], args.output)


def report(result: dict, names: list[str], output: Path | None) -> dict:
    """Print the scores of `result[name]` for each of `names`, and write `result` to `output` when given."""
    for name in names:
        print(f"{name:52s} " + " ".join(f"{k} {v:.4f}" for k, v in result[name].items() if isinstance(v, float)))
    if output:
        write_json_result(result, output)  # with the run's manifest
    return result


if __name__ == "__main__":
    main()
