"""Knowledge-base loaders: fixtures in tests/fixtures, malformed input, and the real MEDIC / MeSH files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from bel.kb import Entity, KBFormatError, KnowledgeBase, normalize_id

from .helpers import FIXTURES, real_data_dir


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("D012345", "MESH:D012345"),
        (" C000123 ", "MESH:C000123"),
        ("MESH:D012345", "MESH:D012345"),
        ("mesh:D012345", "MESH:D012345"),
        ("OMIM:123456", "OMIM:123456"),
        ("HP:0001250", "HP:0001250"),
        ("123456", "123456"),
    ],
)
def test_normalize_id(raw: str, expected: str) -> None:
    assert normalize_id(raw) == expected


def test_normalize_id_default_prefix() -> None:
    assert normalize_id("613097", default_prefix="OMIM") == "OMIM:613097"
    assert normalize_id("D000001", default_prefix="OMIM") == "MESH:D000001"


def test_medic_fixture_ids_alt_ids_and_merging() -> None:
    kb = KnowledgeBase.from_medic(FIXTURES / "bel_mini_medic.txt")
    assert len(kb) == 6  # D001943 appears twice and is merged
    breast = kb["MESH:D001943"]
    assert breast.name == "Breast Neoplasms"
    assert "Mammary Carcinoma, Human" in breast.synonyms  # merged from the duplicate line
    assert kb["OMIM:613097"].id == "MESH:C567755"  # alt id resolves
    assert kb["D010051"].id == "MESH:D010051"  # bare ids are normalised on lookup
    assert kb["OMIM:215600"].name == "Cirrhosis, Familial"  # OMIM number as first id
    assert kb.canonical_id("MESH:C566123") == "OMIM:215600"
    assert "MESH:D999999" not in kb and kb.canonical_id("MESH:D999999") is None
    with pytest.raises(KeyError):
        kb["MESH:D999999"]


def test_names_are_deduplicated_per_entity() -> None:
    kb = KnowledgeBase([Entity("X:1", "Alpha", ("Beta", "Alpha", "Beta", "Gamma")), Entity("X:2", "Alpha")])
    assert kb.names() == [
        ("X:1", "Alpha", True),
        ("X:1", "Beta", False),
        ("X:1", "Gamma", False),
        ("X:2", "Alpha", True),
    ]


def test_mesh_gzip(tmp_path: Path) -> None:
    path = tmp_path / "mesh_descriptors.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("D000001||Calcimycin|A-23187|A23187\nD000002||Temefos|Temephos\n")
    kb = KnowledgeBase.load(path)
    assert [e.id for e in kb] == ["MESH:D000001", "MESH:D000002"]
    assert kb["D000002"].synonyms == ("Temephos",)


def test_obo_skips_obsolete_and_resolves_alt_ids() -> None:
    kb = KnowledgeBase.load(FIXTURES / "bel_mini.obo")
    assert [e.id for e in kb] == ["HP:0000001", "HP:0001250"]
    seizure = kb["HP:0002279"]
    assert seizure.id == "HP:0001250"
    assert seizure.synonyms == ("Epileptic seizure", "Seizures")
    assert "HP:0000002" not in kb


def test_tsv_and_jsonl() -> None:
    tsv = KnowledgeBase.load(FIXTURES / "bel_mini_kb.tsv")
    assert [e.id for e in tsv] == ["MESH:D007022", "MESH:D009270"]
    assert tsv["D007022"].synonyms == ("Low Blood Pressure", "Low BP")
    jsonl = KnowledgeBase.load(FIXTURES / "bel_mini_kb.jsonl")
    assert jsonl["MESH:C000001"].name == "Naloxone"
    assert jsonl["D007022"].type == "Disease"


@pytest.mark.parametrize(
    ("filename", "content", "line"),
    [
        ("bad_medic.txt", "D000001||Name\nD000002|Name without separator\n", 2),
        ("bad_medic2.txt", "D000001||Name\n\nD000003||\n", 3),
        ("bad.tsv", "D1\tName\nD2\n", 2),
        ("bad2.tsv", "D1\tName\nD2\t \n", 2),
        ("bad.jsonl", '{"id": "D1", "name": "A"}\n{"id": "D2"\n', 2),
        ("bad2.jsonl", '{"id": "D1", "name": "A"}\n{"id": "D2", "name": ""}\n', 2),
        ("bad.obo", "[Term]\nid: HP:1\nname: A\nsynonym: missing quotes EXACT []\n", 4),
        ("bad2.obo", "[Term]\nid: HP:1\nname: A\njust text\n", 4),
        ("bad3.obo", "[Term]\nid: HP:1\nname: A\n\n[Term]\nid: HP:2\n", 5),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, filename: str, content: str, line: int) -> None:
    path = tmp_path / filename
    path.write_text(content, encoding="utf-8")
    with pytest.raises(KBFormatError, match=rf"{filename}:{line}:"):
        KnowledgeBase.load(path)


@pytest.mark.data
@pytest.mark.parametrize(
    ("path", "entities", "names", "key", "attribute", "value"),
    [
        ("ncbi_disease/medic_06Jul2012.txt", 11915, 76237, "OMIM:613097", "id", "MESH:C567755"),
        ("mesh/mesh2024_descriptors.txt.gz", 30764, 263931, "D000001", "name", "Calcimycin"),
    ],
    ids=["medic", "mesh"],
)
def test_real_kb_counts(path: str, entities: int, names: int, key: str, attribute: str, value: str) -> None:
    kb = KnowledgeBase.load(real_data_dir() / path)
    assert len(kb) == entities
    assert len(kb.names()) == names
    assert getattr(kb[key], attribute) == value
