"""Strict mention-detection F1 of detectors alone and of their average, from one forward pass each (a probe).

Every detector runs once on the split (``MentionDetector.word_log_probs``); the ensemble averages the word label
probabilities of all of them and decodes the log of the mean with the first detector's decoding (Viterbi, trim and
merge by default). The detectors must share their tokenizer and labels, so that the words and label columns line up.

Example::

    python eval/detector_ensemble.py runs/det/a/detector runs/det/b/detector --dataset ncbi-disease --split dev \
        --output eval/runs/ncbi-detector-ensemble/ensemble_dev.json
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


def averaged(scored: list[list[list[tuple[list, torch.Tensor]]]]) -> list[list[tuple[list, torch.Tensor]]]:
    """Per document and passage, the log of the detectors' mean word label probabilities."""
    result = []
    for documents in zip(*scored, strict=True):
        passages = []
        for parts in zip(*documents, strict=True):
            spans = parts[0][0]
            if any(p[0] != spans for p in parts):
                raise ValueError("the detectors split the words differently: they need one tokenizer.")
            probabilities = torch.stack([p[1].exp() for p in parts]).mean(0)
            passages.append((spans, probabilities.log()))
        result.append(passages)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("detectors", nargs="+", help="detector directories (OUTPUT/detector)")
    parser.add_argument("--dataset", choices=DATASETS, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    documents = load_corpus(args.dataset, args.split)
    inputs = [(d.text, [(p.offset, p.end) for p in d.passages]) for d in documents]
    gold = [gold_entities(d, args.dataset) for d in documents]
    detectors = [MentionDetector.from_pretrained(path) for path in args.detectors]
    if any(d.labels != detectors[0].labels for d in detectors):
        raise ValueError(f"the detectors' labels differ: {[d.labels for d in detectors]}")
    result: dict = {"detectors": args.detectors, "dataset": args.dataset, "split": args.split}
    scored = []
    for path, detector in zip(args.detectors, detectors, strict=True):
        started = time.perf_counter()
        scored.append(detector.word_log_probs(inputs))
        predicted = [detector.decode(d.text, p) for d, p in zip(documents, scored[-1], strict=True)]
        result[path] = strict_scores(gold, predicted) | {"forward_seconds": time.perf_counter() - started}
    first = detectors[0]
    predicted = [first.decode(d.text, p) for d, p in zip(documents, averaged(scored), strict=True)]
    result["ensemble"] = strict_scores(gold, predicted) | {
        kind: strict_scores(gold, predicted, kind)["f1"] for kind in first.types
    }
    for name in [*args.detectors, "ensemble"]:
        print(f"{name}: " + " ".join(f"{k} {v:.4f}" for k, v in result[name].items() if isinstance(v, float)))
    if args.output:
        write_json_result(result, args.output)  # with the run's manifest
    return result


if __name__ == "__main__":
    main()
