"""BioC XML / BioC JSON reader and writer (format chosen by extension: ``.json``/``.jsonl`` is JSON, else XML).

Annotations carry infons ``identifier`` (ids joined by ``,`` ``;`` ``|`` or ``+``; ``-``/``-1`` = NIL) and ``type``; each
mention is one annotation (several locations make one span from the first to the last). Passages keep their own
offsets; their text is placed at those offsets. Malformed XML or JSON raises :class:`BioCFormatError` naming the file
(and line and column); a bad document names its id, and ``read_bioc(path, errors="collect")`` returns it as an
:class:`~bel.data.document.InvalidRecord` while reading the rest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import bioc
from bioc import biocjson
from lxml import etree

from bel.data.document import Document, InvalidRecord, Mention, Passage
from bel.data.pubtator import check_errors_mode, parse_id_field


class BioCFormatError(ValueError):
    """A BioC file that does not parse, or a document that cannot be mapped (the message names file and document)."""


def _is_json(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith((".json", ".jsonl"))


def _offset(value: object, what: str) -> int:
    """A BioC offset or length: an integer in JSON, digits in XML; anything else (1.7, true, "x") is refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    else:
        raise BioCFormatError(f"{what} must be a non-negative integer, got {value!r}")
    if number < 0:
        raise BioCFormatError(f"{what} must be a non-negative integer, got {value!r}")
    return number


def _annotation_mention(annotation: dict, text: str) -> Mention:
    what = f"annotation {annotation.get('id')}"
    locations = annotation.get("locations") or []
    if not locations:
        raise BioCFormatError(f"{what} has no location")
    spans = [
        (_offset(loc.get("offset"), f"{what}: offset"), _offset(loc.get("length"), f"{what}: length"))
        for loc in locations
    ]
    start = min(offset for offset, _ in spans)
    end = max(offset + length for offset, length in spans)
    if end <= start:
        raise BioCFormatError(f"{what} has a zero-length span at {start}")
    mention_text = annotation.get("text")
    mention_text = text[start:end] if mention_text is None else mention_text
    if text[start:end] != mention_text:
        raise BioCFormatError(
            f"{what} text {mention_text!r} does not match the text at {start}-{end} ({text[start:end]!r})"
        )
    infons = annotation.get("infons") or {}
    ids, composite = parse_id_field(infons.get("identifier") or infons.get("Identifier") or "")
    return Mention(start=start, end=end, text=mention_text, type=infons.get("type"), ids=ids, composite=composite)


def _document(obj: dict) -> Document:
    """A :class:`Document` from a BioC document in dict form (BioC JSON, or XML turned into the same shape)."""
    if obj.get("id") is None:
        raise BioCFormatError("the document has no id")
    doc = Document(id=str(obj["id"]))
    for index, passage in enumerate(obj.get("passages") or []):
        passage_type = (passage.get("infons") or {}).get("type") or ("title" if index == 0 else "abstract")
        offset = _offset(passage.get("offset"), f"passage {index}: offset")
        doc.passages.append(Passage(type=passage_type, offset=offset, text=passage.get("text") or ""))
    text = doc.text
    annotations = [a for p in obj.get("passages") or [] for a in p.get("annotations") or []]
    annotations += list(obj.get("annotations") or [])
    doc.mentions = sorted((_annotation_mention(a, text) for a in annotations), key=lambda m: (m.start, m.end))
    return doc


# ------------------------------------------------------------------------------------------ BioC XML as dicts
def _xml_infons(element) -> dict:
    return {child.get("key"): child.text for child in element.findall("infon")}


def _xml_annotation(element) -> dict:
    locations = [{"offset": loc.get("offset"), "length": loc.get("length")} for loc in element.findall("location")]
    return {
        "id": element.get("id"),
        "infons": _xml_infons(element),
        "text": element.findtext("text"),
        "locations": locations,
    }


def _xml_document(element) -> dict:
    passages = [
        {
            "offset": passage.findtext("offset"),
            "infons": _xml_infons(passage),
            "text": passage.findtext("text"),
            "annotations": [_xml_annotation(a) for a in passage.findall("annotation")],
        }
        for passage in element.findall("passage")
    ]
    annotations = [_xml_annotation(a) for a in element.findall("annotation")]
    return {"id": element.findtext("id"), "passages": passages, "annotations": annotations}


def _parse_xml(path: str | os.PathLike) -> list[tuple[str, dict]]:
    """``(location, document dict)`` per ``<document>``; XML that does not parse raises naming file, line, column."""
    # No entity expansion or network access: a hostile file can neither read other files nor expand entities
    # exponentially. huge_tree: a full-text passage may exceed libxml2's 10 MB limit for one text node.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        with open(path, "rb") as handle:  # opened here so a missing file is a FileNotFoundError
            root = etree.parse(handle, parser).getroot()
    except etree.XMLSyntaxError as error:
        line, column = error.position
        raise BioCFormatError(
            f"{path}:{line}:{column}: not well-formed XML ({error.msg}); fix or re-export the file"
        ) from None
    if root.tag != "collection":
        raise BioCFormatError(f"{path}: not a BioC XML file: the root element is <{root.tag}>, expected <collection>")
    return [(f"{path}:{element.sourceline}", _xml_document(element)) for element in root.findall("document")]


def _parse_json(path: str | os.PathLike) -> list[tuple[str, dict]]:
    """``(location, document dict)`` per document; JSON that does not parse raises naming file, line, column."""
    try:
        with open(path, encoding="utf-8") as handle:
            collection = json.load(handle)
    except json.JSONDecodeError as error:
        raise BioCFormatError(f"{path}:{error.lineno}:{error.colno}: not valid JSON ({error.msg})") from None
    except UnicodeDecodeError as error:
        raise BioCFormatError(f"{path}: not valid UTF-8 (byte offset {error.start}); re-encode it as UTF-8") from None
    documents = collection.get("documents") if isinstance(collection, dict) else None
    if not isinstance(documents, list):
        raise BioCFormatError(f"{path}: not a BioC JSON collection: expected an object with a 'documents' list")
    return [(f"{path}: document #{index + 1}", doc) for index, doc in enumerate(documents)]


def read_bioc(path: str | os.PathLike, errors: str = "raise") -> list[Document | InvalidRecord]:
    """Read a BioC XML or JSON collection.

    A file that does not parse raises :class:`BioCFormatError` naming it (and the line and column). A document that
    cannot be mapped raises naming its id (``errors="raise"``, default) or, with ``errors="collect"``, is returned as
    an :class:`InvalidRecord` in its place while the other documents are read.
    """
    check_errors_mode(errors)
    entries = _parse_json(path) if _is_json(path) else _parse_xml(path)
    documents: list[Document | InvalidRecord] = []
    for location, obj in entries:
        doc_id = obj.get("id") if isinstance(obj, dict) else None
        try:
            if not isinstance(obj, dict):
                raise BioCFormatError("a document must be an object")
            documents.append(_document(obj))
        except (BioCFormatError, ValueError, TypeError, AttributeError) as error:
            message = f"{location}: document {doc_id}: {error}"
            if errors == "raise":
                raise BioCFormatError(message) from None
            documents.append(
                InvalidRecord(location=location, message=message, id=None if doc_id is None else str(doc_id))
            )
    return documents


def _bioc_document(doc: Document) -> bioc.BioCDocument:
    bioc_doc = bioc.BioCDocument()
    bioc_doc.id = doc.id
    for passage in doc.passages:
        bioc_passage = bioc.BioCPassage()
        bioc_passage.offset = passage.offset
        bioc_passage.text = passage.text
        bioc_passage.infons["type"] = passage.type
        bioc_doc.add_passage(bioc_passage)
    for number, mention in enumerate(doc.mentions):
        annotation = bioc.BioCAnnotation()
        annotation.id = str(number)
        annotation.text = mention.text
        annotation.add_location(bioc.BioCLocation(offset=mention.start, length=mention.end - mention.start))
        if mention.type is not None:
            annotation.infons["type"] = mention.type
        annotation.infons["identifier"] = ",".join(mention.ids) if mention.ids else "-1"
        target = doc.passage_of(mention)
        index = doc.passages.index(target) if target is not None else None
        (bioc_doc.passages[index] if index is not None else bioc_doc).add_annotation(annotation)
    return bioc_doc


def write_bioc(docs: Iterable[Document], path: str | os.PathLike) -> None:
    """Write a BioC collection (JSON for ``.json``, XML otherwise)."""
    collection = bioc.BioCCollection()
    collection.source = "bel"
    for doc in docs:
        collection.add_document(_bioc_document(doc))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        if _is_json(path):
            biocjson.dump(collection, handle)
        else:
            bioc.dump(collection, handle)
