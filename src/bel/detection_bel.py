"""Learned mention detection with entity types (Hub-portable core file).

A [`MentionDetector`] is a `transformers` token-classification model (any BERT-family encoder with a linear head) plus
its tokenizer, saved in a checkpoint's `detector/` folder beside the reranker, so the `entity-linking` pipeline runs it
on raw text where `bel` is not installed. Labels are BIO tags with entity types (`O`, `B-Disease`, `I-Disease`, ...).

Labels are per word (the tokenizer's pre-tokenized words: whitespace and punctuation split them): training labels a
word's first token and ignores the rest, inference reads a word's label at its first token, so an entity never starts
or ends inside a word. Long passages are never truncated: each passage is tokenized once (character offsets kept) and cut into windows of at
most `max_length` tokens that overlap by `overlap` tokens; every token takes its label from the window in which it is
farthest from an edge. Entities are decoded per passage, so they never cross a passage boundary, and their offsets
index the original text.

A detector may also read a dictionary (`dictionary.json` beside its weights: entity type -> KB names): every token
inside a longest match of a type's names gets that type's `B`/`I` token type id, so the model learns where the KB's
names are mentions and where their edges lie; the same names are matched at training and inference.

Only the standard library, torch, transformers and the sibling `matching_bel` are imported, so the file ships inside a
checkpoint.
"""

from __future__ import annotations

import bisect
import functools
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .matching_bel import MentionMatcher
from .propagation_bel import propagate_names

Span = tuple[int, int]
Entity = tuple[int, int, str]
DETECTOR_DIR = "detector"
"""Sub-directory of a saved checkpoint that holds the detector (a standard token-classification model)."""
DICTIONARY_FILE = "dictionary.json"
"""Optional file of a detector: `{entity type: [KB names]}`, matched into token type ids (see `dictionary_tags`)."""
OUTSIDE = "O"
IGNORE = -100
"""Label id of tokens that carry no label (a word's later tokens); the loss ignores them."""


def bio_labels(types: Sequence[str]) -> list[str]:
    """The label list of a detector for `types`: `O`, then `B-`/`I-` per type (sorted).

    >>> bio_labels(["Disease", "Chemical"])
    ['O', 'B-Chemical', 'I-Chemical', 'B-Disease', 'I-Disease']
    """
    return [OUTSIDE] + [f"{tag}-{kind}" for kind in sorted(set(types)) for tag in ("B", "I")]


def token_windows(length: int, size: int, overlap: int) -> list[Span]:
    """Windows `[start, end)` of at most `size` tokens covering `range(length)`, neighbours overlapping by `overlap`.

    >>> token_windows(10, 4, 2)
    [(0, 4), (2, 6), (4, 8), (6, 10)]
    """
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"window size must be >= 1 and 0 <= overlap < size, got size={size}, overlap={overlap}.")
    if length <= size:
        return [(0, length)]
    step = size - overlap
    starts = list(range(0, length - size, step)) + [length - size]
    return [(start, start + size) for start in starts]


def window_owners(windows: Sequence[Span]) -> list[Span]:
    """The tokens each window labels: overlaps are cut at their middle, so a token is labelled away from an edge."""
    owned = []
    for i, (start, end) in enumerate(windows):
        low = start if i == 0 else (start + windows[i - 1][1]) // 2
        high = end if i == len(windows) - 1 else (windows[i + 1][0] + end) // 2
        owned.append((low, max(low, high)))
    return owned


def word_spans(offsets: Sequence[Span], words: Sequence[int]) -> tuple[list[int], list[Span]]:
    """First token index and character span of each word, from token offsets and the word id of every token."""
    firsts: list[int] = []
    spans: list[Span] = []
    for t, (word, (start, end)) in enumerate(zip(words, offsets, strict=True)):
        if t == 0 or word != words[t - 1]:
            firsts.append(t)
            spans.append((start, end))
        else:
            spans[-1] = (spans[-1][0], end)
    return firsts, spans


def encode_labels(
    offsets: Sequence[Span], words: Sequence[int], entities: Sequence[Entity], label2id: dict[str, int]
) -> list[int]:
    """Label ids of tokens at `offsets`: BIO of its word on a word's first token (a word overlapping an entity is in
    it), `IGNORE` on the word's other tokens."""
    firsts, spans = word_spans(offsets, words)
    labels = [IGNORE] * len(offsets)
    word_labels = [label2id[OUTSIDE]] * len(spans)
    for start, end, kind in sorted(entities):
        inside = [w for w, (a, b) in enumerate(spans) if a < end and b > start]
        for k, w in enumerate(inside):
            word_labels[w] = label2id[f"{'B' if k == 0 else 'I'}-{kind}"]
    for first, label in zip(firsts, word_labels, strict=True):
        labels[first] = label
    return labels


def decode_labels(labels: Sequence[str], offsets: Sequence[Span]) -> list[Entity]:
    """Entities `(start, end, type)` from BIO labels of tokens at `offsets`; an `I-` after another type starts one.

    >>> decode_labels(["B-Disease", "I-Disease", "O", "I-Chemical"], [(0, 6), (7, 13), (14, 16), (17, 20)])
    [(0, 13, 'Disease'), (17, 20, 'Chemical')]
    """
    entities: list[Entity] = []
    current: list | None = None
    for label, (start, end) in zip(labels, offsets, strict=True):
        tag, _, kind = label.partition("-")
        if tag == "I" and current is not None and current[2] == kind:
            current[1] = end
            continue
        if current is not None:
            entities.append(tuple(current))
            current = None
        if tag in ("B", "I"):
            current = [start, end, kind]
    if current is not None:
        entities.append(tuple(current))
    return entities


@functools.lru_cache(maxsize=8)
def bio_transitions(labels: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Allowed BIO moves as additive masks: `start[j]` and `moves[i, j]` are 0 where label j may open a passage or
    follow label i, and -inf where it may not (an `I-X` only continues a `B-X` or `I-X`)."""

    def may_follow(previous: str | None, label: str) -> bool:
        if not label.startswith("I-"):
            return True
        return previous is not None and previous != OUTSIDE and previous[2:] == label[2:]

    start = torch.tensor([0.0 if may_follow(None, label) else -torch.inf for label in labels])
    moves = torch.tensor([[0.0 if may_follow(a, b) else -torch.inf for b in labels] for a in labels])
    return start, moves


def viterbi_labels(log_probs: torch.Tensor, labels: Sequence[str]) -> list[str]:
    """The most probable label sequence of words with label log-probabilities `log_probs` `(num_words, num_labels)`
    that is valid BIO: a word the argmax would tag `I-X` after an `O` is tagged by the best valid path instead of
    opening a fragment.

    >>> viterbi_labels(torch.tensor([[0.0, -9.0, -9.0], [-2.0, -3.0, -0.2]]).log_softmax(-1), ["O", "B-D", "I-D"])
    ['O', 'O']
    """
    if len(log_probs) == 0:
        return []
    start, moves = bio_transitions(tuple(labels))  # built once per label set: this runs for every passage
    score, back = log_probs[0] + start, []
    for row in log_probs[1:]:
        best, previous = (score[:, None] + moves).max(0)
        score = best + row
        back.append(previous)
    path = [int(score.argmax())]
    for previous in reversed(back):
        path.append(int(previous[path[-1]]))
    return [labels[i] for i in reversed(path)]


_EDGE_WORDS = frozenset({"and", "or", "nor", "but", "the", "of", "with", "in", "for", "to", "by", "as", "from"})
"""Words no NCBI Disease or BC5CDR training mention starts or ends with (0 of 14,530)."""
_EDGE_MARKS = ",.;:/"
_LEADING_WORD = re.compile(r"(\w+)\W*\s+")
_TRAILING_WORD = re.compile(r"\s+\W*(\w+)$")


def trim_entity(text: str, start: int, end: int) -> tuple[int, int]:
    """`(start, end)` without edges no mention has: spaces, function words (`"myotonia and"`), separators and
    unbalanced brackets (`"ectopia pupillae ("`); `(start, start)` when nothing is left.

    >>> trim_entity("in myotonia and dysplasia", 3, 15)
    (3, 11)
    """
    while start < end:
        piece = text[start:end]
        if piece.lower() in _EDGE_WORDS:
            return start, start
        leading, trailing = _LEADING_WORD.match(piece), _TRAILING_WORD.search(piece)
        if piece[0].isspace() or piece[0] in _EDGE_MARKS or piece[0] == ")" or (piece[0] == "(" and ")" not in piece):
            start += 1
        elif (
            piece[-1].isspace()
            or piece[-1] in _EDGE_MARKS
            or piece[-1] == "("
            or (piece[-1] == ")" and "(" not in piece)
        ):
            end -= 1
        elif leading and leading.group(1).lower() in _EDGE_WORDS:
            start += leading.end()
        elif trailing and trailing.group(1).lower() in _EDGE_WORDS:
            end -= len(trailing.group(0))
        else:
            break
    return start, max(start, end)


def merge_adjacent(text: str, entities: Sequence[Entity]) -> list[Entity]:
    """Entities of one type with only whitespace between them joined into one: a word tagged `B-` after an entity of
    its type ("Hemorrhagic | cystitis") continues it far more often than two mentions touch (35 of 14,530 training
    mentions do)."""
    merged: list[Entity] = []
    for start, end, kind in sorted(entities):
        if merged and merged[-1][2] == kind and merged[-1][1] <= start and not text[merged[-1][1] : start].strip():
            merged[-1] = (merged[-1][0], end, kind)
        else:
            merged.append((start, end, kind))
    return merged


CASE_TYPES = 3
"""Letter-case classes of words (see `word_case`), fed as token type ids to detectors with `bel_case_types`."""


def word_case(word: str) -> int:
    """0: no upper-case letter ("fever", "p53"); 1: only the first ("Cowden"); 2: others ("CD", "SCA1", "mRNA").

    Uncased encoders (all-MiniLM-L6-v2 among them) see "AIDS" as "aids" and "CD" as "cd": the class gives the
    detector back what the tokenizer drops.

    >>> [word_case(w) for w in ("fever", "Cowden", "CD", "mRNA")]
    [0, 1, 2, 2]
    """
    upper = [c.isupper() for c in word]
    if not any(upper):
        return 0
    return 1 if upper[0] and not any(upper[1:]) else 2


def token_cases(text: str, offsets: Sequence[Span], words: Sequence[int]) -> list[int]:
    """The `word_case` of each token's word."""
    firsts, spans = word_spans(offsets, words)
    cases, w = [], -1
    for t in range(len(offsets)):
        if w + 1 < len(firsts) and firsts[w + 1] == t:
            w += 1
        cases.append(word_case(text[spans[w][0] : spans[w][1]]))
    return cases


def dictionary_tags(offsets: Sequence[Span], matches: Sequence[tuple[int, int, int]]) -> list[int]:
    """Per token: 0 outside every match, `1 + 2 * k` on the first token inside a match of dictionary `k` and `2 + 2 * k`
    on its other tokens. Where matches of two dictionaries overlap the longer wins (then the lower `k`), and a match
    that would cut into a longer one is dropped, so the tags stay well-formed BIO.

    >>> dictionary_tags([(0, 6), (7, 13), (14, 17)], [(0, 13, 0), (7, 13, 1)])
    [1, 2, 0]
    """
    starts = [start for start, _ in offsets]
    tags = [0] * len(offsets)
    for start, end, k in sorted(matches, key=lambda m: (m[0] - m[1], m[2], m[0])):
        first = bisect.bisect_left(starts, start)
        inside = [t for t in range(first, bisect.bisect_left(starts, end)) if offsets[t][1] <= end]
        if inside and not any(tags[t] for t in inside):
            tags[inside[0]] = 1 + 2 * k
            for t in inside[1:]:
                tags[t] = 2 + 2 * k
    return tags


def token_type_count(case_types: bool, dictionary: dict | None) -> int:
    """Token type ids a detector reads: letter-case classes times dictionary tags (1 when it reads neither)."""
    return (CASE_TYPES if case_types else 1) * (1 + 2 * len(dictionary or {}))


CONTEXTS = ("passage", "document")
"""What one token sequence holds: each passage alone, or all passages of a document in order, `[SEP]` between them."""


@dataclass
class PassageWindows:
    """Passages tokenized once into one sequence: content token ids (a separator token between passages), their
    absolute character offsets and word ids, the windows, the token range each window labels and each passage's
    token range (`segments`; separators lie outside every segment)."""

    ids: list[int]
    offsets: list[Span]
    words: list[int]
    windows: list[Span]
    owned: list[Span]
    token_types: list[int]
    segments: list[Span]


class MentionDetector:
    r"""
    Find typed entity mentions in text with a token-classification model.

    Args:
        model: a `transformers` `*ForTokenClassification` model whose `config.id2label` holds BIO labels.
        tokenizer: its `tokenizers`-backed tokenizer (character offsets are needed).
        max_length (`int`, *optional*): tokens per window including `[CLS]`/`[SEP]` (default: the model config's
            `bel_max_length`, else 512).
        overlap (`int`, *optional*): tokens shared by neighbouring windows (default: config's `bel_overlap`, else 64).
        batch_size (`int`, *optional*, defaults to 16): windows per forward pass, at most.
        max_tokens (`int`, *optional*, defaults to 4096): padded tokens per forward pass, at most (windows are sorted
            by length, so titles are encoded together and not padded to the length of abstracts).
        decoding (`str`, *optional*): "viterbi" (the most probable valid BIO sequence) or "argmax" (each word's best
            label; an `I-` after `O` opens an entity); default: the config's `bel_decoding`, else "viterbi".
        case_types (`bool`, *optional*): feed each word's letter case (`word_case`) as token type ids; the model must
            have been trained so (default: the config's `bel_case_types`, else False).
        merge (`bool`, *optional*): join entities of one type with only whitespace between them (default: the
            config's `bel_merge`, else True).
        propagate (`bool`, *optional*): one decision per detected name of a document: its occurrences (and the short
            form the document defines for it) are all tagged when two thirds of them are, else none is
            (`propagation_bel.propagate_names`; default: the config's `bel_propagate`, else True).
        context (`str`, *optional*): "passage" (each passage is encoded alone) or "document" (a document's passages
            are encoded as one sequence, `[SEP]` between them, so a title is read with its abstract; entities still
            never cross a passage boundary); default: the config's `bel_context`, else "passage".
        dictionary (`dict[str, list[str]]`, *optional*): entity type -> KB names whose matches reach the model as token
            type ids (`dictionary_tags`, combined with the letter case when `case_types`); the model must have been
            trained with the same dictionary (`bel train --detector-dictionary`). Saved as `dictionary.json`.

    Example:

    ```python
    >>> detector = MentionDetector.from_pretrained("checkpoint/detector")  # doctest: +SKIP
    >>> detector.detect([("Varicella causes fever.", [(0, 23)])])  # doctest: +SKIP
    [[(0, 9, 'Disease'), (17, 22, 'Disease')]]
    ```
    """

    def __init__(
        self,
        model,
        tokenizer,
        max_length: int | None = None,
        overlap: int | None = None,
        batch_size: int = 16,
        max_tokens: int = 4096,
        decoding: str | None = None,
        merge: bool | None = None,
        case_types: bool | None = None,
        dictionary: dict[str, Sequence[str]] | None = None,
        propagate: bool | None = None,
        context: str | None = None,
    ) -> None:
        self.model, self.tokenizer, self.batch_size, self.max_tokens = model.eval(), tokenizer, batch_size, max_tokens
        config = model.config
        self.max_length = max_length or getattr(config, "bel_max_length", None) or 512
        self.overlap = overlap if overlap is not None else getattr(config, "bel_overlap", 64)
        self.decoding = decoding or getattr(config, "bel_decoding", None) or "viterbi"
        if self.decoding not in ("viterbi", "argmax"):
            raise ValueError(f"decoding must be 'viterbi' or 'argmax', got {self.decoding!r}.")
        self.merge = merge if merge is not None else getattr(config, "bel_merge", True)
        self.propagate = propagate if propagate is not None else getattr(config, "bel_propagate", True)
        self.case_types = case_types if case_types is not None else getattr(config, "bel_case_types", False)
        self.context = context or getattr(config, "bel_context", None) or "passage"
        if self.context not in CONTEXTS:
            raise ValueError(f"context must be one of {CONTEXTS}, got {self.context!r}.")
        self.dictionary = {kind: sorted(set(names)) for kind, names in (dictionary or {}).items()}
        self._matchers: list[MentionMatcher] | None = None
        if self.uses_token_types and getattr(config, "type_vocab_size", 0) < self.token_type_count:
            raise ValueError(
                f"{'case_types' if self.case_types else 'a dictionary'} needs a model with >= {self.token_type_count} "
                f"token types (this one has {getattr(config, 'type_vocab_size', 0)}); train the detector with the same "
                "options (`bel train --stage detector --detector-case-types / --detector-dictionary`)."
            )
        config.bel_max_length, config.bel_overlap = self.max_length, self.overlap
        config.bel_decoding, config.bel_merge, config.bel_propagate = self.decoding, self.merge, self.propagate
        config.bel_case_types, config.bel_context = self.case_types, self.context
        config.bel_dictionary = sorted(self.dictionary)
        self.id2label = {int(k): v for k, v in model.config.id2label.items()}
        self.label2id = {v: k for k, v in self.id2label.items()}
        self.labels = [self.id2label[i] for i in range(len(self.id2label))]
        self.trim = True  # `trim_entity` on every entity; off only to measure what it adds (eval/detector_decoding.py)

    @property
    def types(self) -> list[str]:
        """Entity types this detector finds."""
        return sorted({label[2:] for label in self.label2id if label != OUTSIDE})

    def use_dictionary(self, dictionary: dict[str, Sequence[str]]) -> None:
        """Match another list of names per type (the same types: the model's token types stay valid)."""
        if sorted(dictionary) != sorted(self.dictionary):
            raise ValueError(f"the dictionary's types {sorted(dictionary)} differ from {sorted(self.dictionary)}.")
        self.dictionary = {kind: sorted(set(names)) for kind, names in dictionary.items()}
        self._matchers = None

    @property
    def uses_token_types(self) -> bool:
        """Whether the model reads token type ids (letter case, dictionary matches or both)."""
        return self.token_type_count > 1

    @property
    def token_type_count(self) -> int:
        """Token type ids the model needs: letter-case classes times dictionary tags (1 when it reads neither)."""
        return token_type_count(self.case_types, self.dictionary)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **kwargs) -> MentionDetector:
        """Load a detector saved with [`save_pretrained`] (safetensors weights only)."""
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        model = AutoModelForTokenClassification.from_pretrained(str(directory), use_safetensors=True)
        wanted = getattr(model.config, "bel_dictionary", None)
        if wanted and "dictionary" not in kwargs:
            path = Path(directory) / DICTIONARY_FILE
            if not path.is_file():
                raise ValueError(
                    f"{directory} is a detector trained with a dictionary ({', '.join(wanted)}) but has no "
                    f"{DICTIONARY_FILE}; copy or download the whole detector/ folder."
                )
            kwargs["dictionary"] = json.loads(path.read_text(encoding="utf-8"))
        return cls(model, AutoTokenizer.from_pretrained(str(directory)), **kwargs)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        path = Path(directory)
        config = self.model.config  # the decoding as set now, not as it was at construction
        config.bel_decoding, config.bel_merge, config.bel_propagate = self.decoding, self.merge, self.propagate
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        if self.dictionary:
            (path / DICTIONARY_FILE).write_text(json.dumps(self.dictionary, ensure_ascii=False), encoding="utf-8")
        return path

    def dictionary_matches(self, text: str, passage: Span) -> list[tuple[int, int, int]]:
        """`(start, end, k)` of the longest matches of dictionary `k`'s names in `text[passage]` (text offsets)."""
        if not self.dictionary:
            return []
        if self._matchers is None:
            self._matchers = [MentionMatcher(self.dictionary[kind]) for kind in sorted(self.dictionary)]
        start, end = passage
        return [(a + start, b + start, k) for k, m in enumerate(self._matchers) for a, b in m.find(text[start:end])]

    # ------------------------------------------------------------------ windows
    def passage_groups(self, passages: Sequence[Span]) -> list[list[Span]]:
        """The passages encoded together (`context`): each alone, or all of a document's in one sequence."""
        if self.context == "document":
            return [list(passages)] if passages else []
        return [[passage] for passage in passages]

    def passage_windows(self, text: str, passage: Span) -> PassageWindows:
        """Tokenize `text[passage]` once and cut it into overlapping windows (offsets in `text` coordinates)."""
        return self.text_windows(text, [passage])

    def text_windows(self, text: str, passages: Sequence[Span]) -> PassageWindows:
        """Tokenize each of `passages` once, join them with separator tokens into one sequence and cut it into
        overlapping windows (offsets in `text` coordinates)."""
        ids: list[int] = []
        offsets: list[Span] = []
        words: list[int] = []
        types: list[int] = []
        segments: list[Span] = []
        next_word = 0  # word ids stay unique across passages, so no word spans two of them
        for passage in passages:
            if segments:  # a separator, read as a word of its own and never labelled
                ids.append(self._special_ids()[1])
                offsets.append((passage[0], passage[0]))
                words.append(next_word)
                types.append(0)
                next_word += 1
            tokens, spans, word_ids, token_types = self._tokenize_passage(text, passage)
            segments.append((len(ids), len(ids) + len(tokens)))
            ids += tokens
            offsets += spans
            words += [next_word + word for word in word_ids]
            types += token_types
            next_word += max(word_ids, default=-1) + 1
        windows = token_windows(len(ids), self.max_length - 2, min(self.overlap, (self.max_length - 2) // 2))
        return PassageWindows(ids, offsets, words, windows, window_owners(windows), types, segments)

    def _tokenize_passage(self, text: str, passage: Span) -> tuple[list[int], list[Span], list[int], list[int]]:
        """Content token ids of `text[passage]`, their character offsets in `text`, word ids and token type ids."""
        start, end = passage
        # verbose=False: a passage longer than the encoder's limit is expected here (it is cut into windows), so the
        # tokenizer's "longer than the specified maximum sequence length" warning would only mislead users
        encoding = self.tokenizer(text[start:end], add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        kept = [
            (i, (a + start, b + start), word)
            for i, (a, b), word in zip(
                encoding["input_ids"], encoding["offset_mapping"], encoding.word_ids(), strict=True
            )
            if b > a
        ]
        ids, offsets, words = [i for i, _, _ in kept], [o for _, o, _ in kept], [w for _, _, w in kept]
        types = token_cases(text, offsets, words) if self.case_types else [0] * len(ids)
        if self.dictionary:
            width = token_type_count(False, self.dictionary)
            tags = dictionary_tags(offsets, self.dictionary_matches(text, passage))
            types = [case * width + tag for case, tag in zip(types, tags, strict=True)]
        return ids, offsets, words, types

    def _special_ids(self) -> tuple[int, int]:
        """The ids that open and close a window (and separate passages): `[CLS]`/`[SEP]`, or the tokenizer's
        start/end tokens."""
        first = self.tokenizer.cls_token_id if self.tokenizer.cls_token_id is not None else self.tokenizer.bos_token_id
        last = self.tokenizer.sep_token_id if self.tokenizer.sep_token_id is not None else self.tokenizer.eos_token_id
        return first, last

    def window_inputs(self, passage: PassageWindows, window: Span) -> list[int]:
        """Input ids of one window: `[CLS] tokens [SEP]` (or the tokenizer's own start/end tokens)."""
        first, last = self._special_ids()
        return [first, *passage.ids[window[0] : window[1]], last]

    def window_token_types(self, passage: PassageWindows, window: Span) -> list[int]:
        """Token type ids of one window (`window_inputs`): each token's letter case and dictionary tag, 0 on
        `[CLS]`/`[SEP]`."""
        return [0, *passage.token_types[window[0] : window[1]], 0]

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def detect(self, documents: Sequence[tuple[str, Sequence[Span]]]) -> list[list[Entity]]:
        """Entities `(start, end, type)` of each `(text, passages)` document, in text order."""
        scored = self.word_log_probs(documents)
        return [self.decode(text, passages) for (text, _), passages in zip(documents, scored, strict=True)]

    def decode(self, text: str, passages: Sequence[tuple[list[Span], torch.Tensor]]) -> list[Entity]:
        """Entities of one document from the word log-probabilities of its passages (see `word_log_probs`): BIO
        decoding (`decoding`: "viterbi" or "argmax"), edges no mention has trimmed (`trim`), (`merge`) touching
        entities of one type joined and (`propagate`) each name tagged at all its occurrences or at none (two thirds
        decide)."""
        entities: list[Entity] = []
        for words, log_probs in passages:
            if self.decoding == "viterbi":
                tags = viterbi_labels(log_probs, self.labels)
            else:
                tags = [self.labels[i] for i in log_probs.argmax(-1).tolist()]
            found = decode_labels(tags, words)
            if self.trim:
                found = [(s, e, k) for (s, e), k in ((trim_entity(text, a, b), k) for a, b, k in found) if e > s]
            entities.extend(merge_adjacent(text, found) if self.merge else found)
        if self.propagate:
            return propagate_names(text, entities, [(words[0][0], words[-1][1]) for words, _ in passages if words])
        return sorted(set(entities))

    @torch.no_grad()
    def word_log_probs(
        self, documents: Sequence[tuple[str, Sequence[Span]]]
    ) -> list[list[tuple[list[Span], torch.Tensor]]]:
        """Per document and passage: the character spans of its words and their label log-probabilities
        `(num_words, num_labels)`, each word read at its first token in the window where that token is farthest from
        an edge."""
        passages = [
            (d, self.text_windows(text, group))
            for d, (text, spans) in enumerate(documents)
            for group in self.passage_groups(spans)
        ]
        jobs = [(k, w) for k, (_, pw) in enumerate(passages) for w in range(len(pw.windows)) if pw.windows[w][1] > 0]
        scores: dict[tuple[int, int], torch.Tensor] = {}
        jobs.sort(key=lambda job: passages[job[0]][1].windows[job[1]][1] - passages[job[0]][1].windows[job[1]][0])
        inputs = [self.window_inputs(passages[k][1], passages[k][1].windows[w]) for k, w in jobs]
        token_types = [self.window_token_types(passages[k][1], passages[k][1].windows[w]) for k, w in jobs]
        for batch in self._length_batches([len(ids) for ids in inputs]):
            predictions = self._predict([inputs[i] for i in batch], [token_types[i] for i in batch])
            for index, predicted in zip(batch, predictions, strict=True):
                scores[jobs[index]] = predicted
        result: list[list[tuple[list[Span], torch.Tensor]]] = [[] for _ in documents]
        for k, (d, passage) in enumerate(passages):
            token_scores = [
                scores[(k, w)][low - start : high - start]
                for w, ((start, _), (low, high)) in enumerate(zip(passage.windows, passage.owned, strict=True))
                if (k, w) in scores
            ]
            if not token_scores:
                continue
            sequence_scores = torch.cat(token_scores)
            for start, end in passage.segments:
                if end > start:
                    firsts, spans = word_spans(passage.offsets[start:end], passage.words[start:end])
                    result[d].append((spans, sequence_scores[start:end][firsts]))
        return result

    def _length_batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices of length-sorted windows in batches of at most `batch_size` windows and `max_tokens` padded tokens:
        short windows (titles) are not padded to the length of long ones (abstracts)."""
        batches: list[list[int]] = []
        for index, length in enumerate(lengths):
            if batches and len(batches[-1]) < self.batch_size and length * (len(batches[-1]) + 1) <= self.max_tokens:
                batches[-1].append(index)
            else:
                batches.append([index])
        return batches

    def _predict(self, inputs: list[list[int]], token_types: list[list[int]]) -> list[torch.Tensor]:
        """Label log-probabilities `(num_tokens, num_labels)` of the content tokens (special tokens stripped) of each
        window."""
        width = max(len(ids) for ids in inputs)
        pad = self.tokenizer.pad_token_id or 0
        device = self.model.device
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in inputs], device=device)
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in inputs], device=device)
        extra = {}
        if self.uses_token_types:
            extra["token_type_ids"] = torch.tensor([t + [0] * (width - len(t)) for t in token_types], device=device)
        log_probs = self.model(input_ids=input_ids, attention_mask=mask, **extra).logits.float().log_softmax(-1)
        return [row[1 : len(ids) - 1] for row, ids in zip(log_probs, inputs, strict=True)]


DETECTOR_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
OPTIONAL_DETECTOR_FILES = (DICTIONARY_FILE,)


def find_detector_files(name_or_path: str | os.PathLike, revision: str | None = None, **hub_kwargs) -> Path | None:
    """The `detector/` directory of a checkpoint (downloaded from the Hub for a repo id), or None when it has none."""
    local = Path(name_or_path)
    if local.is_dir():
        return local / DETECTOR_DIR if has_detector(local) else None
    from transformers.utils import cached_file

    first = cached_file(
        str(name_or_path),
        f"{DETECTOR_DIR}/{DETECTOR_FILES[0]}",
        revision=revision,
        _raise_exceptions_for_missing_entries=False,
        **hub_kwargs,
    )
    if first is None:
        return None
    for name in DETECTOR_FILES[1:]:
        cached_file(str(name_or_path), f"{DETECTOR_DIR}/{name}", revision=revision, **hub_kwargs)
    for name in OPTIONAL_DETECTOR_FILES:
        cached_file(
            str(name_or_path),
            f"{DETECTOR_DIR}/{name}",
            revision=revision,
            _raise_exceptions_for_missing_entries=False,
            **hub_kwargs,
        )
    return Path(first).parent


def has_detector(checkpoint: str | os.PathLike) -> bool:
    """Whether a local checkpoint directory holds a saved detector."""
    return (Path(checkpoint) / DETECTOR_DIR / "config.json").is_file()


__all__ = [
    "DETECTOR_DIR",
    "DICTIONARY_FILE",
    "dictionary_tags",
    "MentionDetector",
    "bio_labels",
    "CASE_TYPES",
    "word_case",
    "token_cases",
    "DETECTOR_FILES",
    "decode_labels",
    "find_detector_files",
    "encode_labels",
    "word_spans",
    "has_detector",
    "token_type_count",
    "token_windows",
    "merge_adjacent",
    "trim_entity",
    "viterbi_labels",
    "window_owners",
]
