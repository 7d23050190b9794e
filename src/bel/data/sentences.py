"""Sentence splitting with pysbd that never cuts a mention and returns spans in document coordinates."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from bel.data.document import Document


@functools.lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


@functools.lru_cache(maxsize=8192)
def _raw_sentence_starts(text: str) -> tuple[int, ...]:
    """Start offsets of pysbd's sentences, recovered by searching each sentence in order (cached: pysbd is slow)."""
    starts: list[int] = []
    cursor = 0
    for sentence in _segmenter().segment(text):
        stripped = sentence.strip()
        if not stripped:
            continue
        found = text.find(stripped, cursor)
        if found < 0:  # pysbd altered the text: keep the rest as part of the previous sentence
            break
        starts.append(found)
        cursor = found + len(stripped)
    return tuple(starts)


def _strip(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def sentence_spans(text: str, mentions: Sequence[tuple[int, int]] = (), offset: int = 0) -> list[tuple[int, int]]:
    """Sentence ``(start, end)`` spans of ``text`` shifted by ``offset``.

    ``mentions`` are spans in the same coordinates as the result (i.e. already including ``offset``); sentences that
    would cut a mention are merged. Spans cover all non-whitespace content and start/end on non-whitespace.
    """
    if not text.strip():
        return []
    starts = [0, *_raw_sentence_starts(text)[1:]]
    bounds = [*starts[1:], len(text)]
    spans = [s for s in (_strip(text, a, b) for a, b in zip(starts, bounds, strict=True)) if s is not None]
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and any(m_start - offset < start and m_end - offset > merged[-1][1] for m_start, m_end in mentions):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [(start + offset, end + offset) for start, end in merged]


def document_sentences(doc: Document) -> list[tuple[int, int]]:
    """Sentence spans of every passage (in document coordinates); sentences never cross passages."""
    spans: list[tuple[int, int]] = []
    for passage in sorted(doc.passages, key=lambda p: p.offset):
        inside = [(m.start, m.end) for m in doc.mentions if passage.offset <= m.start and m.end <= passage.end]
        spans.extend(sentence_spans(passage.text, inside, offset=passage.offset))
    return spans
