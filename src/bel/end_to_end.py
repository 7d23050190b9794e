"""End-to-end metrics: mentions detected and linked on raw text, compared with the gold mentions (pure functions).

`bel eval MODEL --end-to-end` runs the linker pipeline on each document's raw text and scores its output here.

Policy:

- **Documents** are aligned by index; mentions are compared within their document only. Every gold mention and every
  prediction is matched at most once.
- **Types**: `type` None is a wildcard for typed matching (the dictionary detector gives no type): a prediction
  without a type matches a gold mention of any type, and a gold mention without a type any prediction.
- **Detection**: `strict` = exact `(start, end)` and compatible type; `overlap` = at least one character in common and
  compatible type, pairs taken greedily by largest overlap (ties: text order); `untyped_strict` = exact span, type
  ignored.
- **Linking** (`linking`): a true positive is a prediction on exactly a gold span whose `entity_id` is among that
  gold mention's ids (composite mentions: any of them; ids canonicalised by the caller). Types play no part. Gold
  mentions without an id (`ids == ()`) are left out of recall (`gold_without_id`) and a linked prediction on exactly
  such a span is dropped, not a false positive (`dropped_predictions`). NIL predictions (`entity_id` None) are not
  links: no tp, no fp (`nil_predictions`); the gold mention stays a false negative.
- **Linking in the KB** (`linking_in_kb`, when `in_kb` is given): the same, over the gold mentions with at least one id
  in the KB; gold mentions whose ids are all outside it are left out too (`gold_not_in_kb`, e.g. BC5CDR supplementary
  chemical ids no system can link) and predictions on exactly their spans dropped.
- **Per type** (`per_type`, over the union of gold and predicted types): counts of the overall matching, split by
  type: a true positive and a false negative belong to the gold mention's type (the prediction's when the gold has
  none), a false positive to the prediction's type; a false positive without a type to the type of the gold mention
  it overlaps most (a wrong link on a gold span, a partial match), and to no type when it overlaps none (then it is
  only in the overall counts, so per-type fp of an untyped detector leave out its spurious mentions).
- Rates are 0.0 when their denominator is 0.

Output of :func:`end_to_end_metrics`::

    {"documents", "gold_mentions", "predicted_mentions", "untyped_predictions",
     "detection": {"strict": S, "overlap": S, "untyped_strict": S, "per_type": {TYPE: {"strict": S, "overlap": S}}},
     "linking": {**S, "gold_without_id", "nil_predictions", "dropped_predictions", "per_type": {TYPE: S}},
     "linking_in_kb": {**S, "gold_without_id", "gold_not_in_kb", "nil_predictions", "dropped_predictions",
                       "per_type": {TYPE: S}}}

with `S = {"precision", "recall", "f1", "tp", "fp", "fn"}`; in each, `tp + fn` is the number of gold mentions scored
and `tp + fp` the number of predictions scored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

SCORE_KEYS = ("precision", "recall", "f1", "tp", "fp", "fn")

# one gold mention or prediction, normalised: (start, end, type, ids or entity id)
_Item = tuple[int, int, Any, Any]


def prf(tp: int, fp: int, fn: int) -> dict:
    """`{"precision", "recall", "f1", "tp", "fp", "fn"}` from the counts (a rate is 0.0 when undefined)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def end_to_end_metrics(
    gold: Sequence[Sequence[Any]],
    predicted: Sequence[Sequence[Mapping]],
    *,
    in_kb: Callable[[str], bool] | None = None,
) -> dict:
    """Detection and linking scores of `predicted` against `gold` (see the module docstring for policy and keys).

    `gold[d]` are document d's gold mentions (objects with `start`, `end`, `type`, `ids`, e.g.
    `bel.data.document.Mention`, or dicts with those keys; ids canonicalised, types mapped by the caller);
    `predicted[d]` its predicted mentions as pipeline output dicts (`start`, `end`, `type` (missing: None),
    `entity_id`). `in_kb(id)` says whether an id is a KB entity; without it `linking_in_kb` is left out.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"gold has {len(gold)} documents but predicted has {len(predicted)}; they align by index.")
    golds = [[_gold_item(m) for m in doc] for doc in gold]
    preds = [[_predicted_item(p) for p in doc] for doc in predicted]
    types = sorted({t for doc in (*golds, *preds) for _, _, t, _ in doc if t is not None})

    strict, overlap, untyped = _Tally(types), _Tally(types), _Tally(types)
    for doc_gold, doc_pred in zip(golds, preds, strict=True):
        strict.add(doc_gold, doc_pred, _match_strict(doc_gold, doc_pred, typed=True))
        overlap.add(doc_gold, doc_pred, _match_overlap(doc_gold, doc_pred))
        untyped.add(doc_gold, doc_pred, _match_strict(doc_gold, doc_pred, typed=False))
    result = {
        "documents": len(golds),
        "gold_mentions": sum(map(len, golds)),
        "predicted_mentions": sum(map(len, preds)),
        "untyped_predictions": sum(p[2] is None for doc in preds for p in doc),
        "detection": {
            "strict": strict.scores(),
            "overlap": overlap.scores(),
            "untyped_strict": untyped.scores(),
            "per_type": {t: {"strict": strict.scores(t), "overlap": overlap.scores(t)} for t in types},
        },
        "linking": _linking(golds, preds, types, None),
    }
    if in_kb is not None:
        result["linking_in_kb"] = _linking(golds, preds, types, in_kb)
    return result


# ------------------------------------------------------------------------------------------------ normalisation
def _field(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def _gold_item(mention: Any) -> _Item:
    ids = _field(mention, "ids", ()) or ()
    return int(_field(mention, "start")), int(_field(mention, "end")), _field(mention, "type"), tuple(ids)


def _predicted_item(prediction: Mapping) -> _Item:
    return int(prediction["start"]), int(prediction["end"]), prediction.get("type"), prediction.get("entity_id")


def _compatible(gold_type: Any, predicted_type: Any) -> bool:
    return gold_type is None or predicted_type is None or gold_type == predicted_type


# ------------------------------------------------------------------------------------------------ matching
def _match_strict(gold: list[_Item], predicted: list[_Item], *, typed: bool) -> dict[int, int]:
    """`{prediction index: gold index}` of exact-span pairs (type-compatible when `typed`); typed predictions pick
    first, and a prediction takes an unmatched gold of its exact type before a wildcard one."""
    by_span: dict[tuple[int, int], list[int]] = {}
    for g, (start, end, _, _) in enumerate(gold):
        by_span.setdefault((start, end), []).append(g)
    taken: set[int] = set()
    pairs: dict[int, int] = {}
    for p in sorted(range(len(predicted)), key=lambda p: predicted[p][2] is None):
        start, end, p_type, _ = predicted[p]
        free = [g for g in by_span.get((start, end), ()) if g not in taken]
        if typed:
            free = sorted((g for g in free if _compatible(gold[g][2], p_type)), key=lambda g: (gold[g][2] != p_type, g))
        if free:
            taken.add(free[0])
            pairs[p] = free[0]
    return pairs


def _match_overlap(gold: list[_Item], predicted: list[_Item]) -> dict[int, int]:
    """`{prediction index: gold index}`: type-compatible pairs sharing characters, greedy by largest overlap."""
    candidates = []
    for p, (p_start, p_end, p_type, _) in enumerate(predicted):
        for g, (g_start, g_end, g_type, _) in enumerate(gold):
            common = min(p_end, g_end) - max(p_start, g_start)
            if common > 0 and _compatible(g_type, p_type):
                candidates.append((-common, g_start, p_start, g, p))
    taken_gold: set[int] = set()
    pairs: dict[int, int] = {}
    for _, _, _, g, p in sorted(candidates):
        if g not in taken_gold and p not in pairs:
            taken_gold.add(g)
            pairs[p] = g
    return pairs


def _overlapped_type(item: _Item, gold: list[_Item]) -> Any:
    """The type of the gold mention sharing most characters with `item` (first on ties), or None when none does."""
    best, best_type = 0, None
    for g_start, g_end, g_type, _ in gold:
        common = min(item[1], g_end) - max(item[0], g_start)
        if common > best and g_type is not None:
            best, best_type = common, g_type
    return best_type


class _Tally:
    """tp/fp/fn overall and per type, accumulated over documents from `{prediction: gold}` matchings."""

    def __init__(self, types: Sequence[str]) -> None:
        self.total: Counter = Counter()
        self.per_type: dict[str, Counter] = {t: Counter() for t in types}

    def count(self, key: str, item_type: Any) -> None:
        self.total[key] += 1
        if item_type is not None:
            self.per_type[item_type][key] += 1

    def add(self, gold: list[_Item], predicted: list[_Item], pairs: dict[int, int]) -> None:
        matched = set(pairs.values())
        for p, g in pairs.items():
            self.count("tp", gold[g][2] if gold[g][2] is not None else predicted[p][2])
        for p, item in enumerate(predicted):
            if p not in pairs:
                self.count("fp", item[2] if item[2] is not None else _overlapped_type(item, gold))
        for g, item in enumerate(gold):
            if g not in matched:
                self.count("fn", item[2])

    def scores(self, item_type: str | None = None) -> dict:
        counts = self.total if item_type is None else self.per_type[item_type]
        return prf(counts["tp"], counts["fp"], counts["fn"])


def _linking(
    golds: list[list[_Item]], preds: list[list[_Item]], types: Sequence[str], in_kb: Callable[[str], bool] | None
) -> dict:
    """Strict linking scores; with `in_kb`, over the gold mentions with an id in the KB only."""
    tally = _Tally(types)
    extra = Counter(gold_without_id=0, gold_not_in_kb=0, nil_predictions=0, dropped_predictions=0)
    for doc_gold, doc_pred in zip(golds, preds, strict=True):
        scored, excluded_spans = [], set()
        for start, end, g_type, ids in doc_gold:
            if not ids:
                extra["gold_without_id"] += 1
                excluded_spans.add((start, end))
            elif in_kb is not None and not any(in_kb(i) for i in ids):
                extra["gold_not_in_kb"] += 1
                excluded_spans.add((start, end))
            else:
                scored.append((start, end, g_type, ids))
        linked = []
        for item in doc_pred:
            if item[3] is None:
                extra["nil_predictions"] += 1
            else:
                linked.append(item)
        pairs = _match_links(scored, linked)
        kept = [p for p, item in enumerate(linked) if p in pairs or item[:2] not in excluded_spans]
        extra["dropped_predictions"] += len(linked) - len(kept)
        position = {p: k for k, p in enumerate(kept)}
        tally.add(scored, [linked[p] for p in kept], {position[p]: g for p, g in pairs.items()})
    result = {**tally.scores(), **extra}
    if in_kb is None:
        del result["gold_not_in_kb"]
    result["per_type"] = {t: tally.scores(t) for t in types}
    return result


def _match_links(gold: list[_Item], predicted: list[_Item]) -> dict[int, int]:
    """`{prediction index: gold index}`: exact span and the predicted id among the gold ids."""
    taken: set[int] = set()
    pairs: dict[int, int] = {}
    for p, (start, end, _, entity_id) in enumerate(predicted):
        for g, (g_start, g_end, _, ids) in enumerate(gold):
            if g not in taken and (g_start, g_end) == (start, end) and entity_id in ids:
                taken.add(g)
                pairs[p] = g
                break
    return pairs
