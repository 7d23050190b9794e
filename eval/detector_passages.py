"""Strict mention-detection scores of a detector on a split, for the first passage (the title) and the rest apart.

A detector that reads each passage alone tags a title without its abstract; this shows where reading a document as
one sequence (`bel train --detector-context document`) changes the output. Example::

    python eval/detector_passages.py runs/det/ncbi/detector --dataset ncbi-disease --split dev \
        --output eval/runs/NAME/passages_dev.json
"""

from __future__ import annotations

from detector_decoding import detector_on_split, report  # eval/, beside this script

from bel.detector_training import strict_scores


def in_title(document, entity: tuple[int, int, str]) -> bool:
    title = document.passages[0]
    return title.offset <= entity[0] and entity[1] <= title.end


def main(argv: list[str] | None = None) -> dict:
    args, documents, inputs, gold, detector = detector_on_split(__doc__.split("\n\n")[0], argv)
    predicted = detector.detect(inputs)
    result = {"detector": args.detector, "dataset": args.dataset, "split": args.split, "context": detector.context}
    result["all"] = strict_scores(gold, predicted)
    for part, wanted in (("title", True), ("other passages", False)):
        keep = [
            ([e for e in expected if in_title(d, e) == wanted], [e for e in found if in_title(d, e) == wanted])
            for d, expected, found in zip(documents, gold, predicted, strict=True)
        ]
        result[part] = strict_scores([k[0] for k in keep], [k[1] for k in keep])
    return report(result, ["all", "title", "other passages"], args.output)


if __name__ == "__main__":
    main()
