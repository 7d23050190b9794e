"""One input path: training/evaluation examples and the pipeline (`bel link`'s path) build identical reranker inputs.

The pipeline is run for real on corpus documents with their gold spans (through `bel.linking.pipeline_input`, exactly
as `bel link` feeds it); only `model.score` is replaced by a recorder, so the comparison covers detection-free
preprocessing, abbreviation-expanded queries, retrieval, sentences, passages, candidate texts and retrieval scores.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bel import EntityLinkingPipeline
from bel.data.pubtator import read_pubtator
from bel.evaluation import reranker_selection
from bel.examples import build_examples, build_retriever, checkpoint_examples, only_mentions
from bel.inputs_bel import candidate_text, id_namespace, retrieval_queries
from bel.kb import KnowledgeBase
from bel.linking import pipeline_input

from .helpers import FIXTURES, real_data_dir, tiny_model

LINKING_FIELDS = ("text", "mentions", "sentences", "passages", "candidates", "candidate_scores")


def pipeline_inputs(
    tokenizer,
    retriever,
    documents,
    num_candidates: int,
    batch_size: int = 4,
    cascade: bool = False,
    repeated_names="each",
    namespaces: bool = False,
):
    """The queries the pipeline searched and the LinkingInput it scored per document text."""
    model = tiny_model(tokenizer, num_candidates=num_candidates)
    model.config.candidate_namespace = namespaces
    linker = EntityLinkingPipeline(model=model, tokenizer=tokenizer, retriever=retriever, task="entity-linking")
    searched, scored = [], {}
    search = retriever.search

    def record_search(queries, *args, **kwargs):
        searched.extend(queries)
        return search(queries, *args, **kwargs)

    def record_score(tokenizer, inputs, mode=None, **options):
        scored.update({item.text: item for item in inputs})
        return [[[0.0] * len(candidates) for candidates in item.candidates] for item in inputs]

    retriever.search, model.score = record_search, record_score
    try:
        items = [pipeline_input(doc, detect=False) for doc in documents]
        outputs = linker(items, batch_size=batch_size, cascade=cascade, repeated_names=repeated_names)
    finally:
        del retriever.search
    assert [len(out) for out in outputs] == [len(doc.mentions) for doc in documents]
    return searched, scored


def assert_same_inputs(
    tokenizer,
    kb,
    documents,
    retriever,
    num_candidates: int,
    cascade: bool = False,
    repeated_names: str = "each",
    namespaces: bool = False,
) -> int:
    """With `cascade`, the pipeline's input must be the evaluation's with the retriever-decided mentions left out;
    with `repeated_names="first"`, also without the repeats of a document's names (`reranker_selection`)."""
    examples = build_examples(documents, retriever, num_candidates, kb=kb, retrieve_k=64, namespaces=namespaces)
    expected_queries = {
        query for doc in documents for query in retrieval_queries(doc.text, [(m.start, m.end) for m in doc.mentions])
    }
    searched, scored = pipeline_inputs(
        tokenizer,
        retriever,
        documents,
        num_candidates,
        cascade=cascade,
        repeated_names=repeated_names,
        namespaces=namespaces,
    )
    assert set(searched) == expected_queries
    compared = 0
    for example in examples:
        _, kept = reranker_selection(example, cascade, repeated_names)
        expected = only_mentions(example.input, kept)
        if not any(expected.candidates):
            assert example.input.text not in scored
            continue
        served = scored[example.input.text]
        for field in LINKING_FIELDS:
            assert [tuple(x) if isinstance(x, list) else x for x in getattr(served, field)] == [
                tuple(x) if isinstance(x, list) else x for x in getattr(expected, field)
            ], f"{example.doc_id}: {field} differs between training/evaluation and the pipeline"
        compared += 1
    return compared


def test_candidate_text_shows_the_matched_name_and_the_preferred_one():
    assert candidate_text("breast cancer", "Breast Neoplasms") == "breast cancer (Breast Neoplasms)"
    assert candidate_text("Fever", "fever") == "Fever"
    assert candidate_text("rash", "") == "rash"


def test_candidate_text_can_lead_with_the_id_namespace():
    assert candidate_text("C9 deficiency", "C9 Deficiency", "OMIM:613825") == "OMIM: C9 deficiency"
    assert (
        candidate_text("breast cancer", "Breast Neoplasms", "MESH:D001943")
        == "MESH:D: breast cancer (Breast Neoplasms)"
    )
    assert [id_namespace(i) for i in ("MESH:C565165", "D003920", "HP:0001250", "DOID_1612", "custom")] == [
        "MESH:C",
        "D",
        "HP",
        "DOID",
        "custom",
    ]


def test_namespaced_candidates_reach_the_pipeline_as_in_training(bert_tokenizer):
    kb = KnowledgeBase.load(FIXTURES / "bel_mini_medic.txt")
    documents = read_pubtator(FIXTURES / "bel_mini_ncbi.pubtator")
    retriever = build_retriever(kb, documents)
    examples = build_examples(documents, retriever, 4, kb=kb, namespaces=True)
    shown = [text for e in examples for row in e.input.candidates for text in row]
    assert shown and all(text.split(": ", 1)[0] in {"MESH:D", "MESH:C", "OMIM"} for text in shown)
    assert assert_same_inputs(bert_tokenizer, kb, documents, retriever, num_candidates=4, namespaces=True) >= 2
    config = tiny_model(bert_tokenizer, num_candidates=4).config
    config.candidate_namespace = True
    as_read = checkpoint_examples(config, documents, retriever, kb)
    assert [e.input.candidates for e in as_read] == [e.input.candidates for e in examples]


def test_fixture_documents_get_identical_inputs(bert_tokenizer):
    kb = KnowledgeBase.load(FIXTURES / "bel_mini_medic.txt")
    documents = read_pubtator(FIXTURES / "bel_mini_ncbi.pubtator")
    retriever = build_retriever(kb, documents)
    assert assert_same_inputs(bert_tokenizer, kb, documents, retriever, num_candidates=4) >= 2


def test_fixture_documents_get_identical_inputs_with_the_cascade(bert_tokenizer):
    kb = KnowledgeBase.load(FIXTURES / "bel_mini_medic.txt")
    documents = read_pubtator(FIXTURES / "bel_mini_ncbi.pubtator")
    retriever = build_retriever(kb, documents)
    assert assert_same_inputs(bert_tokenizer, kb, documents, retriever, num_candidates=4, cascade=True) >= 1


def test_fixture_documents_get_identical_inputs_with_each_name_reranked_once(bert_tokenizer):
    kb = KnowledgeBase.load(FIXTURES / "bel_mini_medic.txt")
    documents = read_pubtator(FIXTURES / "bel_mini_ncbi.pubtator")
    retriever = build_retriever(kb, documents)
    examples = build_examples(documents, retriever, 4, kb=kb, retrieve_k=64)
    repeats = sum(len(e.candidate_ids) - len(reranker_selection(e, False, "first")[1]) for e in examples)
    assert repeats >= 1  # the fixture repeats a name, so "first" leaves something out
    assert assert_same_inputs(bert_tokenizer, kb, documents, retriever, num_candidates=4, repeated_names="first") >= 2


@pytest.mark.data
def test_ncbi_test_split_gets_identical_inputs(bert_tokenizer, real_data):
    """The sentence-skew check of issue 11 on every NCBI Disease test document (skips without the corpora)."""
    from bel.data.datasets import load_corpus, load_kb

    kb = load_kb("ncbi-disease", real_data)
    retriever = build_retriever(kb, load_corpus("ncbi-disease", "train", real_data))
    documents = load_corpus("ncbi-disease", "test", real_data)
    assert assert_same_inputs(bert_tokenizer, kb, documents, retriever, num_candidates=16) == 100
    assert assert_same_inputs(bert_tokenizer, kb, documents, retriever, num_candidates=16, cascade=True) >= 50
    first = assert_same_inputs(
        bert_tokenizer, kb, documents, retriever, num_candidates=16, cascade=True, repeated_names="first"
    )
    assert first >= 50


@pytest.fixture
def real_data() -> Path:
    return real_data_dir("ncbi_disease")
