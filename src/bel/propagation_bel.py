"""Each name a document repeats is tagged at every occurrence or at none (Hub-portable core file).

A token classifier labels each occurrence of a name from its own window, so a document that writes "Wilms tumour"
five times may get four of them: the fifth sits in a sentence that reads differently, or at a window's edge. Curated
corpora annotate every occurrence (40-67 % of the NCBI Disease and BC5CDR mentions repeat an earlier mention text of
their document, eval/RESULTS.md), and so do the rule-based consistency passes of GNormPlus and TaggerOne's
post-processing. [`propagate_names`] makes one decision per detected name after decoding: the name's occurrences
vote (an entity: yes; no entity over it: no); two thirds of yes tag every occurrence, fewer tag none. With
`abbreviations`, the short form a document defines for a detected long form ("Duchenne muscular dystrophy (DMD)") is
such a name too.

Only the standard library and the sibling `abbreviations_bel` are imported, so the file ships inside a checkpoint.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from .abbreviations_bel import find_abbreviations

Span = tuple[int, int]
Entity = tuple[int, int, str]


def name_key(name: str) -> str:
    """The form under which two occurrences are one name: spacing normalised, letter case ignored unless the name has
    an upper-case letter after its first character ("DM" is not "dm", "Fever" is "fever").

    >>> name_key("Wilms  Tumour"), name_key("DM")
    ('wilms tumour', 'DM')
    """
    name = " ".join(name.split())
    return name if _case_matters(name) else name.casefold()


def _case_matters(name: str) -> bool:
    return any(c.isupper() for word in name.split() for c in word[1:])


def detected_names(
    text: str, entities: Sequence[Entity], abbreviations: bool = True
) -> dict[str, tuple[str, str | None]]:
    """`name_key` of each detected name -> its type (the most frequent one when a name was detected with several) and
    None, plus, with `abbreviations`, the short form the document defines for a detected long form -> the long form's
    type and key (the definition says the two are one name).

    >>> detected_names("Myotonic dystrophy (DM) ...", [(0, 18, "Disease")])
    {'myotonic dystrophy': ('Disease', None), 'DM': ('Disease', 'myotonic dystrophy')}
    """
    votes: dict[str, Counter] = {}
    for start, end, kind in entities:
        votes.setdefault(name_key(text[start:end]), Counter())[kind] += 1
    names: dict[str, tuple[str, str | None]] = {key: (c.most_common(1)[0][0], None) for key, c in votes.items()}
    if abbreviations:
        for short, long in find_abbreviations(text).items():
            if name_key(long) in names and names[name_key(long)][1] is None:
                names.setdefault(name_key(short), (names[name_key(long)][0], name_key(long)))
    return names


def propagate_names(
    text: str,
    entities: Sequence[Entity],
    passages: Sequence[Span],
    min_share: float = 2 / 3,
    abbreviations: bool = True,
    min_length: int = 2,
) -> list[Entity]:
    """One decision per name of a document: its occurrences vote.

    Each word-bounded occurrence, inside one of `passages`, of a detected name (see [`detected_names`]; names shorter
    than `min_length` characters are left as decoded) votes yes when it is an entity and no when no entity overlaps it
    (an occurrence inside a longer entity does not vote); a short form defined for a detected long form also counts
    the long form's yes votes. When at least `min_share` of the votes are yes, every "no" occurrence becomes an entity
    of the name's type; otherwise the name's entities are dropped. `min_share=0` only adds. The default, two thirds,
    scored best on the NCBI Disease and BC5CDR dev splits of 0, 1/3, 1/2, 2/3, 3/4 and 1 (eval/RESULTS.md).

    >>> text = "Wilms tumor (WT) is rare. Children with Wilms tumor or WT1 ..."
    >>> propagate_names(text, [(0, 11, "Disease"), (40, 51, "Disease")], [(0, len(text))])
    [(0, 11, 'Disease'), (13, 15, 'Disease'), (40, 51, 'Disease')]
    >>> propagate_names("Fever, fever, fever.", [(0, 5, "Disease"), (7, 12, "Disease")], [(0, 20)])
    [(0, 5, 'Disease'), (7, 12, 'Disease'), (14, 19, 'Disease')]
    >>> propagate_names("Fever, fever.", [(0, 5, "Disease")], [(0, 13)])  # one of two: dropped
    []
    """
    names = {k: v for k, v in detected_names(text, entities, abbreviations).items() if len(k) >= min_length}
    if not names:
        return sorted(set(entities))
    decoded = {(start, end): kind for start, end, kind in entities}
    taken = sorted(decoded)
    votes: dict[str, tuple[list[Span], list[Span]]] = {key: ([], []) for key in names}
    pattern = _name_pattern(tuple(sorted(names)))
    for start, end in passages:
        for match in pattern.finditer(text, start, end):
            span, key = (match.start(), match.end()), name_key(match.group())
            if key in votes and (span in decoded or not _overlaps(span, taken)):
                votes[key][span not in decoded].append(span)
    found = set(entities)
    for key, (yes, no) in votes.items():
        kind, long_form = names[key]
        ayes = len(yes) + (len(votes[long_form][0]) if long_form in votes else 0)  # a short form shares its long form's
        if ayes >= max(min_share * (ayes + len(no)) - 1e-9, 1):  # 2/3 of 3 votes is 2
            found.update((*span, kind) for span in no)
        else:
            found.difference_update((*span, decoded[span]) for span in yes)
    return sorted(found)


def _name_pattern(keys: tuple[str, ...]) -> re.Pattern:
    """One pattern for all names: bounded by neither word characters nor hyphens, longest first, spacing free, letter
    case free where `name_key` ignores it."""
    parts = []
    for key in sorted(keys, key=len, reverse=True):
        body = r"\s+".join(re.escape(word) for word in key.split())
        parts.append(body if _case_matters(key) else f"(?i:{body})")
    return re.compile(r"(?<![\w-])(?:" + "|".join(parts) + r")(?![\w-])")


def _overlaps(span: Span, taken: Sequence[Span]) -> bool:
    start, end = span
    return any(a < end and b > start for a, b in taken)
