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

import torch
from detector_decoding import report, split_arguments, split_documents  # eval/, beside this script

from bel.detection_bel import MentionDetector
from bel.detector_training import decoded_scores


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
    args = split_arguments(parser, argv)
    documents, inputs, gold = split_documents(args)
    detectors = [MentionDetector.from_pretrained(path) for path in args.detectors]
    if any(d.labels != detectors[0].labels for d in detectors):
        raise ValueError(f"the detectors' labels differ: {[d.labels for d in detectors]}")
    result: dict = {"detectors": args.detectors, "dataset": args.dataset, "split": args.split}
    scored = []
    for path, detector in zip(args.detectors, detectors, strict=True):
        started = time.perf_counter()
        scored.append(detector.word_log_probs(inputs))
        seconds = time.perf_counter() - started
        result[path] = decoded_scores(detector, documents, scored[-1], gold) | {"forward_seconds": seconds}
    result["ensemble"] = decoded_scores(detectors[0], documents, averaged(scored), gold)
    return report(result, [*args.detectors, "ensemble"], args.output)


if __name__ == "__main__":
    main()
