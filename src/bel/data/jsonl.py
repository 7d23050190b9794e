"""JSON Lines corpus format: one document per line.

Full form: ``{"id", "passages": [{"type", "offset", "text"}], "mentions": [{"start", "end", "text", "type", "ids"}]}``.
Simple form (accepted on reading): ``{"id"?, "text", "mentions"?}`` -- one passage; a missing id becomes the line number;
a missing mention ``text`` is taken from the span.

Types are checked, never coerced: offsets are JSON integers (``1.7``, ``true`` and ``"3"`` are refused), texts and
``type`` are strings (``type`` may be null), ``id`` is a string or an integer, ``ids`` a string or a list of strings.
A string ``ids`` may join several ids with ``,`` ``;`` ``|`` or ``+`` (a composite mention); ``-``, ``-1`` and ``""``
mean no id. ``iter_jsonl(path, errors="collect")`` yields an :class:`~bel.data.document.InvalidRecord` in place of each
bad line and reads on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bel.data.document import Document, InvalidRecord, Mention, Passage
from bel.data.pubtator import check_errors_mode, parse_id_field
from bel.json_lines import json_kind, parse_object_line
from bel.kb import normalize_id


class JsonlFormatError(ValueError):
    """A malformed JSONL line; the message names the file, line and field."""


def _integer(record: dict, key: str, where: str, field: str) -> int:
    if key not in record:
        raise JsonlFormatError(f"{where}: {field} is missing")
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise JsonlFormatError(
            f"{where}: {field} must be an integer, got {json.dumps(value)} ({json_kind(value)}); "
            "write character offsets as plain JSON integers"
        )
    return value


def _string(value: Any, where: str, field: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        expected = "a string or null" if optional else "a string"
        raise JsonlFormatError(f"{where}: {field} must be {expected}, got {json.dumps(value)} ({json_kind(value)})")
    try:
        value.encode("utf-8")  # a lone surrogate (an unpaired "\\ud800" escape) cannot be encoded or tokenized
    except UnicodeEncodeError as error:
        raise JsonlFormatError(
            f"{where}: {field} contains a lone surrogate {value[error.start]!r} at character {error.start}; "
            "surrogate escapes must come in pairs"
        ) from None
    return value


def _mention_ids(value: Any, where: str, field: str) -> tuple[tuple[str, ...], bool]:
    if isinstance(value, str):
        return parse_id_field(value)
    if not isinstance(value, list | tuple) or not all(isinstance(i, str) for i in value):
        raise JsonlFormatError(
            f"{where}: {field} must be a string or a list of strings, got {json.dumps(value)} ({json_kind(value)})"
        )
    parts = [i for i in value if i.strip() not in ("", "-", "-1")]
    return tuple(dict.fromkeys(normalize_id(i) for i in parts)), len(parts) > 1


def _mention(record: Any, text: str, where: str, index: int) -> Mention:
    field = f"mentions[{index}]"
    if not isinstance(record, dict):
        raise JsonlFormatError(f"{where}: {field} must be an object, got {json_kind(record)}")
    start = _integer(record, "start", where, f"{field}.start")
    end = _integer(record, "end", where, f"{field}.end")
    if not 0 <= start < end <= len(text):
        raise JsonlFormatError(
            f"{where}: {field} span {start}-{end} is empty, reversed or outside the text (length {len(text)})"
        )
    mention_text = _string(record.get("text", text[start:end]), where, f"{field}.text")
    if mention_text != text[start:end]:
        raise JsonlFormatError(
            f"{where}: {field}.text {mention_text!r} != text[{start}:{end}] {text[start:end]!r}; fix the offsets"
        )
    ids, composite = _mention_ids(record.get("ids", ()), where, f"{field}.ids")
    if "composite" in record and not isinstance(record["composite"], bool):
        raise JsonlFormatError(f"{where}: {field}.composite must be true or false")
    return Mention(
        start=start,
        end=end,
        text=mention_text,
        type=_string(record.get("type"), where, f"{field}.type", optional=True),
        ids=ids,
        composite=record.get("composite", composite),
    )


def _passages(record: dict, where: str) -> list[Passage]:
    if "passages" in record:
        if not isinstance(record["passages"], list):
            raise JsonlFormatError(f"{where}: passages must be a list")
        passages = []
        for index, passage in enumerate(record["passages"]):
            field = f"passages[{index}]"
            if not isinstance(passage, dict):
                raise JsonlFormatError(f"{where}: {field} must be an object, got {json_kind(passage)}")
            offset = _integer(passage, "offset", where, f"{field}.offset")
            if offset < 0:
                raise JsonlFormatError(f"{where}: {field}.offset must not be negative, got {offset}")
            text = _string(passage.get("text"), where, f"{field}.text")
            passages.append(
                Passage(type=_string(passage.get("type", "text"), where, f"{field}.type"), offset=offset, text=text)
            )
        return passages
    if "text" in record:
        return [Passage(type="text", offset=0, text=_string(record["text"], where, "text"))]
    raise JsonlFormatError(f"{where}: a document needs 'passages' or 'text'")


def _document_id(record: dict, where: str, default_id: str) -> str:
    value = record.get("id", default_id)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise JsonlFormatError(f"{where}: id must be a string or an integer, got {json.dumps(value)}")
    return str(value)


def parse_document(record: dict, where: str, default_id: str) -> Document:
    """Build a :class:`Document` from a full-form or simple-form JSON object; types are checked, not coerced."""
    doc = Document(id=_document_id(record, where, default_id), passages=_passages(record, where))
    try:
        text = doc.text
    except ValueError as error:
        raise JsonlFormatError(f"{where}: {error}") from None
    mentions = record.get("mentions", [])
    if not isinstance(mentions, list):
        raise JsonlFormatError(f"{where}: mentions must be a list, got {json_kind(mentions)}")
    doc.mentions = [_mention(m, text, where, index) for index, m in enumerate(mentions)]
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


def _parse_line(line: str, where: str, default_id: str) -> Document:
    record = parse_object_line(line, where, JsonlFormatError)
    return parse_document(record, where, default_id=default_id)


def _record_id(line: bytes) -> str | None:
    """The id of a bad line when it can still be read, for :class:`InvalidRecord`."""
    try:
        value = json.loads(line).get("id")
    except (ValueError, AttributeError):
        return None
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def iter_jsonl(path: str | os.PathLike, errors: str = "raise") -> Iterator[Document | InvalidRecord]:
    """Stream one document per non-empty line.

    ``errors="raise"`` (default): a bad line raises :class:`JsonlFormatError` naming file, line and field;
    ``"collect"``: an :class:`InvalidRecord` is yielded in its place and reading goes on.
    """
    check_errors_mode(errors)
    with open(path, "rb") as handle:  # lines are decoded one by one so that bad UTF-8 is reported by line
        for line_no, raw in enumerate(handle, start=1):
            where = f"{path}:{line_no}"
            try:
                line = _decode(raw, where)
                if line_no == 1:
                    line = line.removeprefix("\ufeff")  # a byte-order mark some editors write
                if not line.strip():
                    continue
                yield _parse_line(line, where, default_id=str(line_no))
            except JsonlFormatError as error:
                if errors == "raise":
                    raise
                yield InvalidRecord(location=where, message=str(error), id=_record_id(raw))


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonlFormatError(
            f"{where}: not valid UTF-8 (byte {raw[error.start]:#04x} at column {error.start + 1}); "
            "re-encode the file as UTF-8"
        ) from None


def read_jsonl(path: str | os.PathLike, errors: str = "raise") -> list[Document | InvalidRecord]:
    """Read one document per non-empty line (``errors`` as in :func:`iter_jsonl`)."""
    return list(iter_jsonl(path, errors=errors))


def write_jsonl(docs: Iterable[Document], path: str | os.PathLike) -> None:
    """Write documents in the full JSON form, one per line."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for doc in docs:
            handle.write(json.dumps(document_to_json(doc), ensure_ascii=False) + "\n")
