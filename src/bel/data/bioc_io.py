"""BioC XML / BioC JSON reader and writer (format chosen by extension: ``.json``/``.jsonl`` is JSON, else XML).

Annotations carry infons ``identifier`` (ids joined by ``,``/``;``/``|``; ``-1`` = NIL) and ``type``; each mention is
one annotation with one location. Passages keep their own offsets; their text is placed at those offsets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import bioc
from bioc import biocjson

from bel.data.document import Document, Mention, Passage
from bel.kb import normalize_id


class BioCFormatError(ValueError):
    """A BioC annotation that cannot be mapped to a mention (the message names the file and document)."""


def _is_json(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith((".json", ".jsonl"))


def _ids(identifier: str | None) -> tuple[tuple[str, ...], bool]:
    if not identifier or identifier.strip() in ("-1", ""):
        return (), False
    parts = [p for p in re.split(r"[,;|+]", identifier) if p.strip() and p.strip() != "-1"]
    return tuple(dict.fromkeys(normalize_id(p) for p in parts)), len(parts) > 1


def _document(bioc_doc: bioc.BioCDocument, source: str) -> Document:
    doc = Document(id=str(bioc_doc.id))
    for index, passage in enumerate(bioc_doc.passages):
        passage_type = passage.infons.get("type") or ("title" if index == 0 else "abstract")
        doc.passages.append(Passage(type=passage_type, offset=int(passage.offset), text=passage.text or ""))
    text = doc.text
    annotations = [a for p in bioc_doc.passages for a in p.annotations] + list(bioc_doc.annotations)
    for annotation in annotations:
        if not annotation.locations:
            raise BioCFormatError(f"{source}: document {doc.id}: annotation {annotation.id} has no location")
        start = min(loc.offset for loc in annotation.locations)
        end = max(loc.offset + loc.length for loc in annotation.locations)
        mention_text = annotation.text if annotation.text is not None else text[start:end]
        if text[start:end] != mention_text:
            raise BioCFormatError(
                f"{source}: document {doc.id}: annotation {annotation.id} text {mention_text!r} "
                f"does not match the text at {start}-{end} ({text[start:end]!r})"
            )
        identifier = annotation.infons.get("identifier") or annotation.infons.get("Identifier")
        ids, composite = _ids(identifier)
        doc.mentions.append(
            Mention(
                start=start,
                end=end,
                text=mention_text,
                type=annotation.infons.get("type"),
                ids=ids,
                composite=composite,
            )
        )
    doc.mentions.sort(key=lambda m: (m.start, m.end))
    return doc


def read_bioc(path: str | os.PathLike) -> list[Document]:
    """Read a BioC XML or JSON collection."""
    with open(path, encoding="utf-8") as handle:
        collection = biocjson.load(handle) if _is_json(path) else bioc.load(handle)
    return [_document(d, str(path)) for d in collection.documents]


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
