"""In-memory corpus representation shared by every reader and writer.

A :class:`Document` is a list of :class:`Passage` objects (title, abstract, ...) placed at character offsets of one
full text, plus the :class:`Mention` annotations on that text. Readers fill ``meta`` with format details (for example
PubTator blank-line layout) that writers need for byte-identical round trips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Mention:
    """One annotated span of ``Document.text``.

    ``ids`` are normalised gold ids (``MESH:D012345``, ``OMIM:123456``); ``()`` means NIL / not normalisable
    (PubTator ``-1``). ``composite`` marks mentions whose PubTator id field joins several ids with ``|`` or ``+``.
    ``raw_ids`` keeps the id field exactly as read, so writers reproduce it; ``extra`` keeps further PubTator
    columns verbatim (the BC5CDR individual-mention column). ``raw_text`` is set only when the file's mention text
    differed from the span by surrounding whitespace (one NCBI train line does); ``text`` is always the span text.
    """

    start: int
    end: int
    text: str
    type: str | None = None
    ids: tuple[str, ...] = ()
    composite: bool = False
    extra: tuple[str, ...] = ()
    raw_ids: str | None = None
    raw_text: str | None = None

    @property
    def span(self) -> tuple[int, int]:
        return (self.start, self.end)


@dataclass
class Passage:
    """A block of text (``title``, ``abstract``, ...) starting at ``offset`` in the document's full text."""

    type: str
    offset: int
    text: str

    @property
    def end(self) -> int:
        return self.offset + len(self.text)


@dataclass
class Relation:
    """A document-level relation line, e.g. BC5CDR ``PMID<TAB>CID<TAB>chemical<TAB>disease``; ``args`` verbatim."""

    type: str
    args: tuple[str, ...] = ()


@dataclass
class Document:
    """A document: passages at their offsets, mentions on the full text, optional relations and format metadata."""

    id: str
    passages: list[Passage] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """Full text: each passage at its offset, gaps filled with spaces (PubTator: title + " " + abstract)."""
        parts: list[str] = []
        cursor = 0
        for passage in sorted(self.passages, key=lambda p: p.offset):
            if passage.offset < cursor:
                raise ValueError(f"document {self.id}: passage at offset {passage.offset} overlaps the previous one")
            parts.append(" " * (passage.offset - cursor))
            parts.append(passage.text)
            cursor = passage.end
        return "".join(parts)

    def passage_of(self, mention: Mention) -> Passage | None:
        """The passage that contains ``mention`` entirely, or None."""
        for passage in self.passages:
            if passage.offset <= mention.start and mention.end <= passage.end:
                return passage
        return None


@dataclass(frozen=True)
class InvalidRecord:
    """A record a reader could not turn into a :class:`Document`, yielded in its place with ``errors="collect"``.

    ``location`` is ``path:line`` (or ``path`` when no line applies), ``message`` says what is wrong and how to fix it
    (it starts with the location), ``id`` is the document id when the reader got that far.
    """

    location: str
    message: str
    id: str | None = None
