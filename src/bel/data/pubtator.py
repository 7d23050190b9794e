"""PubTator reader and writer (NCBI Disease, BC5CDR, BioRED and PubTator Central flavours).

Format::

    PMID|t|title
    PMID|a|abstract
    PMID<TAB>start<TAB>end<TAB>text<TAB>type<TAB>ids[<TAB>extra...]
    PMID<TAB>CID<TAB>chemical<TAB>disease          (relation lines: a word, then ids of any kind)

A line whose second column is an integer is a mention. One whose second column is a word (a letter, then at least one
more letter, digit, ``_`` or ``-``: ``CID``, ``Association``, ``Positive_Correlation``) is a relation, whatever its
ids look like (``1234``, ``D001``, ``-``); a single letter there is taken as a mistyped offset and reported. Ids joined
by ``,`` ``;`` ``|`` or ``+`` make a composite mention; ``-``, ``-1`` or an empty field mean not normalisable
(``ids=()``). The raw id field, extra columns, relation lines, blank-line layout, line ends (LF or CRLF) and a UTF-8
byte-order mark are kept, so ``write_pubtator(read_pubtator(p))`` reproduces the file byte for byte.

``iter_pubtator(path, errors="collect")`` yields an :class:`~bel.data.document.InvalidRecord` in place of each
document block that has a malformed line, then carries on with the next document.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from bel.data.document import Document, InvalidRecord, Mention, Passage, Relation
from bel.kb import normalize_id

_PASSAGE_LINE = re.compile(r"^([^|\t]+)\|([a-z])\|(.*)$", re.DOTALL)
_PASSAGE_TYPES = {"t": "title", "a": "abstract"}
_PASSAGE_CODES = {v: k for k, v in _PASSAGE_TYPES.items()}
_RELATION_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]+$")
_ID_SEPARATORS = re.compile(r"[,;|+]")
_NO_ID = ("", "-", "-1")
_BOM = "\ufeff"
ERROR_MODES = ("raise", "collect")


class PubTatorFormatError(ValueError):
    """A malformed PubTator line; the message names the file, the 1-based line number and the document."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def parse_id_field(raw: str) -> tuple[tuple[str, ...], bool]:
    """Split an id field into normalised ids and a composite flag.

    ``-``, ``-1`` and empty mean no id (``()``); ``,`` ``;`` ``|`` ``+`` separate the ids of a composite mention.
    """
    parts = [p.strip() for p in _ID_SEPARATORS.split(raw)]
    parts = [p for p in parts if p not in _NO_ID]
    ids = tuple(dict.fromkeys(normalize_id(p) for p in parts))
    return ids, len(parts) > 1


def check_errors_mode(errors: str) -> None:
    """Refuse an ``errors=`` value other than ``"raise"`` or ``"collect"``."""
    if errors not in ERROR_MODES:
        raise ValueError(f"errors={errors!r}: use 'raise' (stop at the first bad record) or 'collect'")


def _is_int(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


def _is_relation(fields: list[str]) -> bool:
    # A mention's second column is its start offset; a relation's is its type, a word (CID, Association, ...).
    # A single letter is taken as a mistyped offset, so that it is reported instead of kept as a relation.
    if _is_int(fields[1]):
        return False
    return bool(_RELATION_TYPE.match(fields[1])) or not _is_int(fields[2])


def _format_id(entity_id: str) -> str:
    return entity_id[5:] if entity_id.startswith("MESH:") else entity_id


def _split_line_end(raw_line: str) -> tuple[str, str]:
    for ending in ("\r\n", "\n"):
        if raw_line.endswith(ending):
            return raw_line[: -len(ending)], ending
    return raw_line, ""


class _DocumentBuilder:
    def __init__(self, doc_id: str, source: str, blank_before: int, newline: str) -> None:
        self.doc = Document(id=doc_id, meta={"pubtator_blank_lines_before": blank_before})
        if newline == "\r\n":
            self.doc.meta["pubtator_newline"] = newline
        self.source = source
        self.pending: list[tuple[Mention, int]] = []
        self.cursor = 0

    def where(self, line_no: int) -> str:
        return f"{self.source}:{line_no}: document {self.doc.id}"

    def add_passage(self, code: str, text: str) -> None:
        offset = self.cursor + (1 if self.doc.passages else 0)
        self.doc.passages.append(Passage(type=_PASSAGE_TYPES.get(code, code), offset=offset, text=text))
        self.cursor = offset + len(text)

    def finish(self, blank_after: int) -> Document:
        text = self.doc.text
        for mention, line_no in self.pending:
            found = text[mention.start : mention.end] if mention.end <= len(text) else None
            if found is not None and found != mention.text and found.strip() == mention.text.strip():
                mention.raw_text, mention.text = mention.text, found
            if found != mention.text:
                raise PubTatorFormatError(
                    f"{self.where(line_no)}: mention {mention.text!r} does not match the text at "
                    f"{mention.start}-{mention.end} ({found!r}); check the offsets (the abstract starts one "
                    "character after the title)",
                    line=line_no,
                )
            self.doc.mentions.append(mention)
        self.doc.meta["pubtator_blank_lines_after"] = blank_after
        return self.doc


def _parse_mention(fields: list[str], where: str) -> Mention:
    try:
        start, end = int(fields[1]), int(fields[2])
    except ValueError:
        raise PubTatorFormatError(f"{where}: start/end offsets are not integers: {fields[1:3]}") from None
    if len(fields) < 4:
        raise PubTatorFormatError(f"{where}: mention line needs at least 4 tab-separated columns")
    if start < 0 or end <= start:
        kind = "zero-length" if end == start else "reversed" if end < start else "negative"
        raise PubTatorFormatError(
            f"{where}: {kind} mention span {start}-{end} ({fields[3]!r}); a mention needs 0 <= start < end"
        )
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


class _Reader:
    """Line-by-line state of one PubTator file; ``feed`` returns the documents (or invalid records) it completes."""

    def __init__(self, source: str, collect: bool) -> None:
        self.source = source
        self.collect = collect
        self.builder: _DocumentBuilder | None = None
        self.failed: InvalidRecord | None = None  # the current block is bad: skip its lines
        self.blank_run = 0
        self.bom = False  # the file starts with a byte-order mark: the first document keeps it for the writer

    def fail(self, error: PubTatorFormatError, line_no: int) -> None:
        if not self.collect:
            raise error
        if self.failed is None:
            doc_id = self.builder.doc.id if self.builder is not None else None
            self.failed = InvalidRecord(location=f"{self.source}:{line_no}", message=str(error), id=doc_id)

    def close(self) -> Document | InvalidRecord | None:
        """The finished current block (a document or its invalid record); resets the blank-line count."""
        done: Document | InvalidRecord | None = None
        if self.failed is not None:
            done = self.failed
        elif self.builder is not None:
            try:
                done = self.builder.finish(self.blank_run)
            except PubTatorFormatError as error:
                if not self.collect:
                    raise
                location = f"{self.source}:{error.line}"
                done = InvalidRecord(location=location, message=str(error), id=self.builder.doc.id)
        self.builder, self.failed = None, None
        self.blank_run = 0
        return done

    def feed(self, line_no: int, line: str, newline: str) -> Document | InvalidRecord | None:
        if not line.strip():
            self.blank_run += 1
            return None
        passage = _PASSAGE_LINE.match(line) if "\t" not in line.split("|", 1)[0] else None
        if passage:
            return self._passage(line_no, *passage.groups(), newline)
        if self.failed is None:
            try:
                self._annotation(line_no, line)
            except PubTatorFormatError as error:
                self.fail(error, line_no)
        return None

    def _passage(
        self, line_no: int, doc_id: str, code: str, text: str, newline: str
    ) -> Document | InvalidRecord | None:
        builder = self.builder
        done = None
        if builder is None or (code == "t" and builder.doc.passages) or doc_id != builder.doc.id:
            blank_before = self.blank_run
            if builder is not None or self.failed is not None:
                done = self.close()
                blank_before = 0
            self.builder = _DocumentBuilder(doc_id, self.source, blank_before, newline)
            if self.bom:
                self.builder.doc.meta["pubtator_bom"], self.bom = True, False
            self.blank_run = 0
        elif self.blank_run and self.failed is None:
            self.fail(PubTatorFormatError(f"{builder.where(line_no)}: blank line inside the document"), line_no)
        if self.failed is None:
            self.builder.add_passage(code, text)
        return done

    def _annotation(self, line_no: int, line: str) -> None:
        fields = line.split("\t")
        builder = self.builder
        if len(fields) < 3:
            where = builder.where(line_no) if builder is not None else f"{self.source}:{line_no}"
            raise PubTatorFormatError(f"{where}: neither a passage line nor an annotation line: {line!r}")
        if builder is None or fields[0] != builder.doc.id or self.blank_run:
            raise PubTatorFormatError(
                f"{self.source}:{line_no}: annotation for document {fields[0]!r} outside that document's block "
                "(annotations follow their document's title and abstract lines, with no blank line between)"
            )
        if _is_relation(fields):
            builder.doc.relations.append(Relation(type=fields[1], args=tuple(fields[2:])))
        else:
            builder.pending.append((_parse_mention(fields, builder.where(line_no)), line_no))


def iter_pubtator(path: str | os.PathLike, errors: str = "raise") -> Iterator[Document | InvalidRecord]:
    """Stream the documents of a PubTator file.

    ``errors="raise"`` (default) raises :class:`PubTatorFormatError` at the first malformed line; ``"collect"`` yields
    an :class:`InvalidRecord` in place of the document block holding it and goes on with the next document.
    """
    check_errors_mode(errors)
    reader = _Reader(str(path), collect=errors == "collect")
    with open(path, "rb") as handle:  # lines are decoded one by one so that bad UTF-8 is reported by line
        for line_no, raw_bytes in enumerate(handle, start=1):
            raw_line, decode_error = _decode(raw_bytes, f"{path}:{line_no}")
            if decode_error is not None and errors == "raise":
                raise decode_error
            if line_no == 1 and raw_line.startswith(_BOM):
                raw_line = raw_line[1:]
                reader.bom = True
            line, newline = _split_line_end(raw_line)
            done = reader.feed(line_no, line, newline)
            if decode_error is not None:
                reader.fail(decode_error, line_no)  # the block that holds the line (fed with replacements)
            if done is not None:
                yield done
    done = reader.close()
    if done is not None:
        yield done


def _decode(raw: bytes, where: str) -> tuple[str, PubTatorFormatError | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as error:
        message = (
            f"{where}: not valid UTF-8 (byte {raw[error.start]:#04x} at column {error.start + 1}); "
            "re-encode the file as UTF-8"
        )
        return raw.decode("utf-8", errors="replace"), PubTatorFormatError(message)


def read_pubtator(path: str | os.PathLike, errors: str = "raise") -> list[Document | InvalidRecord]:
    """Read every document of a PubTator file (``errors`` as in :func:`iter_pubtator`)."""
    return list(iter_pubtator(path, errors=errors))


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
    """One document in PubTator form, with the blank-line layout, line ends and byte-order mark the reader recorded."""
    newline = doc.meta.get("pubtator_newline", "\n")
    lines = [newline * doc.meta.get("pubtator_blank_lines_before", 0)]
    passages = sorted(doc.passages, key=lambda p: p.offset)
    for index, passage in enumerate(passages):
        code = _PASSAGE_CODES.get(passage.type, "t" if index == 0 else "a")
        lines.append(f"{doc.id}|{code}|{passage.text}{newline}")
    lines.extend(_mention_line(doc.id, m) + newline for m in doc.mentions)
    lines.extend("\t".join((doc.id, r.type, *r.args)) + newline for r in doc.relations)
    lines.append(newline * doc.meta.get("pubtator_blank_lines_after", 1))
    return (_BOM if doc.meta.get("pubtator_bom") else "") + "".join(lines)


def write_pubtator(docs: Iterable[Document], path: str | os.PathLike) -> None:
    """Write documents as PubTator; documents from another format get one blank line after each."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        for doc in docs:
            handle.write(format_document(doc))
