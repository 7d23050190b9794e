"""`evaluate` metric for entity linking: Acc@1, Acc@5, MRR, retriever recall@k (thin wrapper over bel.evaluation).

Load by path, offline: ``evaluate.load("/abs/path/eval/linking_accuracy")``.

Inputs per mention: ``predictions`` -- candidate entity ids ranked best first; ``references`` -- gold ids (several for a
composite mention, an empty list for a mention without id, which is excluded and counted in ``nil_mentions``).
Optional ``retrieved`` (the retriever's ranking, for recall@k; defaults to ``predictions``) and ``num_candidates``.
Output keys: see ``bel.evaluation`` (``acc@1``, ``acc@5``, ``mrr``, ``retriever_recall``, ``errors``, ...).
"""

from __future__ import annotations

import datasets
import evaluate

from bel.evaluation import linking_metrics

_DESCRIPTION = __doc__
_CITATION = """@inproceedings{sanz-cruzado-lever-2025-accelerating,
  title = {Accelerating Cross-Encoders in Biomedical Entity Linking},
  author = {Sanz-Cruzado, Javier and Lever, Jake}, booktitle = {BioNLP @ ACL}, year = {2025}, pages = {136--147}}"""
_KWARGS = """
Args:
    predictions (`list[list[str]]`): ranked candidate ids per mention.
    references (`list[list[str]]`): gold ids per mention (empty: no id).
    retrieved (`list[list[str]]`, optional): retriever ranking per mention.
    num_candidates (`int`, optional): number of reranked candidates C (for the error breakdown).
Returns: dict with acc@1, acc@5, mrr, retriever_recall, errors, nil_mentions, composite_mentions, ...
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class LinkingAccuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references, retrieved=None, num_candidates=None):
        return linking_metrics(predictions, references, retrieved, num_candidates=num_candidates)
