"""Entity-linking metrics as plain functions, and the harness that scores a reranker on built examples.

Policy:

- **Composite mentions** (several gold ids, e.g. ``D001|D002``): a prediction is correct when it is *any* of the gold
  ids (the reranker outputs one entity per mention); the rank of a composite mention is the best rank of any gold id.
  Their number is reported as ``composite_mentions``.
- **No-id mentions** (PubTator ``-1``): excluded from every rate, counted in ``nil_mentions``.
- **Gold not in the KB** (e.g. BC5CDR chemical supplementary C ids that have no name in MeSH): kept in the rates
  (they can never be right, as in a real deployment) and counted in ``gold_not_in_kb``; ``acc@1_in_kb`` is Acc@1 over
  the other mentions.
- **Error breakdown** of the Acc@1 errors: ``gold_not_retrieved`` (no gold id among the C reranked candidates: the
  reranker could not be right) vs ``reranker_wrong`` (gold among them, another ranked first).

Output keys of :func:`linking_metrics`: ``mentions``, ``evaluated``, ``nil_mentions``, ``composite_mentions``,
``gold_not_in_kb``, ``acc@1``, ``acc@5``, ``mrr``, ``acc@1_in_kb``, ``retriever_acc@1``, ``retriever_recall``
(``{"1": r, "5": r, "16": r, "64": r}``, k up to the retrieved depth), ``errors``
(``{"gold_not_retrieved": n, "reranker_wrong": n}``), ``num_candidates``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from bel.consistency_bel import DEFAULT_REPEATED_NAMES, repeat_groups, reranked_mentions, share_repeats
from bel.examples import only_mentions
from bel.inputs_bel import retrieval_queries

logger = logging.getLogger(__name__)

RECALL_KS = (1, 5, 16, 64)


def gold_rank(ranked_ids: Sequence[str], gold_ids: Sequence[str]) -> int | None:
    """1-based rank of the first gold id in ``ranked_ids``, or None when no gold id is there."""
    gold = set(gold_ids)
    for rank, entity_id in enumerate(ranked_ids, start=1):
        if entity_id in gold:
            return rank
    return None


def rank_candidates(candidate_ids: Sequence[str], scores: Sequence[float]) -> list[str]:
    """Candidate ids by descending score; ties keep the retriever's order (stable sort)."""
    return [candidate_ids[i] for i in _descending(scores)]


def _descending(scores: Sequence[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def linking_metrics(
    rankings: Sequence[Sequence[str]],
    gold: Sequence[Sequence[str]],
    retrieved: Sequence[Sequence[str]] | None = None,
    in_kb: Sequence[bool] | None = None,
    num_candidates: int | None = None,
    composite: Sequence[bool] | None = None,
) -> dict:
    """Acc@1, Acc@5, MRR, retriever recall@k and the error breakdown (see the module docstring for the policy).

    ``rankings[i]`` are mention i's reranked candidate ids (best first), ``gold[i]`` its gold ids (empty: no id),
    ``retrieved[i]`` the retriever's ids best first (at least ``num_candidates`` deep for recall@k; defaults to
    ``rankings``), ``in_kb[i]`` whether any gold id is a KB entity, ``composite[i]`` (default: more than one gold id).
    """
    if len(rankings) != len(gold):
        raise ValueError(f"{len(rankings)} rankings but {len(gold)} gold lists: pass one of each per mention.")
    retrieved = rankings if retrieved is None else retrieved
    in_kb = [True] * len(gold) if in_kb is None else in_kb
    composite = [len(g) > 1 for g in gold] if composite is None else composite
    depth = num_candidates or max((len(r) for r in rankings), default=0)
    deepest = max((len(r) for r in retrieved), default=0)
    recall_ks = [k for k in RECALL_KS if k <= max(deepest, 1)] or [1]
    counts = {"acc@1": 0, "acc@5": 0, "mrr": 0.0, "retriever_acc@1": 0, "in_kb": 0, "in_kb_correct": 0}
    recall = dict.fromkeys(recall_ks, 0)
    errors = {"gold_not_retrieved": 0, "reranker_wrong": 0}
    evaluated = nil = composites = missing = 0
    for ranking, gold_ids, found, known, is_composite in zip(rankings, gold, retrieved, in_kb, composite, strict=True):
        if not gold_ids:
            nil += 1
            continue
        evaluated += 1
        composites += bool(is_composite)
        missing += not known
        rank = gold_rank(ranking, gold_ids)
        counts["acc@1"] += rank == 1
        counts["acc@5"] += rank is not None and rank <= 5
        counts["mrr"] += 1.0 / rank if rank else 0.0
        retrieval_rank = gold_rank(found, gold_ids)
        counts["retriever_acc@1"] += retrieval_rank == 1
        for k in recall:
            recall[k] += retrieval_rank is not None and retrieval_rank <= k
        if known:
            counts["in_kb"] += 1
            counts["in_kb_correct"] += rank == 1
        if rank != 1:
            in_candidates = gold_rank(found[:depth], gold_ids) is not None
            errors["reranker_wrong" if in_candidates else "gold_not_retrieved"] += 1
    tallies = {"mentions": len(gold), "evaluated": evaluated, "nil_mentions": nil, "composite_mentions": composites}
    return _summary({**tallies, "gold_not_in_kb": missing}, counts, recall, errors, depth)


def _rate(value: float, total: int) -> float:
    return float(value) / total if total else 0.0


def _summary(tallies: dict, counts: dict, recall: dict, errors: dict, depth: int) -> dict:
    """The metrics JSON of :func:`linking_metrics` from its tallies."""
    evaluated = tallies["evaluated"]
    return {
        **tallies,
        "acc@1": _rate(counts["acc@1"], evaluated),
        "acc@5": _rate(counts["acc@5"], evaluated),
        "mrr": _rate(counts["mrr"], evaluated),
        "acc@1_in_kb": _rate(counts["in_kb_correct"], counts["in_kb"]),
        "retriever_acc@1": _rate(counts["retriever_acc@1"], evaluated),
        "retriever_recall": {str(k): _rate(v, evaluated) for k, v in recall.items()},
        "errors": errors,
        "num_candidates": depth,
    }


def score_examples(
    model,
    tokenizer,
    examples,
    mode: str | None = None,
    template: str | None = None,
    max_tokens: int = 2048,
    cascade: bool = False,
    timings: dict[str, float] | None = None,
    repeated_names: str = "each",
) -> list[list[list[float]]]:
    """Reranker scores ``[document][mention][candidate]`` for built examples (retrieval scores passed when used).

    With ``cascade``, mentions the retriever decides (``example.retriever_decided``) are left out of the reranker's
    input, as the pipeline leaves them out, and score their candidates in the retriever's order (0, -1, -2, ...).
    ``repeated_names`` treats a document's mentions that repeat a name (same abbreviation-expanded query, same
    candidates) as the pipeline does (``bel.consistency_bel``): ``"first"`` reranks the first and copies its scores,
    ``"pool"`` gives all the pooled log-probabilities, ``"each"`` scores every mention alone.
    ``timings`` accumulates the packing and forward seconds (see ``model.score``).
    """
    options = {"mode": mode, "template": template, "max_tokens": max_tokens, "timings": timings}
    selected = [reranker_selection(example, cascade, repeated_names) for example in examples]
    groups, kept = [groups for groups, _ in selected], [keep for _, keep in selected]
    scored = [d for d, keep in enumerate(kept) if keep]
    inputs = [
        examples[d].input
        if len(kept[d]) == len(examples[d].candidate_ids)
        else only_mentions(examples[d].input, kept[d])
        for d in scored
    ]
    reranked = model.score(tokenizer, inputs, **options) if inputs else []
    scores: list[list] = [[None] * len(e.candidate_ids) for e in examples]
    for d, doc_scores in zip(scored, reranked, strict=True):
        for m, mention_scores in zip(kept[d], doc_scores, strict=True):
            scores[d][m] = mention_scores
    scores = [share_repeats(doc, doc_groups, repeated_names) for doc, doc_groups in zip(scores, groups, strict=True)]
    for doc, example in zip(scores, examples, strict=True):  # decided by the retriever: its order
        for m, ids in enumerate(example.candidate_ids):
            if doc[m] is None:
                doc[m] = [-float(c) for c in range(len(ids))]
    return scores


def reranker_selection(example, cascade: bool, repeated_names: str) -> tuple[list[int], list[int]]:
    """``(groups, kept)`` of one example: its repeat groups (``bel.consistency_bel.repeat_groups``; a mention the
    cascade decides is its own group) and the mentions the reranker reads, as the pipeline selects them."""
    decided = (example.retriever_decided if cascade else []) or [False] * len(example.candidate_ids)
    queries = retrieval_queries(example.input.text, example.input.mentions)
    ids = [[] if done else row for row, done in zip(example.candidate_ids, decided, strict=True)]
    groups = repeat_groups(queries, ids)
    return groups, reranked_mentions(groups, [not done for done in decided], repeated_names)


def cascade_metrics(examples, scores: list[list[list[float]]], enabled: bool) -> dict:
    """How many mentions the retriever decides, and Acc@1 over those and over the reranked rest (mentions with ids)."""
    tally = {"retriever": [0, 0], "reranker": [0, 0]}  # stage: [mentions with ids, correct]
    decided_total = 0
    for d, example in enumerate(examples):
        for m, candidate_ids in enumerate(example.candidate_ids):
            decided = enabled and bool(example.retriever_decided and example.retriever_decided[m])
            decided_total += decided
            if not example.gold_ids[m]:
                continue
            ranked = rank_candidates(candidate_ids, scores[d][m])
            stage = tally["retriever" if decided else "reranker"]
            stage[0] += 1
            stage[1] += bool(ranked) and ranked[0] in set(example.gold_ids[m])
    mentions = sum(len(e.candidate_ids) for e in examples)
    return {
        "enabled": enabled,
        "decided_by_retriever": decided_total,
        "decided_by_retriever_share": decided_total / mentions if mentions else 0.0,
        "acc@1_decided_by_retriever": _rate(tally["retriever"][1], tally["retriever"][0]),
        "acc@1_decided_by_reranker": _rate(tally["reranker"][1], tally["reranker"][0]),
    }


def example_metrics(examples, scores: list[list[list[float]]] | None, retriever=None, num_candidates=None) -> dict:
    """:func:`linking_metrics` of built examples; ``scores=None`` ranks by the retriever alone."""
    rankings, gold, retrieved, in_kb = [], [], [], []
    for d, example in enumerate(examples):
        for m, candidate_ids in enumerate(example.candidate_ids):
            ranked = candidate_ids if scores is None else rank_candidates(candidate_ids, scores[d][m])
            rankings.append(ranked)
            gold.append(example.gold_ids[m])
            retrieved.append(example.retrieved_ids[m] if example.retrieved_ids else candidate_ids)
            in_kb.append(retriever is None or any(g in retriever for g in example.gold_ids[m]))
    return linking_metrics(rankings, gold, retrieved, in_kb, num_candidates=num_candidates)


def evaluate_reranker(
    model,
    tokenizer,
    examples,
    retriever=None,
    mode: str | None = None,
    template: str | None = None,
    max_tokens: int = 2048,
    return_scores: bool = False,
    cascade: bool | None = None,
    repeated_names: str | None = None,
):
    """Score ``examples`` with ``model`` and return :func:`linking_metrics` plus ``mode``, ``template``, timings and
    ``cascade`` (:func:`cascade_metrics`) and ``repeated_names`` (:func:`score_examples`); None follows the checkpoint's
    ``config.cascade`` and ``config.repeated_names`` (else ``"first"``), as the pipeline does.

    With ``return_scores=True`` returns ``(metrics, scores)``, scores as in :func:`score_examples` (for
    :func:`prediction_records`).
    """
    model.eval()
    start = time.perf_counter()
    cascade = getattr(model.config, "cascade", False) if cascade is None else cascade
    repeated_names = (
        getattr(model.config, "repeated_names", DEFAULT_REPEATED_NAMES) if repeated_names is None else repeated_names
    )
    scores = score_examples(
        model, tokenizer, examples, mode, template, max_tokens, cascade=cascade, repeated_names=repeated_names
    )
    seconds = time.perf_counter() - start
    metrics = example_metrics(examples, scores, retriever, num_candidates=model.config.num_candidates)
    metrics.update(
        {
            "cascade": cascade_metrics(examples, scores, cascade),
            "repeated_names": repeated_names,
            "mode": mode or model.config.mode,
            "template": template or model.config.template,
            "inference_seconds": seconds,
            "mentions_per_second": metrics["mentions"] / seconds if seconds > 0 else 0.0,
        }
    )
    return (metrics, scores) if return_scores else metrics


def prediction_records(examples, scores: list[list[list[float]]] | None, retriever=None, top_k: int = 5):
    """One dict per mention, for error analysis (``bel eval --predictions``); ``scores=None``: the retriever's ranking.

    Keys: ``document``, ``start``, ``end``, ``text``, ``gold`` (canonical ids), ``predicted``, ``gold_rank`` (1-based
    among the reranked candidates, None when absent), ``retriever_rank`` (among everything retrieved), ``outcome``
    (``correct``, ``reranker_wrong``, ``gold_not_retrieved``, ``gold_not_in_kb`` or ``nil``) and ``top`` (the best
    ``top_k`` candidates as ``{"id", "name", "score"}``).
    """
    for d, example in enumerate(examples):
        linking = example.input
        for m, candidate_ids in enumerate(example.candidate_ids):
            mention_scores = scores[d][m] if scores is not None else linking.candidate_scores[m]
            order = _descending(mention_scores)
            ranked = [candidate_ids[i] for i in order]
            gold = example.gold_ids[m]
            rank = gold_rank(ranked, gold)
            start, end = linking.mentions[m]
            retrieved = example.retrieved_ids[m] if example.retrieved_ids else candidate_ids
            yield {
                "document": example.doc_id,
                "start": start,
                "end": end,
                "text": linking.text[start:end],
                "gold": list(gold),
                "predicted": ranked[0] if ranked else None,
                "gold_rank": rank,
                "retriever_rank": gold_rank(retrieved, gold),
                "outcome": _outcome(gold, rank, retriever),
                "top": [
                    {"id": candidate_ids[i], "name": linking.candidates[m][i], "score": float(mention_scores[i])}
                    for i in order[:top_k]
                ],
            }


def _outcome(gold, rank: int | None, retriever) -> str:
    if not gold:
        return "nil"
    if rank == 1:
        return "correct"
    if rank is not None:
        return "reranker_wrong"
    if retriever is not None and not any(g in retriever for g in gold):
        return "gold_not_in_kb"
    return "gold_not_retrieved"
