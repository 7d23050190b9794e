"""Reading the input of `bel link` and the records it writes (see `bel.linking` for the whole flow).

Reading: `iter_documents` streams the documents of a ``txt`` (one per non-empty line, id ``ID`` for ``ID<TAB>text``
and ``FILENAME:LINE`` otherwise, or the whole file), ``pubtator``, ``bioc`` or ``jsonl`` file, naming the file and
line of any byte that is not UTF-8; `guess_format` tells a format from a file's extension. Records: `pipeline_input`
(what the pipeline gets for a document), `to_record` / `error_record` (one work-file line per document or bad input
record), `to_document` / `format_record` (a record back as a Document, or as an output line) and `_canonical_bytes`
(what the run hashes of each input record to recognise a changed input on resume).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

from bel.data.document import Document, InvalidRecord, Mention, Passage, Relation

INPUT_FORMATS = ("txt", "pubtator", "bioc", "jsonl")
OUTPUT_FORMATS = ("jsonl", "pubtator", "bioc")
_EXTENSIONS = {
    ".txt": "txt",
    ".pubtator": "pubtator",
    ".pubtator.txt": "pubtator",
    ".xml": "bioc",
    ".json": "bioc",
    ".bioc": "bioc",
    ".jsonl": "jsonl",
}
# options of LinkSettings that change the output (batch_size does not: output is independent of it)
_TXT_ID = re.compile(r"^([^\s]+)\t")


def guess_format(path: Path, allowed: tuple[str, ...]) -> str:
    """The format named by `path`'s extension (`.txt`, `.pubtator`, `.xml`/`.json`/`.bioc`, `.jsonl`)."""
    name = path.name.lower()
    for extension, fmt in sorted(_EXTENSIONS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(extension) and fmt in allowed:
            return fmt
    raise ValueError(
        f"cannot tell the format of {path} from its extension; pass --input-format/--output-format "
        f"({', '.join(allowed)})."
    )


# ---------------------------------------------------------------------------------------------------- reading
def iter_documents(
    path: Path, fmt: str, txt_mode: str = "line", errors: str = "raise"
) -> Iterator[Document | InvalidRecord]:
    """Stream the documents of `path`; non-UTF-8 input raises ValueError naming the file and line.

    With ``errors="collect"`` a record the reader cannot parse is yielded as an `InvalidRecord` in its place.
    """
    if errors not in ("raise", "collect"):
        raise ValueError(f"errors={errors!r}: use 'raise' or 'collect'")
    try:
        if fmt == "txt":
            yield from _iter_txt(path, txt_mode, errors)
        elif fmt == "pubtator":
            from bel.data.pubtator import iter_pubtator

            yield from iter_pubtator(path, errors=errors)
        elif fmt == "jsonl":
            from bel.data.jsonl import iter_jsonl

            yield from iter_jsonl(path, errors=errors)
        elif fmt == "bioc":
            from bel.data.bioc_io import read_bioc

            yield from read_bioc(path, errors=errors)  # BioC readers parse the whole collection
        else:
            raise ValueError(f"unknown input format {fmt!r}; use one of {', '.join(INPUT_FORMATS)}.")
    except UnicodeDecodeError as error:
        raise ValueError(_utf8_message(path, error)) from None


def _iter_txt(path: Path, txt_mode: str, errors: str = "raise") -> Iterator[Document | InvalidRecord]:
    if txt_mode == "file":
        text = path.read_bytes().decode("utf-8")
        yield Document(id=path.stem, passages=[Passage("text", 0, text)])
        return
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                message = (
                    f"{path}:{line_no}: not valid UTF-8 (byte {raw[error.start]:#04x} at column "
                    f"{error.start + 1}); re-encode the file as UTF-8."
                )
                if errors == "raise":
                    raise ValueError(message) from None
                yield InvalidRecord(location=f"{path}:{line_no}", message=message)
                continue
            line = line.rstrip("\n").rstrip("\r")
            if line.strip():
                yield _txt_line_document(line, f"{path.name}:{line_no}")


def _txt_line_document(line: str, default_id: str) -> Document:
    """`ID<TAB>text` keeps ID (no whitespace in it) as the document id; any other line is `FILENAME:LINE`."""
    match = _TXT_ID.match(line)
    if match:
        return Document(id=match.group(1), passages=[Passage("text", 0, line[match.end() :])])
    return Document(id=default_id, passages=[Passage("text", 0, line)])


def _utf8_message(path: Path, error: UnicodeDecodeError) -> str:
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                return (
                    f"{path}:{line_no}: not valid UTF-8 (byte {raw[bad.start]:#04x} at column {bad.start + 1}); "
                    "re-encode the file as UTF-8."
                )
    return f"{path}: not valid UTF-8 ({error}); re-encode the file as UTF-8."


# ---------------------------------------------------------------------------------------------------- records
def pipeline_input(doc: Document, detect: bool) -> dict:
    text = doc.text
    item = {"text": text, "passages": [(p.offset, p.end) for p in sorted(doc.passages, key=lambda p: p.offset)]}
    if doc.mentions and not detect:
        item["mentions"] = [{"start": m.start, "end": m.end, "type": m.type} for m in doc.mentions]
    return item


def to_record(index: int, doc: Document, linked: list[dict]) -> dict:
    """One output record; each linked mention keeps its `type` (given in the input, or found by the detector)."""
    return {
        "index": index,
        "id": doc.id,
        "passages": [[p.type, p.offset, p.text] for p in doc.passages],
        "mentions": linked,
        "relations": [[r.type, *r.args] for r in doc.relations],
        "meta": doc.meta,
    }


def error_record(index: int, doc_id: str | None, location: str, message: str) -> dict:
    """The work-file record of a bad input record (merged into OUT.errors.jsonl, not into the output)."""
    return {"index": index, "id": doc_id, "error": {"location": location, "message": message}}


def to_document(record: dict) -> Document:
    """A linked Document: each mention's `ids` is its predicted id (empty for NIL)."""
    mentions = [
        Mention(
            start=m["start"],
            end=m["end"],
            text=m["text"],
            type=m.get("type"),
            ids=(m["entity_id"],) if m["entity_id"] else (),
        )
        for m in record["mentions"]
    ]
    return Document(
        id=record["id"],
        passages=[Passage(t, o, x) for t, o, x in record["passages"]],
        mentions=mentions,
        relations=[Relation(r[0], tuple(r[1:])) for r in record["relations"]],
        meta=record["meta"],
    )


def format_record(record: dict, fmt: str) -> str:
    if fmt == "jsonl":
        out = {"id": record["id"], "text": to_document(record).text, "mentions": record["mentions"]}
        return json.dumps(out, ensure_ascii=False) + "\n"
    if fmt == "pubtator":
        from bel.data.pubtator import format_document

        doc = to_document(record)
        doc.meta.setdefault("pubtator_blank_lines_after", 1)
        return format_document(doc)
    raise ValueError(f"unknown output format {fmt!r}")


def _canonical_bytes(item: Document | InvalidRecord, detect: bool) -> bytes:
    """What the run reads of one input record (everything that reaches the output), as canonical JSON."""
    if isinstance(item, InvalidRecord):
        content: dict = {"invalid": dataclasses.asdict(item)}
    else:
        record = to_record(0, item, [])
        del record["index"], record["mentions"]
        content = {"record": record, "input": pipeline_input(item, detect)}
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.encode("utf-8") + b"\n"
