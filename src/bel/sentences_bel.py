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
# A boundary is a run of `.!?`, closing quotes/brackets, whitespace, then what may start a sentence. The run and the
# rest are two patterns: as one (`[.!?]+[...]*\s+(?=...)`) every position inside a run of dots retried the run, so
# 20k dots took 20 s (quadratic). Only a whole run can precede the rest, so matching it once finds the same boundaries.
_PUNCTUATION_RUN = re.compile(r"[.!?]+")
_BOUNDARY_REST = re.compile(r"[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
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
    for run in _PUNCTUATION_RUN.finditer(text, start, end):
        rest = _BOUNDARY_REST.match(text, run.end(), end)
        if rest is None or (text[run.start()] == "." and _ends_abbreviation(text, run.start() + 1)):
            continue
        spans.append((begin, run.start() + len(text[run.start() : rest.end()].rstrip())))
        begin = rest.end()
    spans.append((begin, end))
    return [span for span in (_strip(text, s, e) for s, e in spans) if span is not None]


def sentence_spans(text: str, mentions: Sequence[Span] = (), start: int = 0, end: int | None = None) -> list[Span]:
    """Sentences of `text[start:end]`, merged so that no mention of `mentions` crosses a sentence boundary."""
    spans = raw_sentence_spans(text, start, end)
    if not spans or not mentions:
        return spans
    starts = [s for s, _ in spans]
    # crossings[i]: how many mentions glue sentence i to sentence i - 1, as a difference array (+1 at the first glued
    # sentence, -1 after the last), so a mention over many sentences costs no more than one over two
    crossings = [0] * (len(spans) + 1)
    for mention_start, mention_end in mentions:
        first = max(bisect.bisect_right(starts, mention_start) - 1, 0)
        last = bisect.bisect_left(starts, mention_end) - 1
        if last > first:
            crossings[first + 1] += 1
            crossings[last + 1] -= 1
    merged: list[list[int]] = []
    open_mentions = 0
    for (s, e), change in zip(spans, crossings, strict=False):
        open_mentions += change
        if open_mentions > 0 and merged:
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
        at = bisect.bisect_left(ordered, (passage_start, passage_start))
        inside = []
        while at < len(ordered) and ordered[at][0] < passage_end:  # no slice of the rest: linear in the passages
            if ordered[at][1] <= passage_end:
                inside.append(ordered[at])
            at += 1
        sentences.extend(sentence_spans(text, inside, passage_start, passage_end))
    return sentences


def _strip(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


__all__ = ["document_sentences", "raw_sentence_spans", "sentence_spans"]
