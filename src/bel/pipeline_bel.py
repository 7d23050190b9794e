"""EntityLinkingPipeline: `pipeline("entity-linking")` from raw text or given spans (Hub-portable core file).

Steps per document: find mentions (unless spans are given) by longest case-insensitive dictionary match of the KB names
at word boundaries, retrieve candidates with the checkpoint's [`CandidateRetriever`] (files under `retriever/`), and
rerank them with [`BelForMultiCandidateLinking.score`] in the checkpoint's packing mode.

Scores are softmax probabilities over one mention's retrieved candidates (they sum to 1 per mention), rounded to 6
decimals so that outputs are byte-stable. A mention is NIL (`entity_id` and `entity_name` None, plus `nil_reason`) when
retrieval found no candidate (`"no_candidates"`) or its best probability is below `nil_threshold` (the pipeline
parameter, else `config.nil_threshold`; `"below_threshold"`).

Only the standard library, torch, transformers, numpy and scipy are imported, so the file ships inside a checkpoint.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from transformers import Pipeline

from .retrieval_bel import (
    RETRIEVER_DIR,
    RETRIEVER_FILES,
    CandidateRetriever,
    expand_abbreviations,
    find_abbreviations,
    find_retriever_files,
)
from .tokenization_bel import LinkingInput, simple_sentence_spans

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"\w+|[^\w\s]")
Span = tuple[int, int]
_FUNCTION_WORDS = (
    "a an and are as at be but by can did do for from had has have he her his i if in into is it its may "
    "no not of on or our she so that the their them then there these they this to up was we were which "
    "who will with you"
)


def candidate_text(name: str, preferred_name: str) -> str:
    """Text the reranker reads for a candidate: the matched KB name, plus `(preferred name)` when it differs.

    Must equal `bel.examples.candidate_text` (what training shows the model).

    >>> candidate_text("breast cancer", "Breast Neoplasms")
    'breast cancer (Breast Neoplasms)'
    """
    if preferred_name and preferred_name.lower() != name.lower():
        return f"{name} ({preferred_name})"
    return name


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
            if not tokens or len(name) < min_length or (len(tokens) == 1 and tokens[0] in self.STOPWORDS
                                                        and not acronym):
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


def sentence_spans(text: str, mentions: Sequence[Span], start: int = 0, end: int | None = None) -> list[Span]:
    """Rule-based sentences of `text[start:end]`, merged so that no mention crosses a sentence boundary."""
    spans = simple_sentence_spans(text, start, end)
    joined = [False] * len(spans)  # joined[i]: sentence i is glued to sentence i - 1
    starts = [s for s, _ in spans]
    for ms, me in mentions:
        first = max(bisect.bisect_right(starts, ms) - 1, 0)
        for i in range(first + 1, len(spans)):
            if spans[i - 1][1] >= me:
                break
            joined[i] = True
    merged: list[list[int]] = []
    for (s, e), glue in zip(spans, joined, strict=True):
        if glue and merged:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


class EntityLinkingPipeline(Pipeline):
    r"""
    Link biomedical entity mentions in raw text (or at given spans) to knowledge-base ids.

    Inputs: a string, a list of strings, `{"text": ..., "mentions": [{"start": s, "end": e}, ...]}` or a list of those
    (a dict may add `"passages": [[s, e], ...]`, e.g. title and abstract). Given spans must satisfy
    `0 <= start < end <= len(text)`; overlapping and repeated spans are allowed and each is linked on its own.
    Bad input raises `ValueError` naming the input index and the mention. Empty or whitespace-only raw text gives `[]`.

    Output per input: one dict per mention, in input order (detected mentions: in text order):
    `{"start", "end", "text", "entity_id", "entity_name", "score", "candidates": [{"id", "name", "score"}]}`, plus
    `"nil_reason"` when `entity_id` is None. Offsets index the original text; `text == input[start:end]`.

    Parameters (at construction or call): `top_k` (candidates shown, default 5), `num_candidates` (retrieved and
    reranked, default `config.num_candidates`), `mode` (packing mode, default `config.mode`), `nil_threshold`
    (default `config.nil_threshold`), `batch_size` (documents reranked together, default 8).

    Example:

    ```python
    >>> from transformers import pipeline
    >>> linker = pipeline("entity-linking", model="path/to/checkpoint", trust_remote_code=True)  # doctest: +SKIP
    >>> linker("Varicella causes fever.")[0]["entity_id"]  # doctest: +SKIP
    'MESH:D002644'
    ```
    """

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False

    def __init__(self, *args, retriever: CandidateRetriever | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._retriever = retriever
        self._matcher: MentionMatcher | None = None

    # ------------------------------------------------------------------ resources
    @property
    def retriever(self) -> CandidateRetriever:
        """The candidate retriever, loaded on first use from the checkpoint's `retriever/` files."""
        if self._retriever is None:
            source = getattr(self.model, "name_or_path", None) or self.model.config._name_or_path
            if not source:
                raise ValueError("This pipeline has no retriever: pass retriever=CandidateRetriever(...) or load a "
                                 "checkpoint directory saved with bel.save_linker.")
            try:
                directory = find_retriever_files(source, revision=getattr(self.model.config, "_commit_hash", None))
            except OSError as error:
                raise ValueError(f"{source} has no retriever files ({RETRIEVER_DIR}/{RETRIEVER_FILES[0]}): save the "
                                 f"checkpoint with bel.save_linker(directory, model, tokenizer, retriever).") from error
            self._retriever = CandidateRetriever.load(directory)
        return self._retriever

    @property
    def matcher(self) -> MentionMatcher:
        """Dictionary matcher over every KB name of the retriever (built on first raw-text input)."""
        if self._matcher is None:
            self._matcher = MentionMatcher(name for _, name in self.retriever.entity_names())
        return self._matcher

    # ------------------------------------------------------------------ pipeline API
    def _sanitize_parameters(self, top_k=None, num_candidates=None, mode=None, nil_threshold=None, batch_size=None,
                             **kwargs):
        if kwargs:
            raise ValueError(f"EntityLinkingPipeline got unknown parameters {sorted(kwargs)}; known: top_k, "
                             "num_candidates, mode, nil_threshold, batch_size.")
        forward, post = {}, {}
        if num_candidates is not None:
            forward["num_candidates"] = int(num_candidates)
        if mode is not None:
            forward["mode"] = mode
        if batch_size is not None:
            forward["batch_size"] = int(batch_size)
        if top_k is not None:
            post["top_k"] = int(top_k)
        if nil_threshold is not None:
            post["nil_threshold"] = float(nil_threshold)
        return {}, forward, post

    def __call__(self, inputs, **kwargs):
        """Link `inputs` (see the class docstring); a list in gives a list of per-input results out."""
        _, forward, post = self._sanitize_parameters(**kwargs)
        forward, post = {**self._forward_params, **forward}, {**self._postprocess_params, **post}
        single = isinstance(inputs, (str, dict))
        items = [inputs] if single else list(inputs)
        batch_size = max(1, forward.pop("batch_size", 8))
        results = []
        for begin in range(0, len(items), batch_size):
            prepared = [self.preprocess(item, index=begin + k) for k, item in enumerate(items[begin : begin + batch_size])]
            outputs = self._forward_many(prepared, **forward)
            results.extend(self.postprocess(output, **post) for output in outputs)
        return results[0] if single else results

    def preprocess(self, inputs, index: int = 0) -> dict:
        """Validate one input and find its mentions: `{"text", "mentions": [(start, end)], "passages"}`."""
        if isinstance(inputs, str):
            text, given, passages = inputs, None, None
        elif isinstance(inputs, dict):
            if not isinstance(inputs.get("text"), str):
                raise ValueError(f"input {index}: a dict input needs a string 'text', got {type(inputs.get('text'))}.")
            text, given, passages = inputs["text"], inputs.get("mentions"), inputs.get("passages")
        else:
            raise ValueError(f"input {index}: expected a string or a dict with 'text' (and optional 'mentions'), got "
                             f"{type(inputs).__name__}.")
        if given is None:
            mentions = self.matcher.find(text) if text.strip() else []
        else:
            mentions = [_check_span(m, k, text, index) for k, m in enumerate(given)]
        spans = [(int(s), int(e)) for s, e in passages] if passages else [(0, len(text))]
        return {"text": text, "mentions": mentions, "passages": spans}

    def _forward(self, model_inputs: dict, **forward) -> dict:
        return self._forward_many([model_inputs], **forward)[0]

    def _forward_many(self, documents: list[dict], num_candidates: int | None = None, mode: str | None = None) -> list:
        """Retrieve candidates for every mention of `documents` and rerank them in one batched `model.score` call."""
        num_candidates = num_candidates or self.model.config.num_candidates
        for doc in documents:  # retrieve with the short forms the document defines expanded, as in training
            defined = find_abbreviations(doc["text"])
            doc["queries"] = [expand_abbreviations(doc["text"][s:e], defined) for s, e in doc["mentions"]]
        strings = sorted({query for doc in documents for query in doc["queries"]})
        found = dict(zip(strings, self.retriever.search(strings, top_k=num_candidates), strict=True)) if strings else {}
        inputs, owners = [], []
        for d, doc in enumerate(documents):
            doc["retrieved"] = [found[query] for query in doc.pop("queries")]
            keep = [m for m, cands in enumerate(doc["retrieved"]) if cands]
            if not keep:
                doc["logits"] = [[] for _ in doc["mentions"]]
                continue
            mentions = [doc["mentions"][m] for m in keep]
            sentences = [s for p in doc["passages"] for s in sentence_spans(doc["text"], mentions, *p)]
            inputs.append(LinkingInput(
                text=doc["text"], mentions=mentions, sentences=sentences or None, passages=doc["passages"],
                candidates=[[candidate_text(c.name, c.preferred_name) for c in doc["retrieved"][m]] for m in keep],
                candidate_scores=[[c.score for c in doc["retrieved"][m]] for m in keep]))
            owners.append((d, keep))
        scores = self.model.score(self.tokenizer, inputs, mode=mode) if inputs else []
        for (d, keep), doc_scores in zip(owners, scores, strict=True):
            logits = [[] for _ in documents[d]["mentions"]]
            for m, mention_scores in zip(keep, doc_scores, strict=True):
                logits[m] = mention_scores
            documents[d]["logits"] = logits
        return documents

    def postprocess(self, model_outputs: dict, top_k: int = 5, nil_threshold: float | None = None) -> list[dict]:
        """Softmax per mention, top-k candidates and NIL decision; see the class docstring for the schema."""
        threshold = nil_threshold if nil_threshold is not None else getattr(self.model.config, "nil_threshold", None)
        text, results = model_outputs["text"], []
        for (start, end), retrieved, logits in zip(
            model_outputs["mentions"], model_outputs["retrieved"], model_outputs["logits"], strict=True
        ):
            probabilities = _softmax(logits)
            order = sorted(range(len(retrieved)), key=lambda c: (-round(probabilities[c], 6), c))[: max(0, top_k)]
            candidates = [{"id": retrieved[c].entity_id, "name": retrieved[c].preferred_name,
                           "score": round(probabilities[c], 6)} for c in order]
            best = max(range(len(retrieved)), key=lambda c: (round(probabilities[c], 6), -c)) if retrieved else None
            result = {"start": start, "end": end, "text": text[start:end], "entity_id": None, "entity_name": None,
                      "score": round(probabilities[best], 6) if best is not None else None, "candidates": candidates}
            if best is None:
                result["nil_reason"] = "no_candidates"
            elif threshold is not None and probabilities[best] < threshold:
                result["nil_reason"] = "below_threshold"
            else:
                result["entity_id"] = retrieved[best].entity_id
                result["entity_name"] = retrieved[best].preferred_name
            results.append(result)
        return results


def _softmax(logits: Sequence[float]) -> list[float]:
    if not logits:
        return []
    peak = max(logits)
    exps = [math.exp(x - peak) for x in logits]
    total = sum(exps)
    return [x / total for x in exps]


def _check_span(mention, position: int, text: str, index: int) -> Span:
    try:
        start, end = (mention["start"], mention["end"]) if isinstance(mention, dict) else mention
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"input {index}, mention {position}: expected {{'start': s, 'end': e}}, got {mention!r}.") from None
    if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(end, int):
        raise ValueError(f"input {index}, mention {position}: start/end must be integers, got {mention!r}.")
    if start > end:
        raise ValueError(f"input {index}, mention {position} ({start}, {end}): the span is reversed (start > end).")
    if start < 0 or end > len(text):
        raise ValueError(f"input {index}, mention {position} ({start}, {end}): the span is outside the text "
                         f"(length {len(text)}); offsets are 0-based character indices with end exclusive.")
    if start == end:
        raise ValueError(f"input {index}, mention {position} ({start}, {end}): zero-length span; a mention needs "
                         "at least one character.")
    return (start, end)


__all__ = ["EntityLinkingPipeline", "MentionMatcher", "candidate_text", "sentence_spans"]
