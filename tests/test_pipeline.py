"""EntityLinkingPipeline: schema, given spans, raw-text detection, saving, and the fresh-process remote-code load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bel import EntityLinkingPipeline, load_linker, save_linker
from bel.pipeline_bel import MentionMatcher, sentence_spans
from bel.retrieval_bel import CandidateRetriever

from .remote import run_without_bel

KB = [
    ("MESH:D001943", "Breast Neoplasms", ["breast cancer", "breast tumor", "breast carcinoma"]),
    ("MESH:D010051", "Ovarian Neoplasms", ["ovarian cancer", "ovarian tumor"]),
    ("MESH:D003110", "Colonic Neoplasms", ["colon cancer"]),
    ("MESH:D009369", "Neoplasms", ["cancer", "tumor", "tumors", "cancers"]),
    ("MESH:D011125", "Adenomatous Polyposis Coli", ["familial adenomatous polyposis"]),
    ("MESH:D005334", "Fever", ["fever", "pyrexia"]),
    ("MESH:D005076", "Exanthema", ["rash"]),
    ("MESH:D002644", "Chickenpox", ["varicella"]),
    ("MESH:D014777", "Virus Diseases", ["viral infection"]),
    ("MESH:D051437", "Renal Insufficiency", ["kidney failure", "renal failure"]),
    ("MESH:D006333", "Heart Failure", ["heart failure"]),
]
TEXT = "Varicella is a viral infection with fever and rash. Carriers risk breast cancer and ovarian cancer."
SCHEMA = {"start", "end", "text", "entity_id", "entity_name", "score", "candidates"}


def tiny_retriever() -> CandidateRetriever:
    ids, names, preferred = [], [], []
    for entity_id, name, synonyms in KB:
        for k, n in enumerate([name, *synonyms]):
            ids.append(entity_id)
            names.append(n)
            preferred.append(k == 0)
    return CandidateRetriever.build(ids, names, preferred)


def make_linker(tokenizer, directory: Path, mode: str = "mention", seed: int = 0, **config) -> Path:
    from .conftest import tiny_model

    model = tiny_model(tokenizer, mode=mode, seed=seed, num_candidates=4, **config)
    return save_linker(directory, model, tokenizer, tiny_retriever(),
                       card_data={"datasets": ["ncbi-disease"], "base_model": "prajjwal1/bert-tiny",
                                  "eval_results": [{"dataset": "ncbi-disease", "split": "test",
                                                    "metrics": {"acc@1": 0.5, "mrr": 0.6}}]})


@pytest.fixture(scope="module")
def linker_dir(bert_tokenizer, tmp_path_factory) -> Path:
    return make_linker(bert_tokenizer, tmp_path_factory.mktemp("linker") / "checkpoint")


@pytest.fixture(scope="module")
def linker(linker_dir) -> EntityLinkingPipeline:
    return load_linker(linker_dir)


def test_matcher_longest_case_insensitive_word_boundaries():
    matcher = MentionMatcher(["breast cancer", "cancer", "Fever", "rash"])
    text = "BREAST CANCER, cancerous fever-rash; Fever."
    assert [text[s:e] for s, e in matcher.find(text)] == ["BREAST CANCER", "fever", "rash", "Fever"]


def test_sentences_never_split_inside_a_mention():
    text = "It is Dr. Smith syndrome. Then fever."
    assert sentence_spans(text, []) != sentence_spans(text, [(6, 24)])
    assert all(not (s < 6 < e) or e >= 24 for s, e in sentence_spans(text, [(6, 24)]))


def test_saved_directory_layout(linker_dir):
    files = {p.relative_to(linker_dir).as_posix() for p in linker_dir.rglob("*") if p.is_file()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md",
            "configuration_bel.py", "modeling_bel.py", "tokenization_bel.py", "retrieval_bel.py", "pipeline_bel.py",
            "retriever/retriever_config.json", "retriever/retriever_index.npz"} <= files
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
    assert [m["text"] for m in out] == ["Varicella", "viral infection", "fever", "rash", "breast cancer",
                                        "ovarian cancer"]
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


def test_every_mode_links_the_same_mentions(bert_tokenizer, tmp_path, linker):
    reference = [(m["start"], m["end"]) for m in linker(TEXT)]
    for mode in ("pair", "sentence", "passage", "document"):
        out = linker(TEXT, mode=mode)
        assert [(m["start"], m["end"]) for m in out] == reference


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


def test_pipeline_where_bel_is_not_installed(linker_dir, linker, tmp_path, hf_home):
    given = {"text": TEXT, "mentions": [{"start": 66, "end": 79}, {"start": 0, "end": 9}]}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_without_bel(REMOTE.format(directory=str(linker_dir), text=TEXT, given=given), cwd=elsewhere,
                             env={"HF_HOME": str(hf_home)})
    assert result["module"].startswith("transformers_modules")
    assert result["raw"] == linker(TEXT, top_k=3)
    assert result["spans"] == linker(given)
    assert all(set(m) == SCHEMA for m in result["raw"] + result["spans"])


def test_pickle_only_checkpoint_is_refused(linker_dir, tmp_path):
    import shutil

    import torch

    pickled = tmp_path / "pickled"
    shutil.copytree(linker_dir, pickled)
    (pickled / "model.safetensors").unlink()
    torch.save({}, pickled / "pytorch_model.bin")
    with pytest.raises(ValueError, match="only as pickle.*pytorch_model.bin"):
        load_linker(pickled)


def test_candidate_text_matches_training():
    examples = pytest.importorskip("bel.examples")
    from bel.pipeline_bel import candidate_text
    from bel.retrieval_bel import Candidate

    for name, preferred in [("breast cancer", "Breast Neoplasms"), ("Fever", "fever"), ("rash", "")]:
        assert candidate_text(name, preferred) == examples.candidate_text(Candidate("X:1", name, preferred, 0.5))


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
