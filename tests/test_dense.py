"""Dense and hybrid retrieval (`bel.dense_bel`, `CandidateRetriever` with a dense part), on a tiny random encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bel.dense_bel import DenseIndex, interpolate, reciprocal_rank
from bel.retrieval_bel import CandidateRetriever, find_retriever_files, normalize_name

from .helpers import KB, TEXT, save_tiny_encoder, tiny_model, tiny_retriever
from .remote import run_without_bel

QUERIES = ["breast cancr", "ovarian tumour", "kidney problem", "viral rash", "colon neoplasm", "heart", "high pyrexia"]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    return save_tiny_encoder(tmp_path_factory.mktemp("encoder") / "tiny", seed=1)


@pytest.fixture(scope="module")
def hybrid(encoder_dir) -> CandidateRetriever:
    return tiny_retriever().with_dense(encoder_dir)


def as_tuples(results) -> list[list[tuple]]:
    return [[(c.entity_id, c.name, round(c.score, 6), c.exact, c.alias) for c in found] for found in results]


def test_dense_top_rows_equal_brute_force_cosine(encoder_dir):
    names = [n for _, name, synonyms in KB for n in (name, *synonyms)]
    index = DenseIndex.build(encoder_dir, names, batch_size=5)
    queries = index.encode(QUERIES)
    assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    assert np.allclose(index.encode(names[:3]), index.embeddings[:3].astype(np.float32), atol=2e-3)  # same pooling
    rows, scores = index.top_rows(queries, k=7, chunk_rows=3)  # several chunks merged
    brute = queries @ index.embeddings.astype(np.float32).T
    assert np.allclose(scores, np.sort(brute, axis=1)[:, ::-1][:, :7], atol=1e-6)
    assert np.allclose(np.take_along_axis(brute, rows, axis=1), scores, atol=1e-6)


def test_dense_ranking_of_the_retriever_is_brute_force_cosine(hybrid):
    dense = hybrid.variant(fusion_weight=0.0)
    vectors = hybrid.dense.encode([normalize_name(q) for q in QUERIES])
    cosine = vectors @ np.asarray(hybrid.dense.embeddings, dtype=np.float32).T
    for query, found, row_cosines in zip(QUERIES, dense.search(QUERIES, top_k=5), cosine, strict=True):
        assert not any(c.exact for c in found), query
        best: dict[str, float] = {}
        for row, value in enumerate(row_cosines.tolist()):
            entity = hybrid.row_entity[row]
            best[entity] = max(best.get(entity, -1.0), value)
        expected = sorted(best, key=lambda e: -best[e])[:5]
        assert [c.entity_id for c in found] == expected, query
        assert [c.score for c in found] == pytest.approx([max(0.0, best[e]) for e in expected], abs=1e-5)


def test_hybrid_with_weight_one_is_the_tfidf_ranking(hybrid):
    tfidf = tiny_retriever()
    queries = [*QUERIES, "fever", "breast cancer", "cancer"]
    exclude = [None] * (len(queries) - 1) + [["tumor"]]
    assert as_tuples(hybrid.variant(fusion_weight=1.0).search(queries, top_k=6, exclude_names=exclude)) == as_tuples(
        tfidf.search(queries, top_k=6, exclude_names=exclude)
    )
    assert as_tuples(hybrid.variant(fusion_weight=0.5).search(QUERIES, top_k=6)) != as_tuples(
        tfidf.search(QUERIES, top_k=6)
    )


@pytest.mark.parametrize("fusion", ["interpolation", "rrf"])
def test_exact_matches_stay_first_and_scores_stay_in_unit_interval(hybrid, fusion):
    retriever = hybrid.variant(fusion=fusion, fusion_weight=0.0 if fusion == "interpolation" else None)
    results = retriever.search(["fever", "Breast Cancer!", "tumors", *QUERIES], top_k=8)
    for found in results[:3]:
        assert found[0].exact and found[0].score == 1.0
        assert not any(c.exact for c in found[1:])
    assert [r[0].entity_id for r in results[:3]] == ["MESH:D005334", "MESH:D001943", "MESH:D009369"]
    for found in results:
        assert len({c.entity_id for c in found}) == len(found) == 8
        assert all(0.0 <= c.score <= 1.0 for c in found)
        assert [c.score for c in found[1:]] == sorted((c.score for c in found[1:]), reverse=True)


def test_fusion_functions():
    tfidf, dense = np.array([0.9, 0.0, 0.2], np.float32), np.array([0.1, 0.8, -0.5], np.float32)
    assert interpolate(tfidf, dense, 1.0).tolist() == tfidf.tolist()
    assert interpolate(tfidf, dense, 0.5) == pytest.approx([0.5, 0.4, 0.1])
    rows, scores = reciprocal_rank(np.array([10, 11, 12]), np.array([0, 1, 0]), tfidf, dense, k=60)
    # entity 0: TF-IDF rank 1 (row 10), dense rank 2 (row 10); entity 1: dense rank 1 only
    assert dict(zip(rows.tolist(), scores.tolist(), strict=True)) == pytest.approx(
        {10: (1 / 61 + 1 / 62) * 30.5, 11: (1 / 61) * 30.5}
    )


@pytest.mark.parametrize("fusion", ["interpolation", "rrf"])
def test_save_load_round_trip_keeps_rankings(hybrid, fusion, tmp_path):
    retriever = hybrid.variant(fusion=fusion, fusion_weight=0.3)
    retriever.save(tmp_path / "retriever")
    config = json.loads((tmp_path / "retriever" / "retriever_config.json").read_text())
    assert config["format_version"] == 2
    assert config["dense"]["fusion"] == fusion and config["dense"]["fusion_weight"] == 0.3
    assert "model.safetensors" in config["dense"]["files"] and "embeddings.npy" in config["dense"]["files"]
    assert np.load(tmp_path / "retriever" / "dense" / "embeddings.npy", allow_pickle=False).dtype == np.float16
    loaded = CandidateRetriever.load(tmp_path / "retriever")
    assert (loaded.fusion, loaded.fusion_weight) == (fusion, 0.3)
    assert as_tuples(loaded.search(QUERIES, top_k=6)) == as_tuples(retriever.search(QUERIES, top_k=6))


def test_tfidf_only_checkpoint_loads_without_a_dense_part(hybrid, tmp_path):
    hybrid.variant(tfidf_only=True).save(tmp_path / "retriever")
    assert not (tmp_path / "retriever" / "dense").exists()
    loaded = CandidateRetriever.load(tmp_path / "retriever")
    assert loaded.dense is None
    assert as_tuples(loaded.search(QUERIES)) == as_tuples(tiny_retriever().search(QUERIES))


def test_hub_download_fetches_the_dense_files(hybrid, tmp_path, monkeypatch):
    hybrid.save(tmp_path / "repo" / "retriever")
    requested = []

    def cached_file(repo, filename, revision=None, **kwargs):
        requested.append(filename)
        return str(tmp_path / "repo" / filename)

    monkeypatch.setattr("transformers.utils.cached_file", cached_file)
    folder = find_retriever_files("owner/not-a-local-dir")
    assert folder == tmp_path / "repo" / "retriever"
    assert "retriever/dense/model.safetensors" in requested and "retriever/dense/embeddings.npy" in requested
    assert "retriever/dense/tokenizer.json" in requested


def test_exclusions_hide_rows_in_hybrid_mode(encoder_dir):
    ids = ["E1", "E1", "E2", "E3"]
    names = ["heart failure", "cardiac failure", "kidney failure", "fever"]
    aliases = [("E1", "heart failur"), ("E2", "renal failur")]
    retriever = CandidateRetriever.build(
        ids, names, aliases=aliases, alias_sources=["doc1", "doc2"], dense_encoder=encoder_dir, fusion_weight=0.3
    )
    for fusion in ("interpolation", "rrf"):
        variant = retriever.variant(fusion=fusion)
        seen = variant.search(["heart failur"], top_k=4)[0]
        assert seen[0].exact and seen[0].alias and seen[0].name == "heart failur"
        hidden = variant.search(["heart failur"], top_k=4, exclude_sources=[["doc1"]])[0]
        assert all(c.name != "heart failur" for c in hidden) and not any(c.exact for c in hidden)
        assert {c.entity_id for c in hidden} == {"E1", "E2", "E3"}
        named = variant.search(["heart failure"], top_k=4, exclude_names=[["Heart Failure", "cardiac failure"]])[0]
        assert all(c.name not in ("heart failure", "cardiac failure") for c in named)
        assert [c.name for c in named if c.entity_id == "E1"] == ["heart failur"]


REMOTE = """
import json
from transformers import pipeline
linker = pipeline("entity-linking", model={directory!r}, trust_remote_code=True)
out = linker({text!r}, top_k=4)
retriever = linker.retriever
print(json.dumps({{"out": out, "dense": type(retriever.dense).__name__, "fusion": retriever.fusion,
                  "weight": retriever.fusion_weight, "module": type(retriever).__module__}}))
"""


@pytest.mark.slow  # a fresh interpreter
def test_hybrid_checkpoint_loads_where_bel_is_not_installed(bert_tokenizer, encoder_dir, tmp_path, hf_home):
    from bel import load_linker, save_linker

    retriever = tiny_retriever().with_dense(encoder_dir).variant(fusion_weight=0.4)
    model = tiny_model(bert_tokenizer, mode="mention", num_candidates=4)
    checkpoint = save_linker(tmp_path / "checkpoint", model, bert_tokenizer, retriever)
    assert (checkpoint / "dense_bel.py").is_file() and (checkpoint / "retriever" / "dense" / "embeddings.npy").is_file()
    local = load_linker(checkpoint)
    assert local.retriever.dense is not None and local.retriever.fusion_weight == 0.4
    expected = local(TEXT, top_k=4)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_without_bel(
        REMOTE.format(directory=str(checkpoint), text=TEXT), cwd=elsewhere, env={"HF_HOME": str(hf_home)}
    )
    assert result["module"].startswith("transformers_modules")
    assert (result["dense"], result["fusion"], result["weight"]) == ("DenseIndex", "interpolation", 0.4)
    assert result["out"] == expected
    candidates = [[c.entity_id for c in found] for found in retriever.search([m["text"] for m in expected], top_k=4)]
    assert [[c["id"] for c in m["candidates"]] for m in result["out"]] == candidates
