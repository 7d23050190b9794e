"""Document-defined abbreviations for retrieval queries (Hub-portable core file).

Schwartz & Hearst (2003), "A simple algorithm for identifying abbreviation definitions in biomedical text": the
standard definition finder behind BioSyn/SapBERT-style normalisation (which use its C++ cousin Ab3P). Written here
because the portable core may import only the standard library, torch, transformers, numpy and scipy.
[`find_abbreviations`] finds a document's definitions, [`ShortForms`] expands a mention's short forms with them.
"""

from __future__ import annotations

import re

_PARENTHESIS = re.compile(r"\(([^()]{1,100})\)")
_CLAUSE_END = re.compile(r"[.;:!?]\s|\n")
_WORD_START = re.compile(r"\w")
_WORD_BOUNDARY_START = re.compile(r"(?<!\w)\w")
_LOOK_BACK = 400  # characters before "(" searched for a long form: far more than the 15 words it may span


def _is_short_form(text: str) -> bool:
    # an upper-case letter keeps ordinary words ("the (tumour environment)") from being taken as short forms
    return 2 <= len(text) <= 10 and len(text.split()) <= 2 and text[0].isalnum() and any(c.isupper() for c in text)


def _best_long_form(short: str, long: str) -> str | None:
    """The shortest end of ``long`` containing ``short``'s characters in order, its first one word-initially."""
    s, at = len(short) - 1, len(long) - 1
    while s >= 0:
        char = short[s].lower()
        if not char.isalnum():
            s -= 1
            continue
        while at >= 0 and (long[at].lower() != char or (s == 0 and at > 0 and long[at - 1].isalnum())):
            at -= 1
        if at < 0:
            return None
        at, s = at - 1, s - 1
    return long[long.rfind(" ", 0, at + 1) + 1 :]


def _initials_long_form(short: str, words: list[str]) -> str | None:
    """The last ``len(short)`` words when their initials are ``short``'s letters in any order ("myotonic dystrophy
    (DM)", from the Latin "dystrophia myotonica"), the case Schwartz & Hearst's in-order match misses."""
    letters = sorted(short.lower())
    if not short.isalpha() or len(words) < len(letters):
        return None
    window = words[-len(letters) :]
    return " ".join(window) if sorted(w[0].lower() for w in window) == letters else None


def find_abbreviations(text: str) -> dict[str, str]:
    """Short forms defined in ``text`` as ``long form (SF)`` (or ``SF (long form)``), mapped to their long form.

    The first definition of a short form wins. Example::

        >>> find_abbreviations("Myotonic dystrophy (DM) is common. DM patients ...")
        {'DM': 'Myotonic dystrophy'}
    """
    found: dict[str, str] = {}
    for match in _PARENTHESIS.finditer(text):
        inner = re.split(r"[;,]\s", match.group(1))[0].strip()
        # only the last few words before "(" can be a long form: look back a bounded window, so the pass stays
        # linear in the text length (splitting all preceding text made a 400 kB document take 22 s)
        clause = _CLAUSE_END.split(text[max(0, match.start() - _LOOK_BACK) : match.start()])[-1].strip()
        words = clause.split()
        if not words or not inner:
            continue
        if _is_short_form(inner):
            short, window = inner, words[-min(len(inner) + 5, 2 * len(inner)) :]
            long = _best_long_form(short, " ".join(window)) or _initials_long_form(short, words)
        elif len(inner.split()) >= 2 and _is_short_form(words[-1]):  # "SF (long form)"
            short, long = words[-1], _best_long_form(words[-1], inner)
        else:
            continue
        if long and len(long) > len(short) and short.lower() not in long.lower().split():
            found.setdefault(short, long.strip())
    return found


def expand_abbreviations(mention: str, abbreviations: dict[str, str]) -> str:
    """``mention`` with each defined short form (or its plural) replaced by its long form, for retrieval queries.

    A short form in parentheses after its long form (``"Myotonic dystrophy (DM)"``) is dropped instead. To expand many
    mentions of one document, build :class:`ShortForms` once and call its ``expand``.
    """
    return ShortForms(abbreviations).expand(mention) if abbreviations else mention


class ShortForms:
    """A document's short forms, indexed so that expanding a mention costs time in the mention's length only.

    Matching every mention against one alternation of all the document's short forms cost time in (mentions x short
    forms): quadratic in a long document. A short form that starts with a word character can only match where a word
    starts, so each word start of the mention is looked up, once per short-form length, longest first: the result of
    the alternation, without compiling a pattern per mention.
    """

    def __init__(self, abbreviations: dict[str, str]) -> None:
        self.abbreviations = abbreviations
        self._lengths = sorted({len(short) for short in abbreviations if _WORD_START.match(short)})
        self._anywhere = [short for short in abbreviations if not _WORD_START.match(short)]  # never from find_...

    def expand(self, mention: str) -> str:
        """See :func:`expand_abbreviations`."""
        if not self.abbreviations:
            return mention

        def drop(match: re.Match) -> str:
            return "" if match.group(1).strip() in self.abbreviations else match.group(0)

        stripped = re.sub(r"\s*" + _PARENTHESIS.pattern, drop, mention).strip() or mention
        if self._anywhere:  # short forms not starting with a word character: the plain alternation
            short_forms = "|".join(re.escape(short) for short in sorted(self.abbreviations, key=len, reverse=True))
            return re.sub(rf"(?<!\w)({short_forms})s?(?!\w)", lambda m: self.abbreviations[m.group(1)], stripped)
        return self._replace(stripped)

    def _replace(self, text: str) -> str:
        r"""``re.sub(r"(?<!\w)(SF1|SF2|...)s?(?!\w)", long form, text)`` with the alternation longest first, done by
        looking up the substrings at each word start (no pattern to compile per mention)."""
        pieces, last = [], 0
        for word in _WORD_BOUNDARY_START.finditer(text):
            at = word.start()
            if at < last:
                continue
            for length in reversed(self._lengths):  # longest first, as the alternation tries them
                short = text[at : at + length]
                if len(short) < length or short not in self.abbreviations:
                    continue
                end = at + length
                if text.startswith("s", end) and not _WORD_START.match(text, end + 1):
                    end += 1  # plural
                elif _WORD_START.match(text, end):
                    continue
                pieces += [text[last:at], self.abbreviations[short]]
                last = end
                break
        return "".join(pieces) + text[last:]


__all__ = ["ShortForms", "expand_abbreviations", "find_abbreviations"]
