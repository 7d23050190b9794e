"""Corpus readers/writers (PubTator, JSONL, BioC) and named datasets."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from bel.data.bioc_io import read_bioc, write_bioc
from bel.data.datasets import DATASETS, data_dir, load_corpus, load_kb
from bel.data.document import Document, Mention, Passage
from bel.data.jsonl import JsonlFormatError, read_jsonl, write_jsonl
from bel.data.pubtator import PubTatorFormatError, iter_pubtator, read_pubtator, write_pubtator

from .helpers import real_data_dir

FIXTURES = Path(__file__).parent / "fixtures"
NCBI_FIXTURE = FIXTURES / "bel_mini_ncbi.pubtator"
BC5CDR_FIXTURE = FIXTURES / "bel_mini_bc5cdr.pubtator"


def mention_tuples(docs: list[Document]) -> list:
    return [(d.id, d.text, [(m.start, m.end, m.text, m.type, m.ids, m.composite) for m in d.mentions]) for d in docs]


# ---------------------------------------------------------------- PubTator
def test_pubtator_fixture_contents() -> None:
    docs = read_pubtator(NCBI_FIXTURE)
    assert [d.id for d in docs] == ["1001", "1002"]
    first = docs[0]
    assert [p.type for p in first.passages] == ["title", "abstract"]
    assert first.passages[1].offset == len(first.passages[0].text) + 1
    for doc in docs:
        for mention in doc.mentions:
            assert doc.text[mention.start : mention.end] == mention.text
    composite = first.mentions[0]
    assert composite.composite and composite.ids == ("MESH:D001943", "MESH:D010051")
    assert first.mentions[3].ids == ("MESH:D015179", "MESH:D016889", "MESH:D010051")  # '+' separated
    assert first.mentions[2].ids == ("OMIM:120435",) and not first.mentions[2].composite
    nil = docs[1].mentions[-1]
    assert nil.ids == () and not nil.composite


def test_pubtator_bc5cdr_extra_column_and_relations() -> None:
    (doc,) = read_pubtator(BC5CDR_FIXTURE)
    damage = doc.mentions[1]
    assert damage.extra == ("renal damage|cardiac damage",) and damage.composite
    assert doc.mentions[0].extra == ()
    assert [(r.type, r.args) for r in doc.relations] == [("CID", ("D008094", "D007674"))]
    assert doc.mentions[-1].ids == ("MESH:C012345",)


@pytest.mark.parametrize("fixture", [NCBI_FIXTURE, BC5CDR_FIXTURE])
def test_pubtator_round_trip_is_byte_identical(tmp_path: Path, fixture: Path) -> None:
    out = tmp_path / "out.txt"
    write_pubtator(read_pubtator(fixture), out)
    assert out.read_bytes() == fixture.read_bytes()


def test_iter_pubtator_streams() -> None:
    stream = iter_pubtator(NCBI_FIXTURE)
    assert inspect.isgenerator(stream)
    assert next(stream).id == "1001"


def test_write_pubtator_from_other_formats(tmp_path: Path) -> None:
    doc = Document(
        "7",
        [Passage("title", 0, "Low BP."), Passage("abstract", 8, "Hypotension seen.")],
        [Mention(8, 19, "Hypotension", "Disease", ("MESH:D007022",)), Mention(0, 6, "Low BP", "Disease")],
    )
    out = tmp_path / "new.txt"
    write_pubtator([doc], out)
    assert out.read_text().splitlines()[2:] == [
        "7\t8\t19\tHypotension\tDisease\tD007022",
        "7\t0\t6\tLow BP\tDisease\t-1",
        "",
    ]
    assert mention_tuples(read_pubtator(out)) == mention_tuples([doc])


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("1|t|Title.\n1|a|Abstract.\n1\tx\t5\tTitle\tDisease\tD1\n", 3, "not integers"),
        ("1|t|Title.\n1|a|Abstract.\n1\t0\t5\tTitel\tDisease\tD1\n", 3, "does not match"),
        ("1|t|Title.\n1|a|Abstract.\n1\t0\t99\tTitle\tDisease\tD1\n", 3, "does not match"),
        ("1|t|Title.\n1|a|Abstract.\njust some words\n", 3, "neither"),
        ("1|t|Title.\n1|a|Abstract.\n2\t0\t5\tTitle\tDisease\tD1\n", 3, "outside"),
        ("1|t|Title.\n1|a|Abstract.\n\n1\t0\t5\tTitle\tDisease\tD1\n", 4, "outside"),
    ],
)
def test_pubtator_malformed_lines_name_file_and_line(tmp_path: Path, content: str, line: int, message: str) -> None:
    path = tmp_path / "broken.pubtator"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PubTatorFormatError, match=rf"broken\.pubtator:{line}: .*{message}"):
        read_pubtator(path)
    assert issubclass(PubTatorFormatError, ValueError)


# ---------------------------------------------------------------- JSONL and BioC
@pytest.mark.parametrize("suffix", [".jsonl", ".xml", ".json"])
def test_jsonl_and_bioc_round_trip(tmp_path: Path, suffix: str) -> None:
    docs = read_pubtator(NCBI_FIXTURE) + read_pubtator(BC5CDR_FIXTURE)
    path = tmp_path / f"corpus{suffix}"
    writer, reader = (write_jsonl, read_jsonl) if suffix == ".jsonl" else (write_bioc, read_bioc)
    writer(docs, path)
    back = reader(path)
    assert mention_tuples(back) == mention_tuples(docs)
    assert [[(p.type, p.offset) for p in d.passages] for d in back] == [
        [(p.type, p.offset) for p in d.passages] for d in docs
    ]


def test_jsonl_simple_form(tmp_path: Path) -> None:
    path = tmp_path / "simple.jsonl"
    path.write_text(
        '{"text": "Naloxone lowers BP.", "mentions": [{"start": 0, "end": 8, "ids": "D009270"}]}\n\n'
        '{"id": "x", "text": "No mentions."}\n',
        encoding="utf-8",
    )
    first, second = read_jsonl(path)
    assert first.id == "1" and first.mentions[0].text == "Naloxone" and first.mentions[0].ids == ("MESH:D009270",)
    assert second.id == "x" and second.mentions == [] and second.text == "No mentions."


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ('{"text": "ok"}\n{"text": \n', 2),
        ('{"text": "ok"}\n{"id": "no text"}\n', 2),
        ('{"text": "abc", "mentions": [{"start": 0, "end": 2, "text": "xy"}]}\n', 1),
        ('{"text": "abc", "mentions": [{"start": 0, "end": 9}]}\n', 1),
    ],
)
def test_jsonl_malformed_lines(tmp_path: Path, content: str, line: int) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(JsonlFormatError, match=rf"bad\.jsonl:{line}:"):
        read_jsonl(path)


# ---------------------------------------------------------------- datasets and real data
def test_data_dir_errors_name_the_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match="data-dir"):
        data_dir(tmp_path / "missing")
    monkeypatch.setenv("BEL_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="BEL_DATA_DIR"):
        data_dir()
    monkeypatch.setenv("BEL_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    with pytest.raises(ValueError, match="unknown dataset"):
        load_corpus("nope", "test", tmp_path)


@pytest.mark.data
def test_real_ncbi_round_trip_is_byte_identical(tmp_path: Path) -> None:
    source = real_data_dir() / "ncbi_disease" / "NCBItestset_corpus.txt"
    out = tmp_path / "ncbi_test.txt"
    write_pubtator(read_pubtator(source), out)
    assert out.read_bytes() == source.read_bytes()


@pytest.mark.data
@pytest.mark.parametrize("name", ["NCBItrainset_corpus.txt", "NCBIdevelopset_corpus.txt"])
def test_real_ncbi_train_dev_round_trip(tmp_path: Path, name: str) -> None:
    source = real_data_dir() / "ncbi_disease" / name
    write_pubtator(read_pubtator(source), tmp_path / name)
    assert (tmp_path / name).read_bytes() == source.read_bytes()


@pytest.mark.data
@pytest.mark.parametrize(
    "name", ["CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt", "CDR_TestSet.PubTator.txt"]
)
def test_real_bc5cdr_round_trip(tmp_path: Path, name: str) -> None:
    source = real_data_dir() / "bc5cdr" / name
    write_pubtator(read_pubtator(source), tmp_path / name)
    assert (tmp_path / name).read_bytes() == source.read_bytes()


@pytest.mark.data
def test_real_corpus_counts() -> None:
    root = real_data_dir()
    counts = {
        (name, split): sum(len(d.mentions) for d in load_corpus(name, split, root))
        for name in DATASETS
        for split in ("train", "dev", "test")
    }
    assert [counts["ncbi-disease", s] for s in ("train", "dev", "test")] == [5145, 787, 960]
    assert [counts["bc5cdr-disease", s] for s in ("train", "dev", "test")] == [4182, 4244, 4424]
    assert [counts["bc5cdr-chemical", s] for s in ("train", "dev", "test")] == [5203, 5347, 5385]
    docs = load_corpus("bc5cdr-chemical", "test", root)
    assert len(docs) == 500 and {m.type for d in docs for m in d.mentions} == {"Chemical"}
    assert len(load_corpus("ncbi-disease", "train", root)) == 593


@pytest.mark.data
def test_real_kbs_for_datasets() -> None:
    root = real_data_dir()
    assert len(load_kb("ncbi-disease", root)) == 11915
    assert len(load_kb("bc5cdr-disease", root, kb="medic")) == 11915
    test_ids = {i for d in load_corpus("ncbi-disease", "test", root) for m in d.mentions for i in m.ids}
    medic = load_kb("ncbi-disease", root)
    assert len(test_ids) >= 200 and all(i in medic for i in test_ids)


def test_load_corpus_and_kb_from_a_data_dir_layout(tmp_path: Path) -> None:
    (tmp_path / "bc5cdr").mkdir()
    (tmp_path / "ncbi_disease").mkdir()
    for split_file in ("CDR_TrainingSet.PubTator.txt", "CDR_TestSet.PubTator.txt"):
        (tmp_path / "bc5cdr" / split_file).write_bytes(BC5CDR_FIXTURE.read_bytes())
    (tmp_path / "ncbi_disease" / "medic_06Jul2012.txt").write_bytes((FIXTURES / "bel_mini_medic.txt").read_bytes())
    chemicals = load_corpus("bc5cdr-chemical", "test", tmp_path)
    diseases = load_corpus("bc5cdr-disease", "train", tmp_path)
    assert [m.text for m in chemicals[0].mentions] == ["Lithium", "Lithium carbonate", "lithium"]
    assert {m.type for m in diseases[0].mentions} == {"Disease"} and len(diseases[0].mentions) == 2
    assert chemicals[0].relations == []
    assert len(load_kb("bc5cdr-disease", tmp_path, kb="medic")) == 6
    with pytest.raises(FileNotFoundError):
        load_corpus("bc5cdr-chemical", "dev", tmp_path)
    with pytest.raises(ValueError, match="unknown split"):
        load_corpus("bc5cdr-chemical", "validation", tmp_path)
