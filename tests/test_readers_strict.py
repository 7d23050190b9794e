"""Corpus readers on what the field writes and on sloppy input (issue 15): PubTator relation lines with any id kind,
composite and "no id" forms, CRLF and byte-order marks; JSONL type checks; BioC parse errors; errors="collect"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bel.data.bioc_io import BioCFormatError, read_bioc, write_bioc
from bel.data.document import Document, InvalidRecord
from bel.data.jsonl import JsonlFormatError, iter_jsonl, read_jsonl
from bel.data.pubtator import PubTatorFormatError, iter_pubtator, parse_id_field, read_pubtator, write_pubtator

FIXTURES = Path(__file__).parent / "fixtures"
NCBI_FIXTURE = FIXTURES / "bel_mini_ncbi.pubtator"
BIORED_FIXTURE = FIXTURES / "bel_mini_biored.pubtator"

DOC_1 = "1|t|Fever.\n1|a|Rash seen.\n1\t0\t5\tFever\tDisease\tD005334\n"
DOC_3 = "3|t|Cough.\n3|a|None.\n3\t0\t5\tCough\tDisease\tD003371\n"


def spans(docs: list[Document]) -> list:
    return [(d.id, d.text, [(m.start, m.end, m.text, m.type, m.ids, m.composite) for m in d.mentions]) for d in docs]


# ---------------------------------------------------------------- PubTator: relation lines and id forms
def test_pubtator_relation_lines_with_any_id_kind() -> None:
    first, second = read_pubtator(BIORED_FIXTURE)
    assert [(r.type, r.args) for r in first.relations] == [
        ("Association", ("6934", "D003924", "Novel")),
        ("CID", ("1234", "5678")),
        ("CID", ("-", "D003920")),
        ("Positive_Correlation", ("-1", "MESH:D009765", "No")),
    ]
    assert [(r.type, r.args) for r in second.relations] == [("Bind", ("7157", "672"))]
    assert [m.text for m in first.mentions] == [
        "TCF7L2",
        "type 2 diabetes",
        "diabetes",
        "obesity or insulin resistance",
        "nothing else",
    ]
    assert first.mentions[0].ids == ("6934",)  # a gene id stays a bare number


def test_pubtator_composite_and_dash_ids_in_a_file() -> None:
    first, second = read_pubtator(BIORED_FIXTURE)
    comma = first.mentions[3]
    assert comma.ids == ("MESH:D009765", "MESH:D007333") and comma.composite and comma.raw_ids == "D009765,D007333"
    dash = first.mentions[4]
    assert dash.ids == () and not dash.composite and dash.raw_ids == "-"
    assert second.mentions[0].ids == ("7157", "672") and second.mentions[0].composite
    assert second.mentions[1].ids == ("MESH:D009369", "MESH:D001943")


def test_pubtator_biored_round_trip_is_byte_identical(tmp_path: Path) -> None:
    out = tmp_path / "out.pubtator"
    write_pubtator(read_pubtator(BIORED_FIXTURE), out)
    assert out.read_bytes() == BIORED_FIXTURE.read_bytes()


@pytest.mark.parametrize(
    ("raw", "ids", "composite"),
    [
        ("D006509,D015658", ("MESH:D006509", "MESH:D015658"), True),
        ("D006509;D015658", ("MESH:D006509", "MESH:D015658"), True),
        ("D006509|D015658", ("MESH:D006509", "MESH:D015658"), True),
        ("D006509+D015658", ("MESH:D006509", "MESH:D015658"), True),
        ("D006509, OMIM:123456", ("MESH:D006509", "OMIM:123456"), True),
        ("1234;5678", ("1234", "5678"), True),
        ("-", (), False),
        ("-1", (), False),
        ("", (), False),
        (" D007945", ("MESH:D007945",), False),
        ("D002544|-1", ("MESH:D002544",), False),  # BC5CDR dev set: one real id and a "no id"
        ("MESH:C535662", ("MESH:C535662",), False),
    ],
)
def test_parse_id_field_forms(raw: str, ids: tuple, composite: bool) -> None:
    assert parse_id_field(raw) == (ids, composite)


def test_a_single_letter_in_the_offset_column_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "typo.pubtator"
    path.write_text("1|t|Title.\n1|a|Abstract.\n1\tO\t5\tTitle\tDisease\tD1\n", encoding="utf-8")
    with pytest.raises(PubTatorFormatError, match=r"typo\.pubtator:3: document 1: start/end offsets are not integers"):
        read_pubtator(path)


# ---------------------------------------------------------------- PubTator: line ends and byte-order mark
@pytest.mark.parametrize(("bom", "newline"), [(b"", b"\r\n"), (b"\xef\xbb\xbf", b"\n"), (b"\xef\xbb\xbf", b"\r\n")])
def test_pubtator_crlf_and_bom_are_read_and_written_back(tmp_path: Path, bom: bytes, newline: bytes) -> None:
    path = tmp_path / "windows.pubtator"
    path.write_bytes(bom + NCBI_FIXTURE.read_bytes().replace(b"\n", newline))
    docs = read_pubtator(path)
    assert spans(docs) == spans(read_pubtator(NCBI_FIXTURE))
    assert all("\r" not in p.text and "\ufeff" not in p.text for d in docs for p in d.passages)
    out = tmp_path / "out.pubtator"
    write_pubtator(docs, out)
    assert out.read_bytes() == path.read_bytes()


# ---------------------------------------------------------------- PubTator: spans and error locations
@pytest.mark.parametrize(
    ("start", "end", "kind"), [(5, 5, "zero-length"), (5, 3, "reversed"), (-2, 3, "negative"), (0, 0, "zero-length")]
)
def test_pubtator_bad_span_names_file_line_and_pmid(tmp_path: Path, start: int, end: int, kind: str) -> None:
    path = tmp_path / "spans.pubtator"
    path.write_text(DOC_1 + f"\n22|t|Title.\n22|a|Abstract.\n22\t{start}\t{end}\tx\tDisease\tD1\n", encoding="utf-8")
    with pytest.raises(PubTatorFormatError, match=rf"spans\.pubtator:7: document 22: {kind} mention span"):
        read_pubtator(path)


def test_pubtator_mismatch_names_the_document(tmp_path: Path) -> None:
    path = tmp_path / "shift.pubtator"
    path.write_text("9|t|Title.\n9|a|Abstract.\n9\t0\t5\tTitel\tDisease\tD1\n", encoding="utf-8")
    with pytest.raises(PubTatorFormatError, match=r"shift\.pubtator:3: document 9: mention 'Titel' does not match"):
        read_pubtator(path)


def test_pubtator_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.pubtator"
    path.write_bytes(DOC_1.encode() + b"\n2|t|Caf\xe9.\n2|a|x.\n")
    with pytest.raises(PubTatorFormatError, match=r"latin1\.pubtator:5: not valid UTF-8 \(byte 0xe9"):
        read_pubtator(path)


# ---------------------------------------------------------------- PubTator: errors="collect"
BROKEN_PUBTATOR = (
    DOC_1
    + "\n2|t|Headache.\n2|a|Mild.\n2\t0\t8\tHeadachX\tDisease\tD006261\n"  # lines 5-7: text mismatch (found at the end)
    + "\n"
    + DOC_3
    + "\n4|t|Nausea.\n4|a|Some.\n4\t1O\t6\tNausea\tDisease\tD009325\n4\t0\t6\tNausea\tDisease\tD009325\n"  # 13-16
    + "\n5|t|Pain.\n5|a|Back.\n5\t0\t4\tPain\tDisease\tD010146\n"
)


def test_pubtator_collect_yields_invalid_records_and_reads_on(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pubtator"
    path.write_text(BROKEN_PUBTATOR, encoding="utf-8")
    records = list(iter_pubtator(path, errors="collect"))
    assert [type(r).__name__ for r in records] == ["Document", "InvalidRecord", "Document", "InvalidRecord", "Document"]
    assert [r.id for r in records] == ["1", "2", "3", "4", "5"]
    bad_mention, bad_offsets = records[1], records[3]
    assert bad_mention.location == f"{path}:7" and "does not match" in bad_mention.message
    assert bad_offsets.location == f"{path}:15" and "not integers" in bad_offsets.message
    assert bad_offsets.message.startswith(f"{path}:15: document 4:")
    assert [m.text for m in records[4].mentions] == ["Pain"]
    with pytest.raises(PubTatorFormatError, match=r"mixed\.pubtator:7:"):
        list(iter_pubtator(path))  # the default still stops at the first bad document
    with pytest.raises(PubTatorFormatError):
        read_pubtator(path, errors="raise")


def test_pubtator_collect_keeps_the_layout_of_good_documents(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pubtator"
    path.write_text(BROKEN_PUBTATOR, encoding="utf-8")
    good = [r for r in read_pubtator(path, errors="collect") if isinstance(r, Document)]
    out = tmp_path / "good.pubtator"
    write_pubtator(good, out)
    assert (
        out.read_text(encoding="utf-8")
        == DOC_1 + "\n" + DOC_3 + "\n" + "5|t|Pain.\n5|a|Back.\n5\t0\t4\tPain\tDisease\tD010146\n"
    )


def test_pubtator_collect_garbage_before_the_first_document_and_bad_utf8(tmp_path: Path) -> None:
    path = tmp_path / "junk.pubtator"
    path.write_bytes(b"some header\nmore\n" + DOC_1.encode() + b"\n2|t|Caf\xe9.\n2|a|x.\n\n" + DOC_3.encode())
    records = read_pubtator(path, errors="collect")
    assert [(type(r).__name__, r.id) for r in records] == [
        ("InvalidRecord", None),
        ("Document", "1"),
        ("InvalidRecord", "2"),
        ("Document", "3"),
    ]
    assert records[0].location == f"{path}:1" and records[2].location == f"{path}:7"
    assert "UTF-8" in records[2].message


@pytest.mark.parametrize("reader", [iter_pubtator, iter_jsonl])
def test_unknown_errors_mode_is_refused(reader, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="errors='skip'"):
        next(iter(reader(tmp_path / "missing", errors="skip")))


# ---------------------------------------------------------------- JSONL: types are checked, not coerced
@pytest.mark.parametrize(
    ("mention", "field"),
    [
        ({"start": 1.7, "end": 5}, r"mentions\[0\]\.start must be an integer, got 1\.7"),
        ({"start": True, "end": 5}, r"mentions\[0\]\.start must be an integer, got true \(a boolean\)"),
        ({"start": "3", "end": 5}, r'mentions\[0\]\.start must be an integer, got "3" \(a string\)'),
        ({"start": 0, "end": 5.0}, r"mentions\[0\]\.end must be an integer"),
        ({"start": 0, "end": None}, r"mentions\[0\]\.end must be an integer, got null"),
        ({"end": 5}, r"mentions\[0\]\.start is missing"),
        ({"start": 0, "end": 5, "type": 7}, r"mentions\[0\]\.type must be a string or null"),
        ({"start": 0, "end": 5, "ids": 5}, r"mentions\[0\]\.ids must be a string or a list of strings"),
        ({"start": 0, "end": 5, "ids": ["D1", 2]}, r"mentions\[0\]\.ids must be a string or a list of strings"),
        ({"start": 3, "end": 3}, r"mentions\[0\] span 3-3 is empty, reversed or outside"),
        ({"start": 4, "end": 2}, r"mentions\[0\] span 4-2 is empty, reversed or outside"),
    ],
)
def test_jsonl_mention_fields_are_type_checked(tmp_path: Path, mention: dict, field: str) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [{"text": "Fine."}, {"id": "d2", "text": "Fever and rash.", "mentions": [mention]}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    with pytest.raises(JsonlFormatError, match=rf"bad\.jsonl:2: {field}"):
        read_jsonl(path)


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"passages": [{"offset": 0.5, "text": "x"}]}, r"passages\[0\]\.offset must be an integer"),
        ({"passages": [{"offset": 0, "text": 3}]}, r"passages\[0\]\.text must be a string"),
        ({"text": None}, r"text must be a string, got null"),
        ({"id": None, "text": "x"}, r"id must be a string or an integer"),
        ({"text": "x", "mentions": {"start": 0}}, r"mentions must be a list"),
        ({"text": "bad \ud800 text"}, r"text contains a lone surrogate"),
    ],
)
def test_jsonl_document_fields_are_type_checked(tmp_path: Path, record: dict, field: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(JsonlFormatError, match=rf"bad\.jsonl:1: {field}"):
        read_jsonl(path)


def test_jsonl_ids_strings_integers_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    records = [
        {"id": 123, "text": "Fever and rash.", "mentions": [{"start": 0, "end": 5, "ids": "D005334,D005335"}]},
        {"text": "Fever.", "mentions": [{"start": 0, "end": 5, "ids": ["-"], "type": None}]},
    ]
    path.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\r\n" for r in records).encode())
    first, second = read_jsonl(path)
    assert first.id == "123"
    assert first.mentions[0].ids == ("MESH:D005334", "MESH:D005335") and first.mentions[0].composite
    assert second.mentions[0].ids == () and second.mentions[0].type is None


def test_jsonl_collect_yields_invalid_records_and_reads_on(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b'{"id": "a", "text": "Fever."}\n'
        b'{"id": "b", "text": \n'
        b'{"id": "c", "text": "Fever.", "mentions": [{"start": 1.7, "end": 5}]}\n'
        b"\n"
        b'{"id": "d", "text": "Caf\xe9"}\n'
        b'{"id": "e", "text": "Rash."}\n'
    )
    records = list(iter_jsonl(path, errors="collect"))
    assert [(type(r).__name__, r.id) for r in records] == [
        ("Document", "a"),
        ("InvalidRecord", None),
        ("InvalidRecord", "c"),
        ("InvalidRecord", None),
        ("Document", "e"),
    ]
    assert [r.location for r in records[1:4]] == [f"{path}:2", f"{path}:3", f"{path}:5"]
    assert "mentions[0].start must be an integer" in records[2].message
    assert "not valid UTF-8" in records[3].message
    assert read_jsonl(path, errors="collect")[4].text == "Rash."
    with pytest.raises(JsonlFormatError, match=r"mixed\.jsonl:2:"):
        list(iter_jsonl(path))


# ---------------------------------------------------------------- BioC
GOOD_BIOC_DOCUMENT = (
    "<document><id>{id}</id><passage><infon key='type'>title</infon><offset>0</offset><text>Fever.</text>"
    "<annotation id='1'><infon key='type'>Disease</infon><infon key='identifier'>{ids}</infon>"
    "<location offset='0' length='5'/><text>Fever</text></annotation></passage></document>\n"
)


def bioc_xml(*documents: str) -> str:
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n<collection><source>t</source><date/><key/>\n"
        + "".join(documents)
        + "</collection>\n"
    )


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        (
            "bad.xml",
            bioc_xml("<document><id>1</id>\n<passage><text>x</passage></document>\n"),
            r"bad\.xml:4:\d+: not well-formed XML",
        ),
        ("empty.xml", "", r"empty\.xml:1:\d+: not well-formed XML"),
        ("other.xml", "<?xml version='1.0'?>\n<html><body/></html>\n", r"other\.xml: not a BioC XML file.*<html>"),
        ("bad.json", '{"source": "x", "documents": [\n{"id": 1,', r"bad\.json:2:10: not valid JSON"),
        ("list.json", "[1, 2]", r"list\.json: not a BioC JSON collection"),
    ],
)
def test_bioc_unparseable_file_names_file_line_and_column(tmp_path: Path, name: str, content: str, match: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BioCFormatError, match=match) as caught:
        read_bioc(path)
    assert isinstance(caught.value, ValueError) and caught.value.__cause__ is None


def test_bioc_does_not_expand_external_entities(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET", encoding="utf-8")
    path = tmp_path / "xxe.xml"
    path.write_text(
        f"<?xml version='1.0'?>\n<!DOCTYPE collection [<!ENTITY x SYSTEM 'file://{secret}'>]>\n"
        "<collection><source>t</source><document><id>1</id><passage><offset>0</offset><text>&x;</text>"
        "</passage></document></collection>\n",
        encoding="utf-8",
    )
    (doc,) = read_bioc(path)
    assert "SECRET" not in doc.text


BAD_DOCUMENTS = [
    ("<document><id>7</id><passage><offset>zz</offset><text>Fever.</text></passage></document>\n", "offset must be"),
    (
        GOOD_BIOC_DOCUMENT.format(id=7, ids="D000001").replace("<text>Fever</text>", "<text>Fevor</text>"),
        "does not match",
    ),
    (GOOD_BIOC_DOCUMENT.format(id=7, ids="D000001").replace("length='5'", "length='0'"), "zero-length"),
    (GOOD_BIOC_DOCUMENT.format(id=7, ids="D000001").replace("<location offset='0' length='5'/>", ""), "no location"),
]


@pytest.mark.parametrize(("bad", "problem"), BAD_DOCUMENTS)
def test_bioc_bad_document_names_its_id_and_collect_reads_on(tmp_path: Path, bad: str, problem: str) -> None:
    path = tmp_path / "corpus.xml"
    path.write_text(
        bioc_xml(GOOD_BIOC_DOCUMENT.format(id=6, ids="D000001"), bad, GOOD_BIOC_DOCUMENT.format(id=8, ids="D000002")),
        encoding="utf-8",
    )
    with pytest.raises(BioCFormatError, match=rf"corpus\.xml:4: document 7: .*{problem}"):
        read_bioc(path)
    first, invalid, last = read_bioc(path, errors="collect")
    assert isinstance(invalid, InvalidRecord) and invalid.id == "7" and invalid.location == f"{path}:4"
    assert problem in invalid.message
    assert (first.id, last.id) == ("6", "8") and last.mentions[0].ids == ("MESH:D000002",)


def test_bioc_json_bad_document_and_collect(tmp_path: Path) -> None:
    path = tmp_path / "corpus.json"
    write_bioc(read_pubtator(NCBI_FIXTURE), path)
    collection = json.loads(path.read_text(encoding="utf-8"))
    collection["documents"][0]["passages"][0]["offset"] = 1.5
    path.write_text(json.dumps(collection), encoding="utf-8")
    with pytest.raises(BioCFormatError, match=r"corpus\.json: document #1: document 1001: passage 0: offset"):
        read_bioc(path)
    invalid, good = read_bioc(path, errors="collect")
    assert isinstance(invalid, InvalidRecord) and invalid.id == "1001" and good.id == "1002"


def test_bioc_identifier_forms(tmp_path: Path) -> None:
    path = tmp_path / "ids.xml"
    documents = [
        GOOD_BIOC_DOCUMENT.format(id=i, ids=ids)
        for i, ids in enumerate(["-", "D000001+D000002", "D000001;D000002", "-1"])
    ]
    path.write_text(bioc_xml(*documents), encoding="utf-8")
    assert [(d.mentions[0].ids, d.mentions[0].composite) for d in read_bioc(path)] == [
        ((), False),
        (("MESH:D000001", "MESH:D000002"), True),
        (("MESH:D000001", "MESH:D000002"), True),
        ((), False),
    ]
