"""Training batches that keep every slot of a mention together, under a padded-token budget.

Packed sequences are grouped into *units*: connected sets of sequences sharing a (document, mention) -- in ``pair``
mode one mention's C sequences, in ``mention`` mode one sequence (or its candidate splits), in ``sentence`` mode the
sequences of a sentence. A batch holds whole units, so the listwise loss (grouped by ``slot_groups``) always sees all
candidates of each mention. Every packing mode therefore trains on the same (mention, candidate) pairs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def sequence_units(sequences: Sequence[dict]) -> list[list[dict]]:
    """Split packed sequences into units (union-find over the (document, mention) pairs of their slots)."""
    parent = list(range(len(sequences)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[int, int], int] = {}
    for index, seq in enumerate(sequences):
        for key in zip(seq["slot_document"], seq["slot_mention"], strict=True):
            if key in owner:
                a, b = find(owner[key]), find(index)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[key] = index
    units: dict[int, list[dict]] = {}
    for index, seq in enumerate(sequences):
        units.setdefault(find(index), []).append(seq)
    return [units[root] for root in sorted(units)]


class TokenBudgetBatchSampler:
    """Yields lists of unit indices whose padded size (longest sequence x sequences) stays within ``max_tokens``.

    Each epoch (``set_epoch``) shuffles units with ``seed + epoch``, sorts them by length inside windows of
    ``window`` units (little padding, still random), fills batches (at most ``max_rows`` sequences each, when set) and
    shuffles the batch order. A unit larger than the budget forms a batch of its own. ``batch_size = None`` tells Accelerate the batches have dynamic sizes.
    """

    batch_size = None
    drop_last = False

    def __init__(
        self,
        units: Sequence[Sequence[dict]],
        max_tokens: int,
        seed: int = 0,
        window: int = 64,
        max_rows: int | None = None,
    ):
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}.")
        self.shapes = [(len(unit), max(len(s["input_ids"]) for s in unit)) for unit in units]
        self.max_tokens, self.seed, self.window, self.max_rows = max_tokens, seed, window, max_rows
        self.epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = random.Random(self.seed * 100003 + self.epoch)
        order = list(range(len(self.shapes)))
        rng.shuffle(order)
        batches: list[list[int]] = []
        for start in range(0, len(order), self.window):
            window = sorted(order[start : start + self.window], key=lambda u: self.shapes[u][1])
            current, rows, longest = [], 0, 0
            for unit in window:
                count, length = self.shapes[unit]
                too_many = self.max_rows is not None and rows + count > self.max_rows
                if current and (too_many or max(longest, length) * (rows + count) > self.max_tokens):
                    batches.append(current)
                    current, rows, longest = [], 0, 0
                current.append(unit)
                rows, longest = rows + count, max(longest, length)
            if current:
                batches.append(current)
        rng.shuffle(batches)
        self._cache = (self.epoch, batches)
        return batches

    def __iter__(self):
        yield from self.batches()

    def __len__(self) -> int:
        return len(self.batches())


class UnitCollator:
    """Flattens a batch of units into sequences and pads them with :meth:`BelTokenizer.pad_packed`."""

    def __init__(self, tokenizer, use_retrieval_score: bool = False):
        self.tokenizer, self.use_retrieval_score = tokenizer, use_retrieval_score

    def __call__(self, units: Sequence[Sequence[dict]]) -> dict:
        batch = self.tokenizer.pad_packed([seq for unit in units for seq in unit])
        if not self.use_retrieval_score:
            batch.pop("retrieval_scores", None)
        return batch
