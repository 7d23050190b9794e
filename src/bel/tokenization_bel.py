"""BelTokenizer: mention markers, candidate slots, and packing of many (mention, candidate) pairs per sequence.

Template (``paper``)::

    [CLS] context with [Ms] mention [Me] marked [SEP] mention [MASK] name(e1) [SEP] mention [MASK] name(e2) [SEP] ...

``compact`` states the mention once per group of slots: ``[SEP] mention [MASK] name(e1) [MASK] name(e2) ... [SEP]``.
Each ``[MASK]`` is a slot; the model scores the hidden state there (``slot_pooling="mask"``) or the mean over the
``[MASK]`` and the candidate name after it (``"span"``). Packing never drops a pair: a group that does not
fit in ``max_length`` is split into fewer mentions per sequence, then fewer candidates, then a narrower context.
"""

from __future__ import annotations

import bisect
import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import AutoTokenizer, TokenizersBackend

from .configuration_bel import PACKING_MODES, TEMPLATES
from .sentences_bel import document_sentences

MENTION_START = "[Ms]"
MENTION_END = "[Me]"
PACKED_KEYS = (
    "input_ids",
    "token_type_ids",
    "slot_positions",
    "slot_ends",
    "slot_document",
    "slot_mention",
    "slot_candidate",
)

Span = tuple[int, int]


@dataclass
class LinkingInput:
    """One document's linking problem: its text, mention spans, and the candidate names of each mention.

    `sentences` and `passages` are character spans; when absent, the whole text is one passage and sentences come from
    `sentences_bel.document_sentences` (what `inputs_bel.build_linking_input` fills in).
    """

    text: str
    mentions: Sequence[Span]
    candidates: Sequence[Sequence[str]]
    sentences: Sequence[Span] | None = None
    passages: Sequence[Span] | None = None
    candidate_scores: Sequence[Sequence[float]] | None = None
    candidate_labels: Sequence[Sequence[float]] | None = None


class BelTokenizer(TokenizersBackend):
    r"""
    Tokenizer of bel checkpoints: any `tokenizers`-backed BERT-family tokenizer (WordPiece or BPE) plus the mention
    markers `[Ms]`/`[Me]`, with [`~BelTokenizer.pack`] to build multi-candidate sequences.

    Example:

    ```python
    >>> from bel import BelTokenizer, LinkingInput
    >>> tokenizer = BelTokenizer.from_encoder("path/to/bert")  # doctest: +SKIP
    >>> doc = LinkingInput("Breast cancer is common.", mentions=[(0, 13)], candidates=[["breast neoplasm", "cancer"]])
    >>> packed = tokenizer.pack([doc], mode="mention")  # doctest: +SKIP
    >>> batch = tokenizer.pad_packed(packed)  # input_ids (batch_size, sequence_length), slot_positions (batch_size, slots)
    ```
    """

    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

    @classmethod
    def from_encoder(cls, encoder_tokenizer: str | os.PathLike | TokenizersBackend, **kwargs) -> BelTokenizer:
        """Wrap an encoder's tokenizer (a path, a Hub id or an instance) and add the mention markers."""
        base = encoder_tokenizer
        if not isinstance(base, TokenizersBackend):
            base = AutoTokenizer.from_pretrained(encoder_tokenizer, **kwargs)
        backend = copy.deepcopy(base.backend_tokenizer)
        backend.no_truncation()
        backend.no_padding()
        special = {
            "cls_token": base.cls_token or base.bos_token,
            "sep_token": base.sep_token or base.eos_token,
            "mask_token": base.mask_token,
            "pad_token": base.pad_token,
            "unk_token": base.unk_token,
        }
        missing = [name for name, token in special.items() if token is None and name != "unk_token"]
        if missing:
            raise ValueError(f"The encoder tokenizer has no {', '.join(missing)}; bel needs [CLS]/[SEP]/[MASK]/[PAD].")
        max_length = min(int(getattr(base, "model_max_length", 512) or 512), 512)
        return cls(
            tokenizer_object=backend,
            model_max_length=max_length,
            extra_special_tokens=[MENTION_START, MENTION_END],
            **{k: v for k, v in special.items() if v is not None},
        )

    @property
    def mention_marker_ids(self) -> tuple[int, int]:
        return tuple(self.convert_tokens_to_ids([MENTION_START, MENTION_END]))

    def pack(
        self,
        documents: Sequence[LinkingInput],
        mode: str = "mention",
        max_length: int | None = None,
        context_length: int = 64,
        template: str = "paper",
    ) -> list[dict[str, list]]:
        """Pack every (mention, candidate) pair of `documents` into sequences, each pair in exactly one slot.

        Returns one dict per sequence with `input_ids`, `token_type_ids`, `slot_positions` (index of each `[MASK]`),
        `slot_ends` (exclusive end of the candidate name that follows it) and, per slot, `slot_document`,
        `slot_mention` and `slot_candidate` (indices into `documents`, their
        `mentions` and each mention's `candidates`); plus `slot_retrieval_scores` / `slot_labels` when given.
        """
        if mode not in PACKING_MODES:
            raise ValueError(f"mode={mode!r} is not one of {', '.join(PACKING_MODES)}.")
        if template not in TEMPLATES:
            raise ValueError(f"template={template!r} is not one of {', '.join(TEMPLATES)}.")
        max_length = max_length or min(self.model_max_length, 512)
        if max_length < 32:
            raise ValueError(f"max_length must be >= 32 tokens, got {max_length}.")
        names = _NameCache(self)
        sequences = []
        for index, document in enumerate(documents):
            _validate(document, index)
            packer = _DocumentPacker(self, document, index, names, max_length, context_length, template)
            sequences.extend(packer.pack(mode))
        return sequences

    def pad_packed(self, sequences: Sequence[dict[str, list]], pad_to_multiple_of: int | None = None):
        """Pad packed sequences into tensors.

        Returns `input_ids`, `attention_mask`, `token_type_ids` `(batch_size, sequence_length)`; `slot_positions`,
        `slot_ends`, `slot_mask` and `slot_groups` (one id per (document, mention) within the batch, -1 on padding)
        `(batch_size, num_slots)`; `retrieval_scores` and `labels` when the sequences carry them.
        """
        length = max(len(s["input_ids"]) for s in sequences)
        if pad_to_multiple_of:
            length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
        slots = max(1, max(len(s["slot_positions"]) for s in sequences))
        groups: dict[tuple[int, int], int] = {}

        def padded(key: str, width: int, value) -> list[list]:
            return [seq[key] + [value] * (width - len(seq[key])) for seq in sequences]

        slot_groups = [
            [groups.setdefault(key, len(groups)) for key in zip(s["slot_document"], s["slot_mention"], strict=True)]
            for s in sequences
        ]
        batch_dict = {
            "input_ids": torch.tensor(padded("input_ids", length, self.pad_token_id), dtype=torch.long),
            "attention_mask": torch.tensor(
                [[1] * len(s["input_ids"]) + [0] * (length - len(s["input_ids"])) for s in sequences], dtype=torch.long
            ),
            "token_type_ids": torch.tensor(padded("token_type_ids", length, 0), dtype=torch.long),
            "slot_positions": torch.tensor(padded("slot_positions", slots, 0), dtype=torch.long),
            "slot_ends": torch.tensor(padded("slot_ends", slots, 1), dtype=torch.long),
            "slot_mask": torch.tensor(
                [[True] * len(s["slot_positions"]) + [False] * (slots - len(s["slot_positions"])) for s in sequences]
            ),
            "slot_groups": torch.tensor([g + [-1] * (slots - len(g)) for g in slot_groups], dtype=torch.long),
        }
        if all("slot_retrieval_scores" in s for s in sequences):
            batch_dict["retrieval_scores"] = torch.tensor(padded("slot_retrieval_scores", slots, 0.0))
        if all("slot_labels" in s for s in sequences):
            batch_dict["labels"] = torch.tensor(padded("slot_labels", slots, 0.0))
        return batch_dict


def _validate(document: LinkingInput, index: int) -> None:
    if len(document.candidates) != len(document.mentions):
        raise ValueError(
            f"document {index}: {len(document.mentions)} mentions but {len(document.candidates)} candidate lists; "
            "pass one list of candidate names per mention."
        )
    for m, (start, end) in enumerate(document.mentions):
        if not (0 <= start <= end <= len(document.text)):
            raise ValueError(
                f"document {index}, mention {m}: span ({start}, {end}) is outside the text (length "
                f"{len(document.text)}) or reversed."
            )
    for field in ("candidate_scores", "candidate_labels"):
        values = getattr(document, field)
        if values is not None and [len(v) for v in values] != [len(c) for c in document.candidates]:
            raise ValueError(f"document {index}: {field} must have the same shape as candidates.")


class _NameCache:
    """Token ids of candidate names, each distinct name tokenized once per `pack` call."""

    def __init__(self, tokenizer: BelTokenizer):
        self.backend = tokenizer.backend_tokenizer
        self.ids: dict[str, list[int]] = {}

    def prepare(self, names: set[str]) -> None:
        todo = sorted(n for n in names if n not in self.ids)
        if todo:
            for name, encoding in zip(todo, self.backend.encode_batch(todo, add_special_tokens=False), strict=True):
                self.ids[name] = encoding.ids

    def __getitem__(self, name: str) -> list[int]:
        return self.ids[name]


@dataclass
class _Item:
    """Some candidates of one mention, all to be placed in one sequence."""

    mention: int
    candidates: list[int]


class _DocumentPacker:
    """Tokenizes one document once and lays its (mention, candidate) pairs out in sequences."""

    def __init__(self, tokenizer, document, index, names, max_length, context_length, template):
        self.doc, self.index, self.names = document, index, names
        self.max_length, self.context_length, self.compact = max_length, context_length, template == "compact"
        self.cls, self.sep, self.mask = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id
        self.ms, self.me = tokenizer.mention_marker_ids
        names.prepare({name for candidates in document.candidates for name in candidates})
        passages = list(document.passages or [(0, len(document.text))])
        sentences = list(document.sentences or document_sentences(document.text, document.mentions, passages))
        self._tokenize(tokenizer.backend_tokenizer, sentences, passages)
        self.sentence_of = _containing(sorted(sentences), document.mentions)
        self.passage_of = _containing(sorted(passages), document.mentions)
        self.sentence_tokens = [(self.at[s], self.at[e]) for s, e in sorted(sentences)]

    def _tokenize(self, backend, sentences, passages) -> None:
        text = self.doc.text
        cuts = {0, len(text)}
        for spans in (self.doc.mentions, sentences, passages):
            for start, end in spans:
                cuts.update((start, end))
        cuts = sorted(c for c in cuts if 0 <= c <= len(text))
        segments = [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
        encodings = backend.encode_batch(segments, add_special_tokens=False) if segments else []
        self.ids: list[int] = []
        self.at: dict[int, int] = {}
        for cut, encoding in zip(cuts, encodings, strict=False):
            self.at[cut] = len(self.ids)
            self.ids.extend(encoding.ids)
        self.at[cuts[-1]] = len(self.ids)
        self.cores = [(self.at[s], self.at[e]) for s, e in self.doc.mentions]

    # ----------------------------------------------------------------------------------------------- grouping
    def pack(self, mode: str) -> list[dict[str, list]]:
        order = sorted(range(len(self.doc.mentions)), key=lambda m: (self.doc.mentions[m], m))
        if mode == "pair":
            groups = [[_Item(m, [c])] for m in order for c in range(len(self.doc.candidates[m]))]
        else:
            key = {
                "mention": lambda m: m,
                "sentence": lambda m: self.sentence_of[m],
                "passage": lambda m: self.passage_of[m],
                "document": lambda m: 0,
            }[mode]
            grouped: dict[int, list[_Item]] = {}
            for m in order:
                grouped.setdefault(key(m), []).append(_Item(m, list(range(len(self.doc.candidates[m])))))
            groups = list(grouped.values())
        sequences = []
        for group in groups:
            for items in self._split(group):
                sequences.append(self._build(items))
        return sequences

    def _split(self, group: list[_Item]) -> list[list[_Item]]:
        """Greedily fill sequences with whole mentions; split a mention's candidates only if it cannot fit alone."""
        result, current = [], []
        for item in group:
            if not item.candidates:
                continue
            if current and self._fits(current + [item]):
                current.append(item)
                continue
            if current:
                result.append(current)
                current = []
            if self._fits([item]):
                current = [item]
            else:
                result.extend([[chunk] for chunk in self._split_candidates(item)])
        if current:
            result.append(current)
        return result

    def _split_candidates(self, item: _Item) -> list[_Item]:
        chunks, current = [], []
        for c in item.candidates:
            if current and not self._fits([_Item(item.mention, current + [c])]):
                chunks.append(_Item(item.mention, current))
                current = []
            current.append(c)
        chunks.append(_Item(item.mention, current))
        return chunks

    # ----------------------------------------------------------------------------------------------- lengths
    def _mention_ids(self, m: int) -> list[int]:
        lo, hi = self.cores[m]
        return self.ids[lo : min(hi, lo + self.max_length // 8)]

    def _name_ids(self, m: int, c: int) -> list[int]:
        return self.names[self.doc.candidates[m][c]][: self.max_length // 2]

    def _block_length(self, items: list[_Item]) -> int:
        total = 0
        for item in items:
            mention = len(self._mention_ids(item.mention))
            names = [len(self._name_ids(item.mention, c)) for c in item.candidates]
            if self.compact:
                total += mention + 1 + sum(1 + n for n in names)
            else:
                total += sum(mention + 2 + n for n in names)
        return total

    def _fits(self, items: list[_Item]) -> bool:
        budget = self.max_length - 2 - self._block_length(items)
        return self._context(items, budget, narrow=False) is not None

    def _context(self, items: list[_Item], budget: int, narrow: bool) -> list[Span] | None:
        """Token windows of context for `items`: their sentences sized to `context_length`, narrowed to `budget`."""
        cores: dict[int, Span] = {}
        for item in items:
            s = self.sentence_of[item.mention]
            lo, hi = self.cores[item.mention]
            old = cores.get(s, (lo, hi))
            cores[s] = (min(old[0], lo), max(old[1], hi))
        bounds = []
        for s, (lo, hi) in sorted(cores.items()):
            a, b = self.sentence_tokens[s] if s >= 0 else (lo, hi)
            bounds.append(((min(a, lo), max(b, hi)), (lo, hi)))
        markers = 2 * len({item.mention for item in items})

        def windows(cap: int) -> list[Span]:
            return _merge(
                [_grow(core, bound, max(min(bound[1] - bound[0], cap), core[1] - core[0])) for bound, core in bounds]
            )

        result = windows(self.context_length)
        if _length(result) + markers > budget:
            if not narrow or _length(windows(0)) + markers > budget:
                return None
            low, high = 0, self.context_length
            while low < high:
                mid = (low + high + 1) // 2
                low, high = (mid, high) if _length(windows(mid)) + markers <= budget else (low, mid - 1)
            result = windows(low)
        target = min(self.context_length, budget - markers)
        missing = target - _length(result)
        if missing > 0:
            first, last = result[0], result[-1]
            left = min(missing // 2, first[0])
            right = min(missing - left, len(self.ids) - last[1])
            left = min(missing - right, first[0])
            result[0] = (first[0] - left, first[1])
            result[-1] = (result[-1][0], last[1] + right)
        return result

    # ----------------------------------------------------------------------------------------------- building
    def _build(self, items: list[_Item]) -> dict[str, list]:
        blocks, slots = self._blocks(items)
        budget = self.max_length - 2 - len(blocks)
        context = self._context(items, budget, narrow=True)
        cores = {item.mention: self.cores[item.mention] for item in items}
        if context is None:  # a mention longer than the whole budget: keep its first tokens only
            item = items[0]
            lo, hi = self.cores[item.mention]
            hi = min(hi, lo + max(1, budget - 2))
            cores[item.mention] = (lo, hi)
            context = [(lo, hi)]
        head = self._context_ids(context, cores)
        input_ids = [self.cls, *head, self.sep, *blocks]
        offset = len(head) + 2
        sequence = {
            "input_ids": input_ids,
            "token_type_ids": [0] * offset + [1] * len(blocks),
            "slot_positions": [offset + p for p, _, _, _ in slots],
            "slot_ends": [offset + e for _, _, _, e in slots],
            "slot_document": [self.index] * len(slots),
            "slot_mention": [m for _, m, _, _ in slots],
            "slot_candidate": [c for _, _, c, _ in slots],
        }
        if self.doc.candidate_scores is not None:
            sequence["slot_retrieval_scores"] = [float(self.doc.candidate_scores[m][c]) for _, m, c, _ in slots]
        if self.doc.candidate_labels is not None:
            sequence["slot_labels"] = [float(self.doc.candidate_labels[m][c]) for _, m, c, _ in slots]
        return sequence

    def _blocks(self, items: list[_Item]) -> tuple[list[int], list[tuple[int, int, int, int]]]:
        """Candidate blocks and their slots: (slot position, mention, candidate, end of the slot's name span)."""
        ids, slots = [], []
        for item in items:
            mention = self._mention_ids(item.mention)
            if self.compact:
                ids.extend(mention)
            for c in item.candidates:
                name = self._name_ids(item.mention, c)
                if not self.compact:
                    ids.extend(mention)
                position = len(ids)
                ids.append(self.mask)
                ids.extend(name)
                slots.append((position, item.mention, c, len(ids)))
                if not self.compact:
                    ids.append(self.sep)
            if self.compact:
                ids.append(self.sep)
        return ids, slots

    def _context_ids(self, windows: list[Span], cores: dict[int, Span]) -> list[int]:
        events: dict[int, list[tuple[int, int, int]]] = {}
        for _m, (lo, hi) in cores.items():
            events.setdefault(lo, []).append((1, -hi, self.ms))
            events.setdefault(hi, []).append((0, -lo, self.me))
        out: list[int] = []
        for a, b in windows:
            position = a
            for point in sorted(p for p in events if a <= p <= b):
                out.extend(self.ids[position:point])
                out.extend(marker for *_, marker in sorted(events[point]))
                position = point
            out.extend(self.ids[position:b])
        return out


def _containing(spans: list[Span], mentions: Sequence[Span]) -> list[int]:
    """Index of the span holding each mention's start (or the nearest span before it); -1 if there are no spans."""
    if not spans:
        return [-1] * len(mentions)
    starts = [start for start, _ in spans]
    return [max(bisect.bisect_right(starts, start) - 1, 0) for start, _ in mentions]


def _grow(core: Span, bound: Span, size: int) -> Span:
    """Widen `core` symmetrically inside `bound` to `size` tokens (or to all of `bound`)."""
    extra = max(0, size - (core[1] - core[0]))
    left = min(extra // 2, core[0] - bound[0])
    right = min(extra - left, bound[1] - core[1])
    left = min(extra - right, core[0] - bound[0])
    return core[0] - left, core[1] + right


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _length(spans: list[Span]) -> int:
    return sum(end - start for start, end in spans)
