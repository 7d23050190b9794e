"""One link per repeated name in a document (Hub-portable core file).

A document that writes the same name twice means the same entity both times: in NCBI Disease and BC5CDR (every
split), 40-67 % of the gold mentions repeat an earlier mention text of their document, and 7 of those 19,104 repeats
carry other gold ids than the first occurrence (eval/RESULTS.md). The reranker, though, reads each occurrence in its
own sentence and may link them apart. [`repeat_groups`] puts a document's mentions with the same retrieval query
(case and spacing ignored) and the same candidates in one group, and the `repeated_names` setting says what the
reranker does with a group:

- `"first"` (the default): only the group's first mention is reranked; the others take its scores (and link). The
  reranker reads each distinct name of a document once, so a document that repeats its names costs less to link.
- `"pool"`: every member is reranked and gets the group's mean softmax probabilities ([`pool_repeats`]): each
  context votes, all members get one link.
- `"each"`: every mention is reranked on its own (links may differ within a group).

Only the standard library is imported, so the file ships inside a checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

REPEATED_NAMES_MODES = ("first", "pool", "each")
DEFAULT_REPEATED_NAMES = "first"
_FLOOR = 1e-300  # keeps log-probabilities finite (JSON has no infinity)


def repeat_key(query: str) -> str:
    """The form of a retrieval query that decides whether two mentions repeat one name.

    >>> repeat_key("  Breast  Cancer ") == repeat_key("breast cancer")
    True
    """
    return " ".join(query.split()).casefold()


def repeat_groups(queries: Sequence[str], candidate_ids: Sequence[Sequence[str]]) -> list[int]:
    """For each mention of one document, the index of the first mention of its group: the same query (see
    [`repeat_key`]) and the same candidate ids in the same order. A mention without candidates is its own group.

    >>> repeat_groups(["DM", "fever", "dm", "DM"], [["D1", "D2"], ["D3"], ["D1", "D2"], ["D2", "D1"]])
    [0, 1, 0, 3]
    """
    leaders: dict[tuple[str, tuple[str, ...]], int] = {}
    groups = []
    for m, (query, ids) in enumerate(zip(queries, candidate_ids, strict=True)):
        if not ids:
            groups.append(m)
            continue
        groups.append(leaders.setdefault((repeat_key(query), tuple(ids)), m))
    return groups


def pool_repeats(scores: Sequence[Sequence[float] | None], groups: Sequence[int]) -> list[list[float] | None]:
    """Each mention's scores replaced by its group's pooled log-probabilities: the log of the mean, over the group's
    scored members, of their softmax probabilities. `scores[m]` is None (or empty) for a mention the reranker did not
    score; it stays as it is and takes no part in its group's vote. Groups of one keep their scores unchanged.

    >>> pooled = pool_repeats([[2.0, 0.0], [0.0, 1.0], [5.0]], [0, 0, 2])
    >>> [round(x, 3) for x in pooled[0]] == [round(x, 3) for x in pooled[1]], pooled[2]
    (True, [5.0])
    """
    members: dict[int, list[int]] = {}
    for m, group in enumerate(groups):
        if scores[m]:
            members.setdefault(group, []).append(m)
    pooled: list[list[float] | None] = [list(row) if row is not None else None for row in scores]
    for group_members in members.values():
        if len(group_members) < 2:
            continue
        probabilities = [softmax(scores[m]) for m in group_members]
        mean = [sum(column) / len(probabilities) for column in zip(*probabilities, strict=True)]
        logs = [math.log(max(p, _FLOOR)) for p in mean]
        for m in group_members:
            pooled[m] = list(logs)
    return pooled


def reranked_mentions(groups: Sequence[int], scored: Sequence[bool], repeated_names: str) -> list[int]:
    """The mentions to send to the reranker: those `scored` (not decided by the retriever), and with `"first"` only
    the first of each group.

    >>> reranked_mentions([0, 1, 0, 1], [True, False, True, False], "first")
    [0]
    >>> reranked_mentions([0, 0], [True, True], "pool")
    [0, 1]
    """
    return [m for m, wanted in enumerate(scored) if wanted and (repeated_names != "first" or groups[m] == m)]


def share_repeats(scores: Sequence[Sequence[float] | None], groups: Sequence[int], repeated_names: str) -> list:
    """The scores after reranking, shared within groups: with `"first"` a mention left out takes its group's first
    mention's scores, with `"pool"` every scored member gets the pooled ones ([`pool_repeats`]); `"each"` changes
    nothing. `scores[m]` is None (or empty) for a mention that was not reranked.

    >>> share_repeats([[1.0, 0.0], None, None], [0, 0, 2], "first")
    [[1.0, 0.0], [1.0, 0.0], None]
    """
    if repeated_names == "pool":
        return pool_repeats(scores, groups)
    shared = [list(row) if row is not None else None for row in scores]
    if repeated_names == "first":
        for m, leader in enumerate(groups):
            if not shared[m] and leader != m and shared[leader]:
                shared[m] = list(shared[leader])
    return shared


def softmax(logits: Sequence[float]) -> list[float]:
    """Probabilities of `logits` (`[]` for none), computed stably.

    >>> softmax([0.0, 0.0]), softmax([])
    ([0.5, 0.5], [])
    """
    if not logits:
        return []
    peak = max(logits)
    exps = [math.exp(x - peak) for x in logits]
    total = sum(exps)
    return [x / total for x in exps]


def check_repeated_names(value) -> str:
    """`value` once it is known to be one of [`REPEATED_NAMES_MODES`]."""
    if value not in REPEATED_NAMES_MODES:
        raise ValueError(f"repeated_names must be one of {', '.join(map(repr, REPEATED_NAMES_MODES))}, got {value!r}.")
    return value


__all__ = [
    "DEFAULT_REPEATED_NAMES",
    "REPEATED_NAMES_MODES",
    "check_repeated_names",
    "pool_repeats",
    "repeat_groups",
    "repeat_key",
    "reranked_mentions",
    "share_repeats",
    "softmax",
]
