"""Dictionary mention detection (Hub-portable core file): longest case-insensitive match of KB names.

The fallback detector of the entity-linking pipeline when no spans are given. Only the standard library is imported,
so the file ships inside a checkpoint.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable

Span = tuple[int, int]
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD_CHAR = re.compile(r"\w")
_ABSENT_CACHE = 100_000
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

    Building is cheap: the names are only casefolded and sorted; the branch of the trie under a first token is built
    the first time that token occurs in a text (a MeSH-sized trie costs seconds, most of which no text ever visits).

    >>> matcher = MentionMatcher(["breast cancer", "cancer", "Fever", "IS"])
    >>> matcher.find("Breast cancer is a fever.")
    [(0, 13), (19, 24)]
    """

    _END = ""
    STOPWORDS = frozenset(_FUNCTION_WORDS.split())

    def __init__(self, names: Iterable[str], min_length: int = 2, acronym_length: int = 5) -> None:
        self.min_length, self.acronym_length = min_length, acronym_length
        stripped = [name.strip() for name in names]
        folded = [name.casefold() for name in stripped]
        order = sorted(range(len(folded)), key=folded.__getitem__)
        self._folded = [folded[i] for i in order]  # sorted: the names starting with a token are a few ranges
        self._names = [stripped[i] for i in order]
        self.root: dict[str, dict] = {}  # first token -> its branch of the trie, filled in on first use
        self._absent: set[str] = set()  # tokens no name starts with

    def _branch(self, token: str) -> dict | None:
        """The trie below first token `token`, built on first use; None when no name starts with `token`."""
        node = self.root.get(token)
        if node is None and token not in self._absent:
            found = self._starting_with(token)
            if not found:
                if len(self._absent) >= _ABSENT_CACHE:  # bounded: a week of PubMed has millions of distinct tokens
                    self._absent.clear()
                self._absent.add(token)
                return None
            node = self.root[token] = {}
            for index in found:
                self._insert(node, self._names[index], self._folded[index], token)
        return node

    def _starting_with(self, token: str) -> list[int]:
        """Indices of the names whose first token is `token`: the name itself, or `token` and then a non-word char."""
        folded, found = self._folded, []
        at, stop = _prefix_range(folded, token, 0, len(folded))
        while at < stop:  # one block per character that follows `token`: a word character means a longer token
            following = folded[at][len(token) : len(token) + 1]
            block_end = _prefix_range(folded, token + following, at, stop)[1] if following else at + 1
            if not following or not _WORD_CHAR.match(following) or not _WORD_CHAR.match(token):
                found.extend(range(at, block_end))
            at = block_end
        return found

    def _insert(self, branch: dict, name: str, folded: str, first: str) -> None:
        tokens = _TOKEN.findall(folded)
        acronym = len(name) <= self.acronym_length and name.isupper()
        if (
            not tokens
            or tokens[0] != first
            or len(name) < self.min_length
            or (len(tokens) == 1 and tokens[0] in self.STOPWORDS and not acronym)
        ):
            return
        node = branch
        for token in tokens[1:]:
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
            node, j, best = self._branch(tokens[i][2]), i + 1, -1
            while node is not None:
                end = node.get(self._END)
                if end is True or (end and text[tokens[i][0] : tokens[j - 1][1]] in end):
                    best = j
                if j == len(tokens) or tokens[j][2] not in node:
                    break
                node = node[tokens[j][2]]
                j += 1
            if best > i:
                spans.append((tokens[i][0], tokens[best - 1][1]))
                i = best
            else:
                i += 1
        return spans


def _prefix_range(ordered: list[str], prefix: str, low: int, high: int) -> tuple[int, int]:
    """`[start, stop)` of the strings of sorted `ordered[low:high]` that start with `prefix`."""
    start = bisect.bisect_left(ordered, prefix, low, high)
    if ord(prefix[-1]) < 0x10FFFF:
        return start, bisect.bisect_left(ordered, prefix[:-1] + chr(ord(prefix[-1]) + 1), start, high)
    stop = start
    while stop < high and ordered[stop].startswith(prefix):
        stop += 1
    return start, stop


__all__ = ["MentionMatcher"]
