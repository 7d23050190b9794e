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
        # 76237 names before the OMIM "INCLUDED" markers were removed: 5 bare markers dropped, 3 names merged
        ("ncbi_disease/medic_06Jul2012.txt", 11915, 76229, "OMIM:613097", "id", "MESH:C567755"),
        ("mesh/mesh2024_descriptors.txt.gz", 30764, 263931, "D000001", "name", "Calcimycin"),
    ],
    ids=["medic", "mesh"],
)
def test_real_kb_counts(path: str, entities: int, names: int, key: str, attribute: str, value: str) -> None:
    kb = KnowledgeBase.load(real_data_dir() / path)
    assert len(kb) == entities
    assert len(kb.names()) == names
    assert getattr(kb[key], attribute) == value


# ---------------------------------------------------------------- sloppy KB files (issue 15)
@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"id": "D2", "name": "Fever", "synonyms": "Pyrexia"}',
            r"'synonyms' must be a list of strings, got \"Pyrexia\"",
        ),
        ('{"id": "D2", "name": "Fever", "synonyms": ["Pyrexia", 3]}', r"'synonyms' must be a list of strings"),
        ('{"id": "D2", "name": "Fever", "alt_ids": "D3"}', r"'alt_ids' must be a list of strings"),
        ('{"id": "D2", "name": null}', r"entity 'D2' needs a 'name' that is a non-empty string, got null"),
        ('{"id": "D2"}', r"entity 'D2' needs a 'name'"),
        ('{"id": "D2", "name": 5}', r"entity 'D2' needs a 'name' that is a non-empty string, got 5"),
        ('{"id": null, "name": "Fever"}', r"'id' must be a non-empty string, got null"),
        ('{"id": "D2", "name": "Fever", "type": ["Disease"]}', r"'type' must be a string or null"),
        ('["D2", "Fever"]', r"expected a JSON object"),
    ],
)
def test_jsonl_kb_fields_are_type_checked(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "kb.jsonl"
    path.write_text('{"id": "D1", "name": "Rash"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(KBFormatError, match=rf"kb\.jsonl:2: {message}"):
        KnowledgeBase.load(path)


def test_jsonl_kb_integer_ids_and_null_type(tmp_path: Path) -> None:
    path = tmp_path / "genes.jsonl"
    path.write_text('{"id": 7157, "name": "TP53", "synonyms": ["p53"], "type": null}\n', encoding="utf-8")
    (entity,) = KnowledgeBase.load(path)
    assert (entity.id, entity.name, entity.synonyms, entity.type) == ("7157", "TP53", ("p53",), None)


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("empty.jsonl", ""),
        ("blank.jsonl", "\n\n"),
        ("header_only.tsv", "id\tname\tsynonyms\n"),
        ("obsolete.obo", "format-version: 1.2\n\n[Term]\nid: HP:1\nname: Old\nis_obsolete: true\n"),
        ("medic_empty.txt", ""),
        ("mesh_empty.txt", "\n"),
    ],
)
def test_a_kb_file_without_entities_is_refused(tmp_path: Path, filename: str, content: str) -> None:
    path = tmp_path / filename
    path.write_text(content, encoding="utf-8")
    with pytest.raises(KBFormatError, match=rf"{filename}: no entity found"):
        KnowledgeBase.load(path)


def test_an_empty_gzipped_mesh_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mesh_descriptors.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8"):
        pass
    with pytest.raises(ValueError, match=r"mesh_descriptors\.txt\.gz: no entity found"):
        KnowledgeBase.load(path)


def test_an_empty_kb_object_is_still_allowed() -> None:
    assert len(KnowledgeBase()) == 0  # only files must give entities; code may build a KB step by step


def test_omim_included_marker_is_not_indexed_as_a_name(tmp_path: Path) -> None:
    # shapes taken from MEDIC (medic_06Jul2012.txt): marker at the end of a title, before ";SYMBOL", and on its own
    path = tmp_path / "medic.txt"
    path.write_text(
        "D008175|211980||Lung Neoplasms|ADENOCARCINOMA OF LUNG, INCLUDED|Lung Cancer|LNCR2, INCLUDED|INCLUDED\n"
        "C563614|192500||Long Qt Syndrome 1|LONG QT SYNDROME 1/2, DIGENIC, INCLUDED;LQT1/2, DIGENIC|RUDS, INCLUDED|RUDS\n",
        encoding="utf-8",
    )
    kb = KnowledgeBase.load(path)
    assert kb["D008175"].synonyms == ("ADENOCARCINOMA OF LUNG", "Lung Cancer", "LNCR2")
    assert kb["C563614"].synonyms == ("LONG QT SYNDROME 1/2, DIGENIC;LQT1/2, DIGENIC", "RUDS")
    assert not [name for _, name, _ in kb.names() if "INCLUDED" in name]


@pytest.mark.data
def test_real_medic_has_no_included_marker_left() -> None:
    kb = KnowledgeBase.load(real_data_dir() / "ncbi_disease" / "medic_06Jul2012.txt")
    assert not [name for _, name, _ in kb.names() if "INCLUDED" in name]
    assert "ADENOCARCINOMA OF LUNG" in kb["MESH:D008175"].synonyms
