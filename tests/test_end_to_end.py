"""End-to-end metrics (`bel.end_to_end`) on hand-built cases, and `bel eval --end-to-end` on a tiny saved linker."""

from __future__ import annotations

import json

import pytest

from bel.data.document import Mention
from bel.end_to_end import end_to_end_metrics, prf

from .helpers import FIXTURES, tiny_model, train_fixture


def gold(start, end, type_, *ids):
    return Mention(start=start, end=end, text="x" * (end - start), type=type_, ids=tuple(ids))


def pred(start, end, type_, entity_id):
    return {"start": start, "end": end, "text": "x" * (end - start), "type": type_, "entity_id": entity_id}


def counts(scores):
    return scores["tp"], scores["fp"], scores["fn"]


# Two documents covering each case once (expected numbers worked out by hand in the comments).
GOLD = [
    [
        gold(0, 10, "Disease", "D1"),  # g0
        gold(20, 30, "Chemical", "C1"),  # g1
        gold(40, 50, "Disease", "D2", "D3"),  # g2: composite
        gold(60, 70, "Disease"),  # g3: no id
    ],
    [
        gold(0, 5, "Disease", "D4"),  # g4
        gold(10, 20, "Chemical", "C2"),  # g5: C2 is not in the KB
    ],
]
PREDICTED = [
    [
        pred(0, 10, "Disease", "D1"),  # p0: exact, right type, right id
        pred(20, 30, "Disease", "C1"),  # p1: exact span, wrong type, right id
        pred(42, 50, "Disease", "D3"),  # p2: overlaps g2, not exact
        pred(60, 70, None, "D9"),  # p3: untyped (wildcard), on the no-id gold span
    ],
    [
        pred(0, 5, "Disease", None),  # p4: NIL
        pred(10, 20, "Chemical", "C2"),  # p5: exact, linked to the not-in-KB id
        pred(30, 35, "Chemical", "C5"),  # p6: spurious
    ],
]


def in_kb(entity_id):
    return entity_id not in {"C2", "D2"}  # g2 stays in the KB through D3


@pytest.fixture(scope="module")
def result():
    return end_to_end_metrics(GOLD, PREDICTED, in_kb=in_kb)


def test_prf():
    assert prf(0, 0, 0) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 0, "fn": 0}
    scores = prf(3, 1, 2)
    assert scores["precision"] == 0.75 and scores["recall"] == 0.6
    assert scores["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)


def test_totals(result):
    assert result["documents"] == 2 and result["gold_mentions"] == 6 and result["predicted_mentions"] == 7
    assert result["untyped_predictions"] == 1


def test_detection_strict(result):
    # tp: p0-g0, p3-g3 (wildcard type), p4-g4, p5-g5; fp: p1 (wrong type), p2 (not exact), p6; fn: g1, g2
    strict = result["detection"]["strict"]
    assert counts(strict) == (4, 3, 2)
    assert strict["precision"] == pytest.approx(4 / 7) and strict["recall"] == pytest.approx(4 / 6)
    assert strict["f1"] == pytest.approx(8 / 13)


def test_detection_overlap_and_untyped(result):
    # overlap adds p2-g2; p1-g1 still differ in type
    assert counts(result["detection"]["overlap"]) == (5, 2, 1)
    # exact span, type ignored: p0, p1, p3, p4, p5 match; p2 and p6 do not; g2 missed
    assert counts(result["detection"]["untyped_strict"]) == (5, 2, 1)


def test_detection_per_type(result):
    per_type = result["detection"]["per_type"]
    assert sorted(per_type) == ["Chemical", "Disease"]
    # Disease: tp g0, g3, g4; fp p1, p2 (predicted Disease); fn g2.  Chemical: tp g5; fp p6; fn g1
    assert counts(per_type["Disease"]["strict"]) == (3, 2, 1)
    assert counts(per_type["Chemical"]["strict"]) == (1, 1, 1)
    assert counts(per_type["Disease"]["overlap"]) == (4, 1, 0)
    assert counts(per_type["Chemical"]["overlap"]) == (1, 1, 1)
    for category in ("strict", "overlap"):  # per-type counts split the overall ones (the one untyped pred matched)
        overall = result["detection"][category]
        for key in ("tp", "fp", "fn"):
            assert sum(per_type[t][category][key] for t in per_type) == overall[key]


def test_linking(result):
    # scored gold: g0, g1, g2, g4, g5 (g3 has no id); p4 NIL; p3 dropped (on g3's span)
    # tp: p0-g0, p1-g1 (types play no part), p5-g5; fp: p2 (not exact), p6; fn: g2, g4 (its prediction is NIL)
    linking = result["linking"]
    assert counts(linking) == (3, 2, 2)
    assert linking["precision"] == 0.6 and linking["recall"] == 0.6 and linking["f1"] == pytest.approx(0.6)
    assert linking["gold_without_id"] == 1 and linking["nil_predictions"] == 1 and linking["dropped_predictions"] == 1
    assert "gold_not_in_kb" not in linking
    assert counts(linking["per_type"]["Disease"]) == (1, 1, 2)  # tp g0; fp p2; fn g2, g4
    assert counts(linking["per_type"]["Chemical"]) == (2, 1, 0)  # tp g1 (gold's type), g5; fp p6


def test_linking_in_kb(result):
    # g5 (C2) leaves the scored gold and p5 on its span is dropped; g2 stays (D3 is in the KB)
    in_kb_scores = result["linking_in_kb"]
    assert counts(in_kb_scores) == (2, 2, 2)
    assert in_kb_scores["gold_not_in_kb"] == 1 and in_kb_scores["gold_without_id"] == 1
    assert in_kb_scores["dropped_predictions"] == 2 and in_kb_scores["nil_predictions"] == 1
    assert counts(in_kb_scores["per_type"]["Disease"]) == (1, 1, 2)
    assert counts(in_kb_scores["per_type"]["Chemical"]) == (1, 1, 0)


def test_no_in_kb_leaves_the_key_out():
    assert "linking_in_kb" not in end_to_end_metrics(GOLD, PREDICTED)


def test_composite_ids_and_repeated_predictions():
    gold_docs = [[gold(0, 5, "Disease", "D2", "D3")]]
    for entity_id in ("D2", "D3"):
        assert counts(end_to_end_metrics(gold_docs, [[pred(0, 5, "Disease", entity_id)]])["linking"]) == (1, 0, 0)
    twice = end_to_end_metrics(gold_docs, [[pred(0, 5, "Disease", "D3"), pred(0, 5, "Disease", "D3")]])
    assert counts(twice["linking"]) == (1, 1, 0)  # each gold mention is matched once
    assert counts(twice["detection"]["strict"]) == (1, 1, 0)
    wrong = end_to_end_metrics(gold_docs, [[pred(0, 5, "Disease", "D9")]])
    assert counts(wrong["linking"]) == (0, 1, 1) and counts(wrong["detection"]["strict"]) == (1, 0, 0)


def test_typed_predictions_pick_before_untyped_ones():
    # same span annotated twice; the untyped prediction comes first but must not take the gold the typed one needs
    gold_docs = [[gold(0, 5, "Disease", "D1"), gold(0, 5, "Chemical", "C1")]]
    predicted = [[pred(0, 5, None, "C1"), pred(0, 5, "Disease", "D1")]]
    result = end_to_end_metrics(gold_docs, predicted)
    assert counts(result["detection"]["strict"]) == (2, 0, 0)
    assert counts(result["linking"]) == (2, 0, 0)


def test_overlap_is_greedy_by_largest_overlap():
    # X overlaps A by 2 and B by 1, Y overlaps A by 10: taking the largest overlap first matches both gold mentions
    # (X first, by its own largest overlap, would take A and leave Y and B unmatched)
    gold_docs = [[gold(0, 10, "Disease", "D1"), gold(11, 20, "Disease", "D2")]]
    predicted = [[pred(8, 12, "Disease", None), pred(0, 10, "Disease", None)]]
    result = end_to_end_metrics(gold_docs, predicted)
    assert counts(result["detection"]["overlap"]) == (2, 0, 0)
    assert counts(result["detection"]["strict"]) == (1, 1, 1)


def test_untyped_false_positives_take_the_type_of_the_gold_they_overlap():
    gold_docs = [[gold(0, 10, "Disease", "D1"), gold(20, 30, "Chemical", "C1")]]
    # a wrong link on the Disease span, a partial match mostly on the Chemical span, a spurious mention
    predicted = [[pred(0, 10, None, "D2"), pred(18, 24, None, "C1"), pred(40, 45, None, "X1")]]
    result = end_to_end_metrics(gold_docs, predicted)
    assert counts(result["detection"]["strict"]) == (1, 2, 1)
    per_type = result["detection"]["per_type"]
    assert counts(per_type["Disease"]["strict"]) == (1, 0, 0)
    assert counts(per_type["Chemical"]["strict"]) == (0, 1, 1)  # the spurious one belongs to no type
    assert counts(per_type["Chemical"]["overlap"]) == (1, 0, 0)
    assert counts(result["linking"]) == (0, 3, 2)
    assert counts(result["linking"]["per_type"]["Disease"]) == (0, 1, 1)
    assert counts(result["linking"]["per_type"]["Chemical"]) == (0, 1, 1)


def test_edge_cases():
    empty = end_to_end_metrics([[], []], [[], []], in_kb=lambda i: True)
    assert counts(empty["detection"]["strict"]) == (0, 0, 0) and empty["detection"]["per_type"] == {}
    assert empty["linking"]["f1"] == 0.0
    with pytest.raises(ValueError, match="align by index"):
        end_to_end_metrics([[]], [])
    # dict gold mentions and predictions without a "type" key work too
    result = end_to_end_metrics(
        [[{"start": 0, "end": 3, "type": "Disease", "ids": ["D1"]}]], [[{"start": 0, "end": 3, "entity_id": "D1"}]]
    )
    assert counts(result["detection"]["strict"]) == (1, 0, 0) and counts(result["linking"]) == (1, 0, 0)


# ------------------------------------------------------------------------------------------------ CLI
def test_bel_eval_end_to_end_cli(tmp_path, bert_tokenizer):
    from bel.cli import main
    from bel.data import read_pubtator
    from bel.saving import save_linker

    _, _, retriever = train_fixture()
    save_linker(
        tmp_path / "model", tiny_model(bert_tokenizer, mode="mention", num_candidates=4), bert_tokenizer, retriever
    )
    corpus = FIXTURES / "bel_train_dev.txt"
    common = ["--corpus-file", str(corpus), "--kb-file", str(FIXTURES / "bel_train_kb.txt")]
    out = tmp_path / "metrics.json"
    assert main(["eval", str(tmp_path / "model"), *common, "--end-to-end", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in ("acc@1", "acc@5", "mrr", "retriever_recall", "errors", "mentions_per_second"):  # gold-span keys stay
        assert key in result
    e2e = result["end_to_end"]
    gold_mentions = sum(len(doc.mentions) for doc in read_pubtator(corpus))
    assert e2e["gold_mentions"] == gold_mentions > 0 and e2e["predicted_mentions"] > 0
    assert e2e["detector"] == "dictionary"  # the tiny checkpoint has no detector/
    assert e2e["end_to_end_seconds"] > 0 and e2e["documents_per_second"] > 0
    assert e2e["documents"] == result["documents"]
    detection = e2e["detection"]
    for category in ("strict", "overlap", "untyped_strict"):
        scores = detection[category]
        assert set(scores) == {"precision", "recall", "f1", "tp", "fp", "fn"}
        assert scores["tp"] + scores["fn"] == gold_mentions
        assert scores["tp"] + scores["fp"] == e2e["predicted_mentions"]
    assert "Disease" in detection["per_type"]
    assert detection["strict"]["tp"] > 0  # the dictionary finds some of the gold spans
    linking, in_kb = e2e["linking"], e2e["linking_in_kb"]
    assert linking["tp"] + linking["fn"] + linking["gold_without_id"] == gold_mentions
    predicted_links = e2e["predicted_mentions"] - linking["nil_predictions"]
    assert linking["tp"] + linking["fp"] + linking["dropped_predictions"] == predicted_links
    assert in_kb["tp"] + in_kb["fn"] + in_kb["gold_without_id"] + in_kb["gold_not_in_kb"] == gold_mentions
    assert in_kb["tp"] + in_kb["fp"] + in_kb["dropped_predictions"] == predicted_links
    assert "per_type" in linking and "per_type" in in_kb

    # an explicit --detector goes to the pipeline (and is reported as given)
    explicit = tmp_path / "dictionary.json"
    args = ["eval", str(tmp_path / "model"), *common, "--end-to-end", "--detector", "dictionary"]
    assert main([*args, "--max-documents", "2", "--output", str(explicit)]) == 0
    assert json.loads(explicit.read_text())["end_to_end"]["detector"] == "dictionary"


def test_bel_eval_end_to_end_needs_a_model():
    from bel.cli import main

    with pytest.raises(SystemExit, match="MODEL"):
        main(["eval", "--retriever-only", "--end-to-end", "--kb-file", str(FIXTURES / "bel_train_kb.txt")])
    with pytest.raises(SystemExit, match="--end-to-end"):
        main(["eval", "some-model", "--detector", "model"])
