"""Linking metrics: policy for composite / no-id / out-of-KB mentions, error breakdown, evaluate module, `bel eval`."""

from __future__ import annotations

import json

import pytest

from bel.evaluation import gold_rank, linking_metrics, rank_candidates

from .helpers import FIXTURES, REPO, tiny_model, train_fixture


def test_metrics_policy_on_hand_built_mentions():
    rankings = [["a", "b", "c"], ["b", "a", "c"], ["x", "y", "z"], ["p", "q", "r"], ["c", "b", "a"], ["m", "n", "o"]]
    gold = [("a",), ("a",), ("z", "y"), (), ("zz",), ("o",)]
    retrieved = [
        ["a", "b", "c", "d"],
        ["a", "b", "c", "d"],
        ["z", "x", "y", "w"],
        ["p"],
        ["c", "b", "a", "d"],
        ["m", "n", "k", "o"],
    ]
    in_kb = [True, True, True, True, False, True]
    result = linking_metrics(rankings, gold, retrieved, in_kb, num_candidates=3)
    assert result["nil_mentions"] == 1 and result["evaluated"] == 5 and result["mentions"] == 6
    assert result["composite_mentions"] == 1 and result["gold_not_in_kb"] == 1
    # correct at 1: mention 0 only; composite mention 2 has a gold at rank 2 (any-of policy)
    assert result["acc@1"] == pytest.approx(1 / 5)
    assert result["acc@5"] == pytest.approx(4 / 5)
    assert result["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 2 + 0 + 1 / 3) / 5)
    assert result["acc@1_in_kb"] == pytest.approx(1 / 4)
    # retriever: gold first for mentions 0, 1, 2 (composite "z"); "o" only at rank 4 -> outside C=3
    assert result["retriever_acc@1"] == pytest.approx(3 / 5)
    assert result["retriever_recall"] == {"1": pytest.approx(3 / 5)}
    assert result["errors"] == {"gold_not_retrieved": 2, "reranker_wrong": 2}


def test_recall_levels_follow_retrieval_depth():
    retrieved = [[str(i) for i in range(70)]] * 2
    result = linking_metrics([["3"], ["65"]], [("3",), ("65",)], retrieved)
    assert result["retriever_recall"] == {"1": 0.0, "5": 0.5, "16": 0.5, "64": 0.5}
    assert gold_rank(["a", "b"], ["b", "a"]) == 1 and gold_rank(["a"], ["q"]) is None
    assert rank_candidates(["a", "b", "c"], [0.1, 0.5, 0.5]) == ["b", "c", "a"]  # ties keep retrieval order


def test_evaluate_module_loads_by_path_and_matches(monkeypatch):
    evaluate = pytest.importorskip("evaluate")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = evaluate.load(str(REPO / "eval" / "linking_accuracy"))
    predictions = [["a", "b"], ["c", "d"], ["e"]]
    references = [["b"], ["c", "z"], []]
    result = metric.compute(predictions=predictions, references=references)
    assert result == linking_metrics(predictions, [tuple(r) for r in references])
    assert result["acc@1"] == 0.5 and result["nil_mentions"] == 1


def test_bel_eval_cli_writes_documented_keys(tmp_path, bert_tokenizer):
    from bel.cli import main
    from bel.saving import save_linker as save_pipeline

    _, _, retriever = train_fixture()
    model = tiny_model(bert_tokenizer, mode="mention", num_candidates=4)
    save_pipeline(tmp_path / "model", model, bert_tokenizer, retriever)
    out = tmp_path / "metrics.json"
    args = [
        "eval",
        str(tmp_path / "model"),
        "--corpus-file",
        str(FIXTURES / "bel_train_dev.txt"),
        "--kb-file",
        str(FIXTURES / "bel_train_kb.txt"),
        "--output",
        str(out),
    ]
    assert main(args) == 0
    result = json.loads(out.read_text())
    for key in ("acc@1", "acc@5", "mrr", "retriever_recall", "errors", "nil_mentions", "mentions_per_second"):
        assert key in result
    assert result["mode"] == "mention" and result["num_candidates"] == 4
    assert result["acc@1"] <= result["acc@5"] <= 1.0
    errors = result["errors"]["gold_not_retrieved"] + result["errors"]["reranker_wrong"]
    assert errors == round((1 - result["acc@1"]) * result["evaluated"])
    retriever_out = tmp_path / "retriever.json"
    assert main(["eval", "--retriever-only", *args[2:-1], str(retriever_out)]) == 0
    only = json.loads(retriever_out.read_text())
    assert only["mode"] == "retriever" and only["acc@1"] == only["retriever_acc@1"]


def test_bel_eval_predictions_file_agrees_with_metrics(tmp_path, bert_tokenizer):
    from collections import Counter

    from bel.cli import main
    from bel.data import read_pubtator
    from bel.saving import save_linker as save_pipeline

    _, _, retriever = train_fixture()
    save_pipeline(
        tmp_path / "model", tiny_model(bert_tokenizer, mode="sentence", num_candidates=4), bert_tokenizer, retriever
    )
    dev = read_pubtator(FIXTURES / "bel_train_dev.txt")
    common = ["--corpus-file", str(FIXTURES / "bel_train_dev.txt"), "--kb-file", str(FIXTURES / "bel_train_kb.txt")]
    for model_args in ([str(tmp_path / "model")], ["--retriever-only"]):
        out, lines = tmp_path / "metrics.json", tmp_path / "predictions.jsonl"
        assert main(["eval", *model_args, *common, "--output", str(out), "--predictions", str(lines)]) == 0
        metrics = json.loads(out.read_text())
        records = [json.loads(line) for line in lines.read_text().splitlines()]
        assert len(records) == sum(len(doc.mentions) for doc in dev)  # every mention, nil ones included
        outcomes = Counter(r["outcome"] for r in records)
        assert outcomes["nil"] == metrics["nil_mentions"]
        assert outcomes["correct"] == round(metrics["acc@1"] * metrics["evaluated"])
        assert outcomes["reranker_wrong"] == metrics["errors"]["reranker_wrong"]
        assert outcomes["gold_not_retrieved"] + outcomes["gold_not_in_kb"] == metrics["errors"]["gold_not_retrieved"]
        for record in records:
            assert (
                record["text"]
                == next(d for d in dev if d.id == record["document"]).text[record["start"] : record["end"]]
            )
            assert record["predicted"] == record["top"][0]["id"]
            assert [t["score"] for t in record["top"]] == sorted((t["score"] for t in record["top"]), reverse=True)
