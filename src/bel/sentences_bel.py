"""Sentence splitting for linking inputs (Hub-portable core file): the one splitter training and serving share.

A sentence ends after `.`, `!` or `?` followed by whitespace and an upper-case letter, a digit or an opening
bracket/quote, except after common abbreviations (`e.g.`, `et al.`, `Fig.`, `Dr.`, ...).
Sentences never cut a given mention (those that would are merged) and never cross a passage boundary. Spans index the
original text, start and end on non-whitespace, and the whole pass is linear in the text length.

Only the standard library is imported, so the file ships inside a checkpoint.

Example::

    >>> sentence_spans("Fever was seen. Then a rash (e.g. on the arm). BRCA1 carriers.")
    [(0, 15), (16, 46), (47, 62)]
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

Span = tuple[int, int]
_BOUNDARY = re.compile(r"[.!?]+[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_LAST_WORD = re.compile(r"(\S+)$")
_ABBREVIATION_LIST = (
    "e.g. i.e. cf. vs. viz. al. etc. approx. ca. fig. figs. tab. ref. refs. no. nos. vol. dr. mr. mrs. ms. prof. "
    "st. inc. ltd. co. jr. sr. sp. spp. var. ed. eds. eq. min. max. resp. dept. univ. jan. feb. mar. apr. jun. jul. "
    "aug. sep. sept. oct. nov. dec."
)
_ABBREVIATIONS = frozenset(_ABBREVIATION_LIST.split(" "))


def _ends_abbreviation(text: str, punctuation_end: int) -> bool:
    """Whether the word that ends at `punctuation_end` (its final `.` included) is a common abbreviation.

    Single letters are not taken as initials: "hepatitis B. Patients ..." ends a sentence far more often in
    biomedical text than "J. Smith" continues one.
    """
    match = _LAST_WORD.search(text, max(0, punctuation_end - 20), punctuation_end)
    if match is None:
        return False
    word = match.group(1).lstrip("([\"'").lower()
    return word in _ABBREVIATIONS


def raw_sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentences of `text[start:end]` by the boundary rule alone, stripped of surrounding whitespace."""
    end = len(text) if end is None else end
    spans, begin = [], start
    for match in _BOUNDARY.finditer(text, start, end):
        stop = match.start() + len(match.group().rstrip())
        if text[match.start()] == "." and _ends_abbreviation(text, match.start() + 1):
            continue
        spans.append((begin, stop))
        begin = match.end()
    spans.append((begin, end))
    return [span for span in (_strip(text, s, e) for s, e in spans) if span is not None]


def sentence_spans(text: str, mentions: Sequence[Span] = (), start: int = 0, end: int | None = None) -> list[Span]:
    """Sentences of `text[start:end]`, merged so that no mention of `mentions` crosses a sentence boundary."""
    spans = raw_sentence_spans(text, start, end)
    if not spans or not mentions:
        return spans
    starts = [s for s, _ in spans]
    glued = [False] * len(spans)  # glued[i]: sentence i continues sentence i - 1
    for mention_start, mention_end in mentions:
        first = max(bisect.bisect_right(starts, mention_start) - 1, 0)
        last = bisect.bisect_left(starts, mention_end) - 1
        for i in range(first + 1, last + 1):
            glued[i] = True
    merged: list[list[int]] = []
    for (s, e), glue in zip(spans, glued, strict=True):
        if glue and merged:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def document_sentences(text: str, mentions: Sequence[Span], passages: Sequence[Span] | None = None) -> list[Span]:
    """Sentences of every passage (the whole text when `passages` is empty), in text order, never crossing a passage.

    Each passage is split with the mentions that lie inside it, so a mention never straddles two sentences.
    """
    passages = sorted(passages) if passages else [(0, len(text))]
    ordered = sorted(mentions)
    sentences: list[Span] = []
    for passage_start, passage_end in passages:
        low = bisect.bisect_left(ordered, (passage_start, passage_start))
        inside = []
        for mention in ordered[low:]:
            if mention[0] >= passage_end:
                break
            if mention[1] <= passage_end:
                inside.append(mention)
        sentences.extend(sentence_spans(text, inside, passage_start, passage_end))
    return sentences


def _strip(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


__all__ = ["document_sentences", "raw_sentence_spans", "sentence_spans"]
