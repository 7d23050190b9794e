"""PubTator reader and writer (NCBI Disease and BC5CDR flavours).

Format::

    PMID|t|title
    PMID|a|abstract
    PMID<TAB>start<TAB>end<TAB>text<TAB>type<TAB>ids[<TAB>extra...]
    PMID<TAB>CID<TAB>chemical<TAB>disease          (BC5CDR relation lines)

Ids joined by ``|`` or ``+`` make a composite mention; ``-1`` means not normalisable (``ids=()``). The raw id field,
extra columns, relation lines and blank-line layout are kept, so ``write_pubtator(read_pubtator(p))`` reproduces the
file byte for byte.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from bel.data.document import Document, Mention, Passage, Relation
from bel.kb import normalize_id

_PASSAGE_LINE = re.compile(r"^([^|\t]+)\|([a-z])\|(.*)$", re.DOTALL)
_PASSAGE_TYPES = {"t": "title", "a": "abstract"}
_PASSAGE_CODES = {v: k for k, v in _PASSAGE_TYPES.items()}


class PubTatorFormatError(ValueError):
    """A malformed PubTator line; the message names the file and the 1-based line number."""


def parse_id_field(raw: str) -> tuple[tuple[str, ...], bool]:
    """Split a PubTator id field into normalised ids and a composite flag (``-1`` / empty -> ``()``)."""
    raw = raw.strip()
    if raw in ("", "-1"):
        return (), False
    parts = [p for p in re.split(r"[|+]", raw) if p.strip() and p.strip() != "-1"]
    ids = tuple(dict.fromkeys(normalize_id(p) for p in parts))
    return ids, len(parts) > 1


def _is_int(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


def _format_id(entity_id: str) -> str:
    return entity_id[5:] if entity_id.startswith("MESH:") else entity_id


class _DocumentBuilder:
    def __init__(self, doc_id: str, blank_before: int) -> None:
        self.doc = Document(id=doc_id, meta={"pubtator_blank_lines_before": blank_before})
        self.pending: list[tuple[Mention, int]] = []
        self.cursor = 0

    def add_passage(self, code: str, text: str) -> None:
        offset = self.cursor + (1 if self.doc.passages else 0)
        self.doc.passages.append(Passage(type=_PASSAGE_TYPES.get(code, code), offset=offset, text=text))
        self.cursor = offset + len(text)

    def finish(self, source: str, blank_after: int) -> Document:
        text = self.doc.text
        for mention, line_no in self.pending:
            found = text[mention.start : mention.end] if 0 <= mention.start <= mention.end <= len(text) else None
            if found is not None and found != mention.text and found.strip() == mention.text.strip():
                mention.raw_text, mention.text = mention.text, found
            if found != mention.text:
                raise PubTatorFormatError(
                    f"{source}:{line_no}: mention {mention.text!r} does not match the text at "
                    f"{mention.start}-{mention.end} ({found!r})"
                )
            self.doc.mentions.append(mention)
        self.doc.meta["pubtator_blank_lines_after"] = blank_after
        return self.doc


def _parse_mention(fields: list[str], source: str, line_no: int) -> Mention:
    try:
        start, end = int(fields[1]), int(fields[2])
    except ValueError:
        raise PubTatorFormatError(f"{source}:{line_no}: start/end offsets are not integers: {fields[1:3]}") from None
    if len(fields) < 4:
        raise PubTatorFormatError(f"{source}:{line_no}: mention line needs at least 4 tab-separated columns")
    mention_type = fields[4] if len(fields) > 4 else None
    raw_ids = fields[5] if len(fields) > 5 else None
    ids, composite = parse_id_field(raw_ids) if raw_ids is not None else ((), False)
    return Mention(
        start=start,
        end=end,
        text=fields[3],
        type=mention_type,
        ids=ids,
        composite=composite,
        extra=tuple(fields[6:]),
        raw_ids=raw_ids,
    )


def iter_pubtator(path: str | os.PathLike) -> Iterator[Document]:
    """Stream the documents of a PubTator file; raises :class:`PubTatorFormatError` on malformed lines."""
    source = str(path)
    builder: _DocumentBuilder | None = None
    blank_run = 0
    with open(path, encoding="utf-8", newline="") as handle:
        for line_no, raw_line in enumerate(handle, start=1):
            line = raw_line[:-1] if raw_line.endswith("\n") else raw_line
            if not line.strip():
                blank_run += 1
                continue
            passage = _PASSAGE_LINE.match(line) if "\t" not in line.split("|", 1)[0] else None
            if passage:
                doc_id, code, text = passage.groups()
                if builder is None or (code == "t" and builder.doc.passages) or doc_id != builder.doc.id:
                    if builder is not None:
                        yield builder.finish(source, blank_run)
                        blank_run = 0
                    builder = _DocumentBuilder(doc_id, blank_run)
                    blank_run = 0
                elif blank_run:
                    raise PubTatorFormatError(f"{source}:{line_no}: blank line inside document {doc_id}")
                builder.add_passage(code, text)
                continue
            fields = line.split("\t")
            if len(fields) < 3:
                raise PubTatorFormatError(
                    f"{source}:{line_no}: neither a passage line nor an annotation line: {line!r}"
                )
            if builder is None or fields[0] != builder.doc.id or blank_run:
                raise PubTatorFormatError(
                    f"{source}:{line_no}: annotation for document {fields[0]!r} outside that document's block"
                )
            if not _is_int(fields[1]) and not _is_int(fields[2]):
                builder.doc.relations.append(Relation(type=fields[1], args=tuple(fields[2:])))
            else:
                builder.pending.append((_parse_mention(fields, source, line_no), line_no))
    if builder is not None:
        yield builder.finish(source, blank_run)


def read_pubtator(path: str | os.PathLike) -> list[Document]:
    """Read every document of a PubTator file."""
    return list(iter_pubtator(path))


def _mention_line(doc_id: str, mention: Mention) -> str:
    fields = [doc_id, str(mention.start), str(mention.end), mention.raw_text or mention.text]
    raw_ids = mention.raw_ids
    if raw_ids is None and (mention.ids or mention.type is not None):
        raw_ids = "|".join(_format_id(i) for i in mention.ids) if mention.ids else "-1"
    if mention.type is not None or raw_ids is not None:
        fields.append(mention.type or "")
    if raw_ids is not None:
        fields.append(raw_ids)
        fields.extend(mention.extra)
    return "\t".join(fields)


def format_document(doc: Document) -> str:
    """One document in PubTator form, including the blank-line layout recorded by the reader."""
    lines = ["\n" * doc.meta.get("pubtator_blank_lines_before", 0)]
    passages = sorted(doc.passages, key=lambda p: p.offset)
    for index, passage in enumerate(passages):
        code = _PASSAGE_CODES.get(passage.type, "t" if index == 0 else "a")
        lines.append(f"{doc.id}|{code}|{passage.text}\n")
    lines.extend(_mention_line(doc.id, m) + "\n" for m in doc.mentions)
    lines.extend("\t".join((doc.id, r.type, *r.args)) + "\n" for r in doc.relations)
    lines.append("\n" * doc.meta.get("pubtator_blank_lines_after", 1))
    return "".join(lines)


def write_pubtator(docs: Iterable[Document], path: str | os.PathLike) -> None:
    """Write documents as PubTator; documents from another format get one blank line after each."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        for doc in docs:
            handle.write(format_document(doc))
