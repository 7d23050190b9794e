"""Dictionary mention detection (Hub-portable core file): longest case-insensitive match of KB names.

The fallback detector of the entity-linking pipeline when no spans are given. Only the standard library is imported,
so the file ships inside a checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

Span = tuple[int, int]
_TOKEN = re.compile(r"\w+|[^\w\s]")
_FUNCTION_WORDS = (
    "a an and are as at be but by can did do for from had has have he her his i if in into is it its may "
    "no not of on or our she so that the their them then there these they this to up was we were which "
    "who will with you"
)


class MentionMatcher:
    """Longest-match, case-insensitive dictionary matcher over word tokens (a token trie; standard library only).

    Tokens are runs of word characters or single punctuation marks, so matches always start and end at word
    boundaries. Overlaps are resolved left to right, longest match first. Short all-capital names (abbreviations
    such as `AN` or `IS`, up to `acronym_length` characters) match only with the same case, and single-word names that
    are common English function words match only as such abbreviations.

    >>> matcher = MentionMatcher(["breast cancer", "cancer", "Fever", "IS"])
    >>> matcher.find("Breast cancer is a fever.")
    [(0, 13), (19, 24)]
    """

    _END = ""
    STOPWORDS = frozenset(_FUNCTION_WORDS.split())

    def __init__(self, names: Iterable[str], min_length: int = 2, acronym_length: int = 5) -> None:
        self.root: dict = {}
        for name in names:
            name = name.strip()
            tokens = _TOKEN.findall(name.casefold())
            acronym = len(name) <= acronym_length and name.isupper()
            if (
                not tokens
                or len(name) < min_length
                or (len(tokens) == 1 and tokens[0] in self.STOPWORDS and not acronym)
            ):
                continue
            node = self.root
            for token in tokens:
                node = node.setdefault(token, {})
            if acronym:
                if node.get(self._END) is not True:
                    node.setdefault(self._END, set()).add(name)
            else:
                node[self._END] = True

    def find(self, text: str) -> list[Span]:
        """Character spans of the longest non-overlapping matches in `text`, left to right."""
        tokens = [(m.start(), m.end(), m.group().casefold()) for m in _TOKEN.finditer(text)]
        spans, i = [], 0
        while i < len(tokens):
            node, j, best = self.root, i, -1
            while j < len(tokens) and tokens[j][2] in node:
                node = node[tokens[j][2]]
                j += 1
                end = node.get(self._END)
                if end is True or (end and text[tokens[i][0] : tokens[j - 1][1]] in end):
                    best = j
            if best > i:
                spans.append((tokens[i][0], tokens[best - 1][1]))
                i = best
            else:
                i += 1
        return spans


__all__ = ["MentionMatcher"]
