"""Candidate retriever: ranking rules, leave-source-out aliases, plain-file save/load (also without `bel`)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bel import retrieval_bel
from bel.retrieval_bel import Candidate, CandidateRetriever

from .helpers import real_data_dir

KB_ROWS = [
    ("MESH:D001943", "Breast Neoplasms", True),
    ("MESH:D001943", "Breast Cancer", False),
    ("MESH:D001943", "Breast Tumors", False),
    ("MESH:D010051", "Ovarian Neoplasms", True),
    ("MESH:D010051", "Ovarian Cancer", False),
    ("MESH:D007022", "Hypotension", True),
    ("MESH:D007022", "Low Blood Pressure", False),
    ("MESH:D003371", "Common Cold", True),
    ("MESH:D003371", "cold", False),
    ("MESH:D000001", "Cold Temperature", True),
    ("MESH:D000001", "cold", False),
    ("MESH:D009369", "Neoplasms", True),
    ("MESH:D009369", "Tumors", False),
    ("MESH:D009369", "Cancer", False),
]
ALIASES = [
    ("MESH:D001943", "breast carcinoma"),
    ("MESH:D009369", "malignancy"),
    ("MESH:D007022", "low BP"),
    ("MESH:D007022", "low BP"),
]
ALIAS_SOURCES = ["doc1", "doc1", "doc2", "doc3"]
QUERIES = [
    "breast cancer",
    "Ovarian cancers",
    "hypotension",
    "cold",
    "malignancy",
    "low BP",
    "breast carcinomas",
    "tumour",
    "zzzz",
    "",
]


@pytest.fixture(scope="module")
def retriever() -> CandidateRetriever:
    return CandidateRetriever.build(
        [r[0] for r in KB_ROWS],
        [r[1] for r in KB_ROWS],
        [r[2] for r in KB_ROWS],
        aliases=ALIASES,
        alias_sources=ALIAS_SOURCES,
    )


def as_tuples(results: list[list[Candidate]]) -> list[list[tuple]]:
    return [[(c.entity_id, c.name, c.preferred_name, c.score) for c in cands] for cands in results]


def test_exact_match_ranks_first_with_score_one(retriever: CandidateRetriever) -> None:
    (candidates,) = retriever.search(["BREAST-CANCER"], top_k=3)
    assert candidates[0].entity_id == "MESH:D001943" and candidates[0].name == "Breast Cancer"
    assert candidates[0].exact and candidates[0].score == 1.0
    assert candidates[0].preferred_name == "Breast Neoplasms"
    assert all(not c.exact and 0.0 <= c.score < 1.0 for c in candidates[1:])


def test_results_are_distinct_entities_sorted_by_score(retriever: CandidateRetriever) -> None:
    for candidates in retriever.search(QUERIES, top_k=4):
        ids = [c.entity_id for c in candidates]
        assert len(ids) == len(set(ids)) <= 4
        scores = [c.score for c in candidates if not c.exact]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= c.score <= 1.0 for c in candidates)


def test_best_name_per_entity(retriever: CandidateRetriever) -> None:
    (candidates,) = retriever.search(["ovarian neoplasm"], top_k=5)
    ovarian = next(c for c in candidates if c.entity_id == "MESH:D010051")
    assert ovarian.name == "Ovarian Neoplasms"


def test_ties_break_by_preferred_then_entity_id(retriever: CandidateRetriever) -> None:
    (candidates,) = retriever.search(["cold"], top_k=2)
    # "cold" is a synonym of both entities: equal score, neither preferred, so entity id decides.
    assert [c.entity_id for c in candidates] == ["MESH:D000001", "MESH:D003371"]
    custom = CandidateRetriever.build(["B:2", "A:1", "A:1"], ["fever", "pyrexia", "fever"], [True, True, False])
    (candidates,) = custom.search(["fever"], top_k=2)
    assert [c.entity_id for c in candidates] == ["B:2", "A:1"]  # preferred name wins the tie before entity id


def test_kb_names_rank_before_aliases_on_ties() -> None:
    retriever = CandidateRetriever.build(["Z:9"], ["heart attack"], aliases=[("A:1", "heart attack")])
    (candidates,) = retriever.search(["heart attack"], top_k=2)
    assert [(c.entity_id, c.alias) for c in candidates] == [("Z:9", False), ("A:1", True)]
    assert retriever.entity_names() == [("Z:9", "heart attack")]
    assert retriever.preferred_name("A:1") == "heart attack"


def test_alias_of_kb_name_adds_no_row(retriever: CandidateRetriever) -> None:
    before = len(retriever)
    again = CandidateRetriever.build(
        [r[0] for r in KB_ROWS],
        [r[1] for r in KB_ROWS],
        [r[2] for r in KB_ROWS],
        aliases=[*ALIASES, ("MESH:D007022", "HYPOTENSION")],
    )
    assert len(again) == before == len(KB_ROWS) - 0 + 3  # 3 distinct new alias strings


def test_exclude_sources_leaves_the_document_out(retriever: CandidateRetriever) -> None:
    default, own_doc_out, other_doc_out, both_out = retriever.search(
        ["malignancy", "malignancy", "low BP", "low BP"],
        top_k=3,
        exclude_sources=[None, {"doc1"}, {"doc2"}, {"doc2", "doc3"}],
    )
    assert default[0].entity_id == "MESH:D009369" and default[0].alias and default[0].exact
    assert all(c.name != "malignancy" for c in own_doc_out)
    assert other_doc_out[0].name == "low BP"  # doc3 still contributes this alias
    assert all(c.name != "low BP" for c in both_out)
    with pytest.raises(ValueError):
        retriever.search(["x"], exclude_sources=[None, None])


def test_unknown_and_empty_mentions(retriever: CandidateRetriever) -> None:
    assert retriever.search(["zzzz", ""], top_k=5) == [[], []]


def test_search_is_deterministic_across_batches_and_threads(retriever: CandidateRetriever) -> None:
    reference = as_tuples(retriever.search(QUERIES, top_k=5, batch_size=1024, num_threads=1))
    assert as_tuples(retriever.search(QUERIES, top_k=5, batch_size=2, num_threads=2)) == reference


def test_save_load_in_process(tmp_path: Path, retriever: CandidateRetriever) -> None:
    retriever.save(tmp_path / "index")
    files = sorted(p.name for p in (tmp_path / "index").iterdir())
    assert all(name.endswith((".json", ".npz")) for name in files)
    with np.load(tmp_path / "index" / "retriever_index.npz", allow_pickle=False) as arrays:
        assert all(arrays[key].dtype != object for key in arrays.files)
    loaded = CandidateRetriever.load(tmp_path / "index")
    assert len(loaded) == len(retriever)
    assert as_tuples(loaded.search(QUERIES, top_k=5)) == as_tuples(retriever.search(QUERIES, top_k=5))
    assert as_tuples(loaded.search(["low BP"], exclude_sources=[{"doc2", "doc3"}])) == as_tuples(
        retriever.search(["low BP"], exclude_sources=[{"doc2", "doc3"}])
    )


def save_as_format_1(retriever: CandidateRetriever, directory: Path) -> None:
    """The files as the format-1 code wrote them: the index row-major, no lookup tables."""
    retriever.save(directory)
    config = json.loads((directory / "retriever_config.json").read_text())
    config["format_version"] = 1
    del config["lookups_version"]
    (directory / "retriever_config.json").write_text(json.dumps(config))
    names = json.loads((directory / "retriever_names.json").read_text())
    del names["exact_keys"]
    (directory / "retriever_names.json").write_text(json.dumps(names))
    matrix = retriever.matrix
    with np.load(directory / "retriever_index.npz") as arrays:
        kept = {key: arrays[key] for key in ("idf", "shape", "preferred", "alias")}
    np.savez(directory / "retriever_index.npz", data=matrix.data, indices=matrix.indices, indptr=matrix.indptr, **kept)


def test_format_1_files_load_with_computed_lookups(tmp_path: Path, retriever: CandidateRetriever, caplog) -> None:
    save_as_format_1(retriever, tmp_path / "old")
    with caplog.at_level(logging.INFO, logger="bel.retrieval_bel"):
        loaded = CandidateRetriever.load(tmp_path / "old")
    assert "without its lookup tables" in caplog.text
    assert as_tuples(loaded.search(QUERIES, top_k=5)) == as_tuples(retriever.search(QUERIES, top_k=5))
    assert [loaded.preferred_name(e) for e in loaded.entity_ids()] == [
        retriever.preferred_name(e) for e in retriever.entity_ids()
    ]
    loaded.save(tmp_path / "resaved")  # re-saving upgrades the files to the current format
    config = json.loads((tmp_path / "resaved" / "retriever_config.json").read_text())
    assert config["format_version"] == retrieval_bel.FORMAT_VERSION and "lookups_version" in config
    resaved = CandidateRetriever.load(tmp_path / "resaved")
    assert as_tuples(resaved.search(QUERIES, top_k=5)) == as_tuples(retriever.search(QUERIES, top_k=5))


def test_lookups_that_do_not_fit_the_names_are_recomputed(
    tmp_path: Path, retriever: CandidateRetriever, caplog
) -> None:
    retriever.save(tmp_path / "index")
    names_file = tmp_path / "index" / "retriever_names.json"
    names = json.loads(names_file.read_text())
    names["exact_keys"] = "\n".join(reversed(names["exact_keys"].split("\n")))  # same count, wrong order
    names_file.write_text(json.dumps(names))
    with caplog.at_level(logging.WARNING, logger="bel.retrieval_bel"):
        loaded = CandidateRetriever.load(tmp_path / "index")
    assert "do not match" in caplog.text
    assert as_tuples(loaded.search(QUERIES, top_k=5)) == as_tuples(retriever.search(QUERIES, top_k=5))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("file_name", "damage"),
    [
        ("retriever_names.json", _truncate),
        ("retriever_vocab.json", _truncate),
        ("retriever_config.json", _truncate),
        ("retriever_index.npz", _truncate),
        ("retriever_index.npz", lambda path: path.write_bytes(b"")),
        ("retriever_names.json", Path.unlink),
        ("retriever_index.npz", Path.unlink),
        ("retriever_names.json", lambda path: path.write_text("[1, 2]")),
    ],
)
def test_damaged_files_name_the_file(tmp_path: Path, retriever: CandidateRetriever, file_name, damage) -> None:
    retriever.save(tmp_path / "index")
    damage(tmp_path / "index" / file_name)
    with pytest.raises(ValueError, match=rf"{file_name}.*damaged.*re-save.*download"):
        CandidateRetriever.load(tmp_path / "index")


def test_rows_that_disagree_between_files_are_refused(tmp_path: Path, retriever: CandidateRetriever) -> None:
    retriever.save(tmp_path / "index")
    names_file = tmp_path / "index" / "retriever_names.json"
    names = json.loads(names_file.read_text())
    names["names"] = names["names"][:-1]
    names_file.write_text(json.dumps(names))
    with pytest.raises(ValueError, match="damaged.*retriever_names.json has"):
        CandidateRetriever.load(tmp_path / "index")


FRESH_PROCESS_SCRIPT = r"""
import importlib.util, json, sys
from pathlib import Path
# `bel` is installed editable in this venv: drop every path entry and finder that could import it.
sys.path[:] = [p for p in sys.path if p and not (Path(p) / "bel" / "__init__.py").exists()]
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                    and "editable" not in repr(f).lower()]
assert importlib.util.find_spec("bel") is None, "bel is importable"
sys.path.insert(0, sys.argv[1])
import retrieval_bel
retriever = retrieval_bel.CandidateRetriever.load(sys.argv[2])
queries = json.loads(sys.argv[3])
print(json.dumps([[[c.entity_id, c.name, c.preferred_name, c.score] for c in cands]
                  for cands in retriever.search(queries, top_k=5)]))
"""


@pytest.mark.slow  # a fresh interpreter
def test_load_in_fresh_process_without_bel(tmp_path: Path, retriever: CandidateRetriever) -> None:
    retriever.save(tmp_path / "index")
    module_dir = tmp_path / "module"
    module_dir.mkdir()
    shutil.copy(retrieval_bel.__file__, module_dir / "retrieval_bel.py")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    completed = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            FRESH_PROCESS_SCRIPT,
            str(module_dir),
            str(tmp_path / "index"),
            json.dumps(QUERIES),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    fresh = [[tuple(c) for c in cands] for cands in json.loads(completed.stdout)]
    assert fresh == as_tuples(retriever.search(QUERIES, top_k=5))
    assert any(fresh)


@pytest.mark.data
def test_real_ncbi_recall_at_64_with_medic_and_train_aliases() -> None:
    from bel.data.datasets import load_corpus, load_kb

    root = real_data_dir()
    kb = load_kb("ncbi-disease", root)
    aliases, sources = [], []
    for doc in load_corpus("ncbi-disease", "train", root):
        for mention in doc.mentions:
            if len(mention.ids) == 1 and mention.ids[0] in kb:
                aliases.append((kb.canonical_id(mention.ids[0]), mention.text))
                sources.append(doc.id)
    names = kb.names()
    retriever = CandidateRetriever.build(
        [n[0] for n in names], [n[1] for n in names], [n[2] for n in names], aliases=aliases, alias_sources=sources
    )
    mentions = [m for d in load_corpus("ncbi-disease", "test", root) for m in d.mentions if m.ids]
    results = retriever.search([m.text for m in mentions], top_k=64)
    hits = [
        any(c.entity_id in {kb.canonical_id(i) for i in m.ids} for c in cands)
        for m, cands in zip(mentions, results, strict=True)
    ]
    assert len(mentions) == 960
    assert sum(hits) / len(hits) >= 0.95


def test_upgrade_retriever_rewrites_a_linkers_format_1_files_in_place(
    tmp_path: Path, retriever: CandidateRetriever
) -> None:
    from bel.saving import upgrade_retriever

    save_as_format_1(retriever, tmp_path / "linker" / "retriever")
    folder = upgrade_retriever(tmp_path / "linker")
    assert json.loads((folder / "retriever_config.json").read_text())["format_version"] == retrieval_bel.FORMAT_VERSION
    assert sorted(p.name for p in (tmp_path / "linker").iterdir()) == ["retriever"]  # no staging folder left
    upgraded = CandidateRetriever.load(folder)
    assert as_tuples(upgraded.search(QUERIES, top_k=5)) == as_tuples(retriever.search(QUERIES, top_k=5))
