"""EntityLinkingPipeline: schema, given spans, raw-text detection, saving, and the fresh-process remote-code load."""

from __future__ import annotations

import json

import pytest

from bel import load_linker
from bel.matching_bel import MentionMatcher

from .helpers import SCHEMA, TEXT, TEXT_MENTIONS, make_linker
from .remote import run_without_bel


def test_matcher_longest_case_insensitive_word_boundaries():
    matcher = MentionMatcher(["breast cancer", "cancer", "Fever", "rash"])
    text = "BREAST CANCER, cancerous fever-rash; Fever."
    assert [text[s:e] for s, e in matcher.find(text)] == ["BREAST CANCER", "fever", "rash", "Fever"]


def test_saved_directory_layout(linker_dir):
    files = {p.relative_to(linker_dir).as_posix() for p in linker_dir.rglob("*") if p.is_file()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
        "configuration_bel.py",
        "modeling_bel.py",
        "tokenization_bel.py",
        "retrieval_bel.py",
        "pipeline_bel.py",
        "retriever/retriever_config.json",
        "retriever/retriever_index.npz",
    } <= files
    assert not [f for f in files if f.endswith((".bin", ".pkl"))]
    config = json.loads((linker_dir / "config.json").read_text())
    assert config["custom_pipelines"]["entity-linking"]["impl"] == "pipeline_bel.EntityLinkingPipeline"
    assert config["auto_map"]["AutoModel"] == "modeling_bel.BelForMultiCandidateLinking"


def test_model_card_front_matter(linker_dir):
    from huggingface_hub import ModelCard

    card = ModelCard.load(linker_dir / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "other"
    assert {"custom_code", "biomedical", "entity-linking"} <= set(data["tags"])
    assert data["datasets"] == ["ncbi-disease"] and data["base_model"] == "prajjwal1/bert-tiny"
    metrics = {m["type"]: m["value"] for m in data["model-index"][0]["results"][0]["metrics"]}
    assert metrics == {"acc@1": 0.5, "mrr": 0.6}
    assert "| ncbi-disease | test | acc@1 | 0.5 |" in card.text


def test_raw_text_schema_and_offsets(linker):
    out = linker(TEXT, top_k=3)
    assert [m["text"] for m in out] == TEXT_MENTIONS
    for m in out:
        assert set(m) == SCHEMA and TEXT[m["start"] : m["end"]] == m["text"]
        assert 1 <= len(m["candidates"]) <= 3 and set(m["candidates"][0]) == {"id", "name", "score"}
        assert m["entity_id"] == m["candidates"][0]["id"] and m["score"] == m["candidates"][0]["score"]
        scores = [c["score"] for c in m["candidates"]]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.000001
    assert {c["id"] for c in out[4]["candidates"]} >= {"MESH:D001943"}


def test_given_spans_keep_input_order_and_duplicates(linker):
    mentions = [{"start": 83, "end": 97}, {"start": 0, "end": 9}, {"start": 0, "end": 9}, {"start": 66, "end": 79}]
    out = linker({"text": TEXT, "mentions": mentions})
    assert [(m["start"], m["end"]) for m in out] == [(m["start"], m["end"]) for m in mentions]
    assert out[1] == out[2]
    batch = linker([{"text": TEXT, "mentions": mentions}, TEXT, "   "], batch_size=2)
    assert batch[0] == out and batch[1] == linker(TEXT) and batch[2] == []


@pytest.mark.parametrize("mode", ["pair", "mention", "sentence", "passage", "document"])
def test_every_mode_scores_every_candidate_at_its_own_slot(bert_tokenizer, tmp_path, mode):
    """A model whose scorer is zeroed scores each candidate by its retrieval score alone, so every mode must give the
    retriever's ranking and identical probabilities: a dropped, duplicated or misrouted slot would change them."""
    import torch

    directory = make_linker(bert_tokenizer, tmp_path / "retrieval_only", use_retrieval_score=True)
    linker = load_linker(directory)
    with torch.no_grad():
        linker.model.scorer.weight.zero_()
        linker.model.scorer.bias.zero_()
    given = {"text": TEXT, "passages": [[0, 51], [52, len(TEXT)]]}
    out = linker(given, mode=mode, top_k=4, cascade=False)
    queries = [m["text"] for m in out]
    retrieved = linker.retriever.search(queries, top_k=4)
    assert [m["text"] for m in out] == TEXT_MENTIONS
    for mention, candidates in zip(out, retrieved, strict=True):
        assert [c["id"] for c in mention["candidates"]] == [c.entity_id for c in candidates]
        weight = linker.model.retrieval_weight.item()
        expected = torch.softmax(torch.tensor([weight * c.score for c in candidates]), dim=0).tolist()
        assert [c["score"] for c in mention["candidates"]] == pytest.approx(expected, abs=2e-6)


def test_nil_threshold(linker):
    out = linker(TEXT, nil_threshold=1.01)
    assert all(m["entity_id"] is None and m["nil_reason"] == "below_threshold" for m in out)
    assert all(m["candidates"] for m in out)


REMOTE = """
import json
from transformers import pipeline
linker = pipeline("entity-linking", model={directory!r}, trust_remote_code=True)
raw = linker({text!r}, top_k=3)
spans = linker({given!r})
print(json.dumps({{"raw": raw, "spans": spans, "module": type(linker).__module__}}))
"""


@pytest.mark.slow  # a fresh interpreter
def test_pipeline_where_bel_is_not_installed(linker_dir, linker, tmp_path, hf_home):
    given = {"text": TEXT, "mentions": [{"start": 66, "end": 79}, {"start": 0, "end": 9}]}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_without_bel(
        REMOTE.format(directory=str(linker_dir), text=TEXT, given=given), cwd=elsewhere, env={"HF_HOME": str(hf_home)}
    )
    assert result["module"].startswith("transformers_modules")
    assert result["raw"] == linker(TEXT, top_k=3)
    assert result["spans"] == linker(given)
    assert all(set(m) == SCHEMA for m in result["raw"] + result["spans"])


def test_matcher_abbreviations_need_their_case_and_stopwords_never_match():
    matcher = MentionMatcher(["IS", "AN", "DM", "an", "Fever"])
    assert matcher.find("DM is an IS fever; dm AN.") == [(0, 2), (9, 11), (12, 17), (22, 24)]


def test_defined_short_forms_are_retrieved_by_their_long_form(linker):
    text = "Patients with heart failure (HF) were followed. HF worsened in ten."
    start = text.index("HF worsened")
    out = linker({"text": text, "mentions": [{"start": start, "end": start + 2}]})
    assert out[0]["text"] == "HF" and out[0]["candidates"]
    assert "MESH:D006333" in {c["id"] for c in out[0]["candidates"]}
    undefined = linker({"text": "HF worsened in ten.", "mentions": [{"start": 0, "end": 2}]})
    assert "MESH:D006333" not in {c["id"] for c in undefined[0]["candidates"]}


# ------------------------------------------------------------------------------------------------ batch independence
def _linking_inputs(linker, tmp_path) -> list:
    from bel.inputs_bel import build_linking_input, retrieve
    from bel.linking import iter_documents, pipeline_input

    from .helpers import write_pubtator_corpus

    source = tmp_path / "in.pubtator"
    write_pubtator_corpus(source, copies=4)
    items = [pipeline_input(doc, detect=False) for doc in iter_documents(source, "pubtator", None)]
    items = [item for item in items if item.get("mentions")]
    spans = [[(m["start"], m["end"]) for m in item["mentions"]] for item in items]
    retrieved = retrieve(linker.retriever, [(i["text"], s) for i, s in zip(items, spans, strict=True)], 4)
    return [
        build_linking_input(item["text"], doc_spans, candidates, passages=item["passages"])
        for item, doc_spans, candidates in zip(items, spans, retrieved, strict=True)
    ]


@pytest.mark.parametrize("mode", ["pair", "mention", "sentence", "document"])
def test_raw_scores_do_not_depend_on_the_other_documents(linker, tmp_path, mode):
    """Unrounded logits of a document, scored alone, with all others, or in reverse order, are bit-identical.
    (With length-sorted dynamic padding, 9-22 of these 292 logits differed in the last bits.)"""
    model, tokenizer = linker.model, linker.tokenizer
    documents = _linking_inputs(linker, tmp_path)
    together = model.score(tokenizer, documents, mode=mode, batch_independent=True)
    reverse = model.score(tokenizer, documents[::-1], mode=mode, batch_independent=True)[::-1]
    alone = [model.score(tokenizer, [doc], mode=mode, batch_independent=True)[0] for doc in documents]
    assert sum(len(c) for doc in together for c in doc) > 200
    assert together == alone == reverse


def test_fixed_shape_batches_shape_depends_only_on_length():
    from bel.modeling_bel import fixed_shape_batches

    sequences = [{"input_ids": [1] * n, "n": k} for k, n in enumerate([5, 40, 33, 64, 500, 7, 31, 32, 65])]
    batches = fixed_shape_batches(sequences, max_tokens=256, length_step=32, rows=4)
    shapes = {seq["n"]: shape for batch, shape in batches for seq in batch}
    expected = {0: (4, 32), 5: (4, 32), 6: (4, 32), 7: (4, 32), 1: (4, 64), 2: (4, 64), 3: (4, 64)}
    assert shapes == {**expected, 8: (2, 96), 4: (1, 512)}  # rows = min(4, max_tokens // padded length)
    assert [[seq["n"] for seq in batch] for batch, _ in batches] == [[0, 5, 6, 7], [1, 2, 3], [8], [4]]


def test_pipeline_output_is_identical_across_batch_sizes_and_orders(linker, tmp_path):
    from bel.linking import iter_documents, pipeline_input

    from .helpers import write_pubtator_corpus

    source = tmp_path / "in.pubtator"
    write_pubtator_corpus(source, copies=4)
    items = [pipeline_input(doc, detect=False) for doc in iter_documents(source, "pubtator", None)] + [TEXT, TEXT[:51]]
    reference = json.dumps(linker(items, batch_size=1, top_k=4, deterministic=True))
    for batch_size in (3, 8):
        assert json.dumps(linker(items, batch_size=batch_size, top_k=4, deterministic=True)) == reference
    assert json.dumps(linker(items[::-1], batch_size=8, top_k=4, deterministic=True)[::-1]) == reference
    interleaved = [x for pair in zip(items, items[::-1], strict=True) for x in pair]  # other neighbours
    assert json.dumps(linker(interleaved, batch_size=5, top_k=4, deterministic=True)[::2]) == reference


REMOTE_SPANS = """
import json
from transformers import pipeline
linker = pipeline("entity-linking", model={directory!r}, trust_remote_code=True)
spans = linker({given!r}, top_k=4, cascade=False)
print(json.dumps({{"spans": spans, "module": type(linker).__module__}}))
"""


@pytest.mark.slow  # a fresh interpreter
def test_namespace_checkpoint_links_alike_where_bel_is_not_installed(bert_tokenizer, tmp_path, hf_home):
    shown = load_linker(make_linker(bert_tokenizer, tmp_path / "shown", candidate_namespace=True))
    plain = load_linker(make_linker(bert_tokenizer, tmp_path / "plain"))  # same weights (seed 0), names only
    assert shown.model.config.candidate_namespace and not plain.model.config.candidate_namespace
    given = {"text": TEXT, "mentions": [{"start": 66, "end": 79}, {"start": 0, "end": 9}]}
    local = shown(given, top_k=4, cascade=False)
    assert local != plain(given, top_k=4, cascade=False)  # the namespaces change what the reranker reads
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = REMOTE_SPANS.format(directory=str(tmp_path / "shown"), given=given)
    result = run_without_bel(code, cwd=elsewhere, env={"HF_HOME": str(hf_home)})
    assert result["module"].startswith("transformers_modules")
    assert result["spans"] == local
