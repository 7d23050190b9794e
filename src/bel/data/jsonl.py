"""JSON Lines corpus format: one document per line.

Full form: ``{"id", "passages": [{"type", "offset", "text"}], "mentions": [{"start", "end", "text", "type", "ids"}]}``.
Simple form (accepted on reading): ``{"id"?, "text", "mentions"?}`` -- one passage; a missing id becomes the line number;
a missing mention ``text`` is taken from the span.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from bel.data.document import Document, Mention, Passage
from bel.kb import normalize_id


class JsonlFormatError(ValueError):
    """A malformed JSONL line; the message names the file and line."""


def _mention(record: dict, text: str, where: str) -> Mention:
    start, end = int(record["start"]), int(record["end"])
    if not 0 <= start <= end <= len(text):
        raise JsonlFormatError(f"{where}: mention span {start}-{end} outside the text")
    mention_text = record.get("text", text[start:end])
    if mention_text != text[start:end]:
        raise JsonlFormatError(f"{where}: mention text {mention_text!r} != text[{start}:{end}] {text[start:end]!r}")
    ids = record.get("ids", ())
    if isinstance(ids, str):
        ids = [ids]
    ids = tuple(normalize_id(i) for i in ids if i and i != "-1")
    return Mention(
        start=start,
        end=end,
        text=mention_text,
        type=record.get("type"),
        ids=ids,
        composite=bool(record.get("composite", len(ids) > 1)),
    )


def parse_document(record: dict, where: str, default_id: str) -> Document:
    """Build a :class:`Document` from a full-form or simple-form JSON object."""
    if "passages" in record:
        passages = [
            Passage(type=p.get("type", "text"), offset=int(p["offset"]), text=p["text"]) for p in record["passages"]
        ]
    elif "text" in record:
        passages = [Passage(type="text", offset=0, text=record["text"])]
    else:
        raise JsonlFormatError(f"{where}: a document needs 'passages' or 'text'")
    doc = Document(id=str(record.get("id", default_id)), passages=passages)
    text = doc.text
    doc.mentions = [_mention(m, text, where) for m in record.get("mentions", ())]
    return doc


def document_to_json(doc: Document) -> dict:
    """The full JSON form of ``doc``."""
    return {
        "id": doc.id,
        "passages": [{"type": p.type, "offset": p.offset, "text": p.text} for p in doc.passages],
        "mentions": [
            {"start": m.start, "end": m.end, "text": m.text, "type": m.type, "ids": list(m.ids)} for m in doc.mentions
        ],
    }


def iter_jsonl(path: str | os.PathLike) -> Iterator[Document]:
    """Stream one document per non-empty line; a bad line raises JsonlFormatError naming file and line."""
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise JsonlFormatError(f"{where}: expected a JSON object")
                document = parse_document(record, where, default_id=str(line_no))
            except JsonlFormatError:
                raise
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                raise JsonlFormatError(f"{where}: {error}") from None
            yield document


def read_jsonl(path: str | os.PathLike) -> list[Document]:
    """Read one document per non-empty line."""
    return list(iter_jsonl(path))


def write_jsonl(docs: Iterable[Document], path: str | os.PathLike) -> None:
    """Write documents in the full JSON form, one per line."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for doc in docs:
            handle.write(json.dumps(document_to_json(doc), ensure_ascii=False) + "\n")
