"""Repeated names in one document: grouped by query and candidates, reranked once ("first"), pooled ("pool") or each
on its own ("each"), in the pipeline and in evaluation alike, with every mention in the output."""

from __future__ import annotations

import math

import pytest

from bel import BelConfig, EntityLinkingPipeline
from bel.consistency_bel import pool_repeats, repeat_groups, reranked_mentions, share_repeats
from bel.evaluation import score_examples

from .helpers import tiny_model
from .test_cascade import ambiguous_retriever

# "cold" names two KB entities, so the cascade leaves it to the reranker; "fever" is a unique exact match
TEXT = "A cold with fever. The COLD came back, and a  cold  again."
SPANS = [(2, 6), (12, 17), (23, 27), (46, 50)]


def softmax(row):
    peak = max(row)
    exps = [math.exp(x - peak) for x in row]
    return [x / sum(exps) for x in exps]


@pytest.fixture(scope="module")
def repeat_linker(bert_tokenizer):
    model = tiny_model(bert_tokenizer, mode="sentence", num_candidates=4, seed=3)
    return EntityLinkingPipeline(
        model=model, tokenizer=bert_tokenizer, retriever=ambiguous_retriever(), task="entity-linking"
    )


def link(linker, **options):
    return linker({"text": TEXT, "mentions": [list(span) for span in SPANS]}, top_k=4, **options)


def test_groups_need_the_same_query_and_the_same_candidates():
    queries = ["Cold", "fever", "cold ", "COLD", "cold"]
    ids = [["A", "B"], ["C"], ["A", "B"], ["B", "A"], []]
    assert repeat_groups(queries, ids) == [0, 1, 0, 3, 4]
    assert reranked_mentions([0, 1, 0, 3, 4], [True, False, True, True, True], "first") == [0, 3, 4]
    assert reranked_mentions([0, 1, 0, 3, 4], [True, False, True, True, True], "each") == [0, 2, 3, 4]


def test_pooling_gives_each_member_the_mean_probabilities():
    scores = [[2.0, 0.0, -1.0], None, [0.0, 1.5, 0.5], [3.0]]
    pooled = pool_repeats(scores, [0, 0, 0, 3])
    mean = [(a + b) / 2 for a, b in zip(softmax(scores[0]), softmax(scores[2]), strict=True)]
    assert softmax(pooled[0]) == pytest.approx(mean) and pooled[2] == pooled[0]
    assert pooled[1] is None and pooled[3] == [3.0]  # not reranked: untouched; alone in its group: unchanged
    assert share_repeats([[1.0, 0.0], None, [0.5, 0.5]], [0, 0, 2], "first") == [[1.0, 0.0], [1.0, 0.0], [0.5, 0.5]]
    assert share_repeats([[1.0, 0.0], None], [0, 0], "each") == [[1.0, 0.0], None]


def test_first_reranks_each_name_once_and_every_repeat_takes_its_link(repeat_linker, monkeypatch):
    seen = []
    score = repeat_linker.model.score

    def recording(tokenizer, inputs, **options):
        seen.append([tuple(m) for item in inputs for m in item.mentions])
        return score(tokenizer, inputs, **options)

    monkeypatch.setattr(repeat_linker.model, "score", recording)
    each, first = link(repeat_linker, repeated_names="each"), link(repeat_linker, repeated_names="first")
    assert seen == [[SPANS[0], SPANS[2], SPANS[3]], [SPANS[0]]]  # "fever" is decided by the retriever in both
    assert [(m["start"], m["end"]) for m in first] == [(m["start"], m["end"]) for m in each] == SPANS
    assert first[0] == each[0]  # the first "cold" is reranked in its own sentence either way
    for repeat in (first[2], first[3]):
        assert {k: repeat[k] for k in ("entity_id", "score", "candidates", "decided_by")} == {
            k: first[0][k] for k in ("entity_id", "score", "candidates", "decided_by")
        }
    # each context alone gives other scores (so the copy above is not what "each" gives anyway)
    assert each[2]["candidates"] != each[0]["candidates"] or each[3]["candidates"] != each[0]["candidates"]


def test_pool_gives_every_repeat_the_mean_of_its_contexts(repeat_linker):
    each, pooled = link(repeat_linker, repeated_names="each"), link(repeat_linker, repeated_names="pool")
    members = [0, 2, 3]
    ids = [c["id"] for c in each[0]["candidates"]]
    mean = {
        entity: sum(next(c["score"] for c in each[m]["candidates"] if c["id"] == entity) for m in members) / 3
        for entity in ids
    }
    for m in members:
        assert {c["id"]: c["score"] for c in pooled[m]["candidates"]} == pytest.approx(mean, abs=1e-5)
        assert pooled[m]["entity_id"] == max(mean, key=mean.get)
    assert pooled[1] == each[1]


def test_default_comes_from_the_config_and_bad_values_are_refused(bert_tokenizer, repeat_linker):
    model = tiny_model(bert_tokenizer, mode="sentence", num_candidates=4, seed=3, repeated_names="each")
    linker = EntityLinkingPipeline(
        model=model, tokenizer=bert_tokenizer, retriever=ambiguous_retriever(), task="entity-linking"
    )
    assert link(linker) == link(repeat_linker, repeated_names="each")
    assert link(repeat_linker) == link(repeat_linker, repeated_names="first")
    with pytest.raises(ValueError, match="repeated_names must be one of 'first', 'pool', 'each'"):
        link(repeat_linker, repeated_names="once")
    with pytest.raises(ValueError, match="repeated_names='once'"):
        BelConfig(repeated_names="once")


def test_evaluation_shares_scores_as_the_pipeline_does(bert_tokenizer, tmp_path):
    from bel.data.document import Document, Mention, Passage
    from bel.examples import build_examples

    gold = {"cold": "MESH:D000001", "fever": "MESH:D000003"}
    mentions = [Mention(s, e, TEXT[s:e], "Disease", (gold[TEXT[s:e].lower()],)) for s, e in SPANS]
    examples = build_examples([Document("doc", [Passage("text", 0, TEXT)], mentions)], ambiguous_retriever(), 4)
    model = tiny_model(bert_tokenizer, mode="sentence", num_candidates=4, seed=3)
    each = score_examples(model, bert_tokenizer, examples, cascade=True, repeated_names="each")[0]
    first = score_examples(model, bert_tokenizer, examples, cascade=True, repeated_names="first")[0]
    assert first[0] == pytest.approx(each[0], abs=1e-5) and first[2] == first[3] == first[0]
    assert first[1] == each[1] == [-float(c) for c in range(len(each[1]))]  # decided by the retriever
    pooled = score_examples(model, bert_tokenizer, examples, cascade=True, repeated_names="pool")[0]
    mean = [sum(column) / 3 for column in zip(*(softmax(each[m]) for m in (0, 2, 3)), strict=True)]
    assert softmax(pooled[0]) == pytest.approx(mean, abs=1e-5)
