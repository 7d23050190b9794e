"""The confidence cascade: unique exact matches are linked by the retriever, everything else is reranked, and every
mention is in the output with the stage that decided it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bel import EntityLinkingPipeline
from bel.evaluation import score_examples
from bel.examples import build_examples
from bel.inputs_bel import retriever_decides
from bel.kb import KnowledgeBase
from bel.retrieval_bel import Candidate, CandidateRetriever

from .helpers import TEXT, TEXT_MENTIONS, tiny_model

# "cold" names two entities (ambiguous); "fever" and "rash" one each; "feverish rash" none exactly
AMBIGUOUS_KB = [
    ("MESH:D000001", "Common Cold", ["cold"]),
    ("MESH:D000002", "Cold Temperature", ["cold"]),
    ("MESH:D000003", "Fever", ["fever", "pyrexia"]),
    ("MESH:D000004", "Exanthema", ["rash"]),
]
AMBIGUOUS_TEXT = "A cold with fever and a feverish rash."
AMBIGUOUS_SPANS = [(2, 6), (12, 17), (24, 37)]


def ambiguous_retriever() -> CandidateRetriever:
    rows = [(e, n, k == 0) for e, name, synonyms in AMBIGUOUS_KB for k, n in enumerate([name, *synonyms])]
    return CandidateRetriever.build([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def ambiguous_examples(tmp_path: Path, training: bool = False) -> list:
    """The ambiguous text as a gold-annotated document ("cold" -> Common Cold), built into examples."""
    from bel.data.document import Document, Mention, Passage

    kb_file = tmp_path / "kb.tsv"
    kb_file.write_text("".join(f"{e}\t{name}\t{'|'.join(syn)}\n" for e, name, syn in AMBIGUOUS_KB), encoding="utf-8")
    kb = KnowledgeBase.load(kb_file, format="tsv")
    golds = ("MESH:D000001", "MESH:D000003", "MESH:D000004")
    mentions = [
        Mention(s, e, AMBIGUOUS_TEXT[s:e], "Disease", (gold,))
        for (s, e), gold in zip(AMBIGUOUS_SPANS, golds, strict=True)
    ]
    document = Document("doc", [Passage("text", 0, AMBIGUOUS_TEXT)], mentions)
    return build_examples([document], ambiguous_retriever(), 4, kb=kb, retrieve_k=8, training=training)


@pytest.fixture(scope="module")
def ambiguous_linker(bert_tokenizer):
    model = tiny_model(bert_tokenizer, mode="sentence", num_candidates=4)
    return EntityLinkingPipeline(
        model=model, tokenizer=bert_tokenizer, retriever=ambiguous_retriever(), task="entity-linking"
    )


def exact(entity: str) -> Candidate:
    return Candidate(entity, "x", "X", 1.0, exact=True)


def near(entity: str) -> Candidate:
    return Candidate(entity, "y", "Y", 0.7)


def test_rule_needs_one_exact_entity_and_a_search_deep_enough_to_prove_it():
    assert retriever_decides([exact("A"), near("B")], 16)
    assert retriever_decides([exact("A")], 16)  # nothing else came back: no second entity matches at all
    assert not retriever_decides([exact("A"), exact("B")], 16)  # two entities share the name
    assert not retriever_decides([near("A"), near("B")], 16)  # no exact match
    assert not retriever_decides([exact("A")], 1)  # a second exact entity could have been cut off
    assert not retriever_decides([], 16)


def test_ambiguous_exact_match_is_reranked_even_with_one_candidate(ambiguous_linker):
    spans = [{"start": s, "end": e} for s, e in AMBIGUOUS_SPANS]
    for num_candidates in (1, 4):
        out = ambiguous_linker({"text": AMBIGUOUS_TEXT, "mentions": spans}, num_candidates=num_candidates)
        assert [m["text"] for m in out] == ["cold", "fever", "feverish rash"]
        assert [m["decided_by"] for m in out] == ["reranker", "retriever", "reranker"]
        assert len(out[0]["candidates"]) == min(num_candidates, 2)  # both "cold" entities, when asked for


def test_retriever_decision_is_the_exact_entity_with_all_the_probability(ambiguous_linker):
    fever = ambiguous_linker({"text": AMBIGUOUS_TEXT, "mentions": [{"start": 12, "end": 17}]}, top_k=3)[0]
    assert fever["entity_id"] == "MESH:D000003" and fever["score"] == 1.0
    assert [c["score"] for c in fever["candidates"]] == [1.0] + [0.0] * (len(fever["candidates"]) - 1)


def test_reranker_never_sees_decided_mentions(ambiguous_linker, monkeypatch):
    seen = []
    score = ambiguous_linker.model.score

    def recording(tokenizer, inputs, **options):
        seen.extend(tuple(m) for item in inputs for m in item.mentions)
        return score(tokenizer, inputs, **options)

    monkeypatch.setattr(ambiguous_linker.model, "score", recording)
    ambiguous_linker({"text": AMBIGUOUS_TEXT, "mentions": [list(s) for s in AMBIGUOUS_SPANS]})
    assert seen == [AMBIGUOUS_SPANS[0], AMBIGUOUS_SPANS[2]]
    seen.clear()
    ambiguous_linker({"text": AMBIGUOUS_TEXT, "mentions": [list(s) for s in AMBIGUOUS_SPANS]}, cascade=False)
    assert seen == AMBIGUOUS_SPANS


def test_every_mention_is_in_the_output_with_its_stage(linker):
    """Raw text through the tiny linker: each dictionary match is a unique exact match of the KB, so the retriever
    decides all of them; without the cascade the reranker decides all of them."""
    with_cascade, without = linker(TEXT), linker(TEXT, cascade=False)
    assert [m["text"] for m in with_cascade] == [m["text"] for m in without] == TEXT_MENTIONS
    assert {m["decided_by"] for m in with_cascade} == {"retriever"}
    assert {m["decided_by"] for m in without} == {"reranker"}
    assert [m["entity_id"] for m in with_cascade] == [m["candidates"][0]["id"] for m in with_cascade]


def test_config_field_turns_the_cascade_off(bert_tokenizer):
    model = tiny_model(bert_tokenizer, num_candidates=4, cascade=False)
    linker = EntityLinkingPipeline(
        model=model, tokenizer=bert_tokenizer, retriever=ambiguous_retriever(), task="entity-linking"
    )
    out = linker({"text": AMBIGUOUS_TEXT, "mentions": [list(s) for s in AMBIGUOUS_SPANS]})
    assert [m["decided_by"] for m in out] == ["reranker"] * 3
    assert [m["decided_by"] for m in linker(AMBIGUOUS_TEXT, cascade=True, detector="dictionary")].count("retriever")


def test_evaluation_scores_decided_mentions_in_retriever_order(bert_tokenizer, tmp_path):
    examples = ambiguous_examples(tmp_path)
    assert examples[0].retriever_decided == [False, True, False]
    model = tiny_model(bert_tokenizer, mode="sentence", num_candidates=4)
    cascaded = score_examples(model, bert_tokenizer, examples, cascade=True)
    full = score_examples(model, bert_tokenizer, examples, cascade=False)
    decided = cascaded[0][1]
    assert decided == [-float(c) for c in range(len(decided))]
    assert full[0][1] != decided and len(cascaded[0]) == len(full[0]) == 3


def test_hard_mentions_only_keeps_what_the_reranker_will_see(tmp_path):
    from bel.examples import hard_mentions_only
    from bel.training import TrainConfig

    examples = ambiguous_examples(tmp_path, training=True)
    hard = hard_mentions_only(examples)
    assert [tuple(m) for m in hard[0].input.mentions] == [AMBIGUOUS_SPANS[0], AMBIGUOUS_SPANS[2]]
    assert hard[0].gold_ids == [("MESH:D000001",), ("MESH:D000004",)]
    assert len(hard[0].input.candidate_labels) == 2 and hard[0].input.sentences == examples[0].input.sentences
    with pytest.raises(ValueError, match="--train-on"):
        TrainConfig(dataset="ncbi-disease", train_on="easy").validate()
