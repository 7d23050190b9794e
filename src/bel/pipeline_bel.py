"""EntityLinkingPipeline: `pipeline("entity-linking")` from raw text or given spans (Hub-portable core file).

Steps per document: find mentions (unless spans are given) with the checkpoint's learned detector (`detection_bel`,
files under `detector/`) or, without one, the dictionary matcher of `matching_bel`; build the
reranker input with `inputs_bel` (the same path training and evaluation use: abbreviation-expanded retrieval queries,
the checkpoint's [`CandidateRetriever`], sentences, candidate texts), and rerank with
[`BelForMultiCandidateLinking.score`] in the checkpoint's packing mode. Documents of one batch (`batch_size`, default
8) are retrieved and packed together.

Confidence cascade (on unless `config.cascade` is False or the `cascade` parameter turns it off): a mention whose query
exactly matches the names of one KB entity and of no other ([`retriever_decides`]) is linked by the retriever, without
reranking; its `decided_by` is `"retriever"`, and its scores are 1 for that entity and 0 for the other candidates.

Repeated names (`repeated_names`, default `"first"`): the mentions of one document with the same query (case and
spacing ignored) and the same candidates are reranked once, in the first one's sentence, and all take its link and
scores (`consistency_bel`); `"each"` reranks every one in its own sentence.

Scores of reranked mentions are softmax probabilities over one mention's retrieved candidates (they sum to 1 per mention), rounded to 6
decimals so that outputs are byte-stable. A mention is NIL (`entity_id` and `entity_name` None, plus `nil_reason`) when
retrieval found no candidate (`"no_candidates"`) or its best probability is below `nil_threshold` (the pipeline
parameter, else `config.nil_threshold`; `"below_threshold"`).

Only the standard library, torch, transformers, numpy and scipy are imported, so the file ships inside a checkpoint.
"""

from __future__ import annotations

import logging
import math
import re
import time

from transformers import Pipeline

from .backends_bel import apply_backend, check_backend
from .configuration_bel import PACKING_MODES
from .consistency_bel import (
    DEFAULT_REPEATED_NAMES,
    check_repeated_names,
    repeat_groups,
    reranked_mentions,
    share_repeats,
    softmax,
)
from .detection_bel import MentionDetector, find_detector_files
from .inputs_bel import build_linking_input, retrieval_queries, retrieve, retriever_decides
from .matching_bel import MentionMatcher
from .retrieval_bel import RETRIEVER_DIR, RETRIEVER_FILES, CandidateRetriever, find_retriever_files

logger = logging.getLogger(__name__)

Span = tuple[int, int]
DEFAULT_BATCH_SIZE = 8
DETECTORS = ("auto", "model", "dictionary")
ERRORS_OPTIONS = ("raise", "collect")
_SURROGATE = re.compile("[\ud800-\udfff]")


class EntityLinkingPipeline(Pipeline):
    r"""
    Link biomedical entity mentions in raw text (or at given spans) to knowledge-base ids.

    Inputs: a string, a list of strings, `{"text": ..., "mentions": [{"start": s, "end": e}, ...]}` or a list of those
    (a dict may add `"passages": [[s, e], ...]`, e.g. title and abstract: integer pairs, in order, non-overlapping,
    inside the text; every given mention must lie inside one passage). Given spans must satisfy
    `0 <= start < end <= len(text)` with integer (not bool or float) offsets, and a mention's optional `"type"` must be
    a string; overlapping and repeated spans are allowed and each is linked on its own. Text must be valid Unicode: a
    lone surrogate (e.g. from `errors="surrogateescape"` decoding) is refused with its character position. Every input
    (each item of a list) and every parameter is checked before any model work; a bad one raises `ValueError` naming
    the input index and the field (`text`, `mentions`, mention k, `passages`, passage k). Empty or whitespace-only raw
    text gives `[]`.

    Output per input: one dict per mention, in input order (detected mentions: in text order):
    `{"start", "end", "text", "type", "entity_id", "entity_name", "score", "decided_by", "candidates": [{"id", "name",
    "score"}]}`, plus `"nil_reason"` when `entity_id` is None. `decided_by` is `"reranker"`, or `"retriever"` when the
    cascade linked the mention without reranking (or retrieval found no candidate). Offsets index the original text; `text == input[start:end]`.
    `type` is the detector's entity type, or the given mention's `"type"`; None when unknown (dictionary matches).
    With `deterministic=True` scores do not depend on the other documents of a call nor on `batch_size` (see
    [`BelForMultiCandidateLinking.score`]): outputs are byte-identical across batch sizes and input orders, at about
    1.2x the time. By default a few scores may differ by 1e-6 between batch sizes (top-1 unchanged in our tests).

    Parameters (at construction or call): `top_k` (candidates shown, an integer >= 0, default 5), `num_candidates`
    (retrieved and reranked, an integer >= 1, default `config.num_candidates`), `mode` (packing mode, default
    `config.mode`), `nil_threshold` (a finite number >= 0, default `config.nil_threshold`; above 1 every mention is
    NIL), `batch_size` (documents retrieved and reranked together, an integer >= 1, default 8), `detector` (for raw
    text: `"auto"`, the default, uses the checkpoint's learned detector when it has one and the dictionary matcher
    otherwise; `"model"` or `"dictionary"` force one), `errors` (`"raise"`, the default, or `"collect"`),
    `deterministic` (a bool, default False: batch-independent scoring, see above), `cascade` (a bool, default
    `config.cascade`: link unique exact matches without reranking), `type_filter` (a bool, default
    `config.type_filter`, else True: a mention with a type, detected or given, gets candidates of its type's KB branch
    only, when the retriever has entity categories; see `retrieval_bel`), `repeated_names` (`"first"`, `"pool"` or
    `"each"`, default `config.repeated_names`, else `"first"`: mentions of one document that repeat a name, with the
    same query and candidates, are reranked once and share the first one's link, are all reranked and share their
    pooled probabilities, or are each linked on their own; see `consistency_bel`). At construction only: `backend`
    (`"torch"`, the default, or `"int8"`: dynamic int8 linear layers in the encoders of the reranker and the detector;
    `"onnx"` once `bel.onnx_backend` is imported, which `bel.load_linker(..., backend="onnx")` does).

    `stage_seconds` accumulates the seconds spent per stage (`detect`, `retrieve`, `prepare`, `pack`, `forward`,
    `postprocess`) over the pipeline's life; clear it to start a new measurement.

    `errors="collect"` keeps a batch alive when some inputs are bad: each refused input is replaced in the output by
    `{"error": "<the ValueError message, naming its index and field>"}` and every valid input is linked as usual (in
    one pass, as if the refused ones were absent; its result is the same as without them). A single refused input
    (not a list) returns that dict. Only input validation errors are collected: a bad parameter, a model or retriever
    failure still raises. Generators and datasets stream and are checked item by item as they are read: a bad item
    raises whatever `errors` says.

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

    def __init__(
        self,
        *args,
        retriever: CandidateRetriever | None = None,
        detector: MentionDetector | None = None,
        backend: str = "torch",
        **kwargs,
    ) -> None:
        self.backend = check_backend(backend)
        if isinstance(detector, str):  # the `detector` option ("auto", "model", "dictionary"), not a detector object
            kwargs["detector"], detector = detector, None
        batch_size = kwargs.get("batch_size")
        kwargs["batch_size"] = DEFAULT_BATCH_SIZE if batch_size is None else _positive_int(batch_size, "batch_size")
        super().__init__(*args, **kwargs)
        _apply_to_encoder(self.model, self.backend)
        if detector is not None:
            _apply_to_encoder(detector.model, self.backend)
        self._retriever = retriever
        self._matcher: MentionMatcher | None = None
        self._detector = detector
        self._detector_checked = detector is not None
        self.stage_seconds: dict[str, float] = {}

    # ------------------------------------------------------------------ resources
    @property
    def retriever(self) -> CandidateRetriever:
        """The candidate retriever, loaded on first use from the checkpoint's `retriever/` files."""
        if self._retriever is None:
            source = getattr(self.model, "name_or_path", None) or self.model.config._name_or_path
            if not source:
                raise ValueError(
                    "This pipeline has no retriever: pass retriever=CandidateRetriever(...) or load a "
                    "checkpoint directory saved with bel.save_linker."
                )
            try:
                directory = find_retriever_files(source, revision=getattr(self.model.config, "_commit_hash", None))
            except OSError as error:
                raise ValueError(
                    f"{source} has no retriever files ({RETRIEVER_DIR}/{RETRIEVER_FILES[0]}): save the "
                    "checkpoint with bel.save_linker(directory, model, tokenizer, retriever)."
                ) from error
            self._retriever = CandidateRetriever.load(directory)
        return self._retriever

    @property
    def detector(self) -> MentionDetector | None:
        """The learned mention detector of the checkpoint (its `detector/` folder), or None when it has none."""
        if not self._detector_checked:
            self._detector_checked = True
            source = getattr(self.model, "name_or_path", None) or self.model.config._name_or_path
            directory = find_detector_files(source, revision=getattr(self.model.config, "_commit_hash", None))
            self._detector = MentionDetector.from_pretrained(directory) if directory is not None else None
            if self._detector is not None:
                _apply_to_encoder(self._detector.model, self.backend)
        return self._detector

    @property
    def matcher(self) -> MentionMatcher:
        """Dictionary matcher over every KB name of the retriever (built on first raw-text input)."""
        if self._matcher is None:
            self._matcher = MentionMatcher(name for _, name in self.retriever.entity_names())
        return self._matcher

    # ------------------------------------------------------------------ pipeline API
    def _sanitize_parameters(
        self,
        top_k=None,
        num_candidates=None,
        mode=None,
        nil_threshold=None,
        detector=None,
        errors=None,
        deterministic=None,
        cascade=None,
        type_filter=None,
        repeated_names=None,
        **kwargs,
    ):
        if kwargs:
            raise ValueError(
                f"EntityLinkingPipeline got unknown parameters {sorted(kwargs)}; known: top_k, num_candidates, mode, "
                "nil_threshold, detector, batch_size, errors, deterministic, cascade, type_filter, repeated_names "
                "(backend: at construction)."
            )
        pre, forward, post = {}, {}, {}
        if errors is not None:
            pre["errors"] = _check_errors_option(errors)
        if deterministic is not None:
            if not isinstance(deterministic, bool):
                raise ValueError(f"deterministic must be True or False, got {deterministic!r}.")
            forward["deterministic"] = deterministic
        if cascade is not None:
            if not isinstance(cascade, bool):
                raise ValueError(f"cascade must be True or False, got {cascade!r}.")
            forward["cascade"] = cascade
        if type_filter is not None:
            if not isinstance(type_filter, bool):
                raise ValueError(f"type_filter must be True or False, got {type_filter!r}.")
            forward["type_filter"] = type_filter
        if repeated_names is not None:
            forward["repeated_names"] = check_repeated_names(repeated_names)
        if num_candidates is not None:
            forward["num_candidates"] = _positive_int(num_candidates, "num_candidates")
        if mode is not None:
            if mode not in PACKING_MODES:
                raise ValueError(f"mode must be one of {', '.join(PACKING_MODES)}, got {mode!r}.")
            forward["mode"] = mode
        if detector is not None:
            if detector not in DETECTORS:
                raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, got {detector!r}.")
            forward["detector"] = detector
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
                raise ValueError(f"top_k must be an integer >= 0, got {top_k!r}.")
            post["top_k"] = top_k
        if nil_threshold is not None:
            if not _is_number(nil_threshold) or not 0.0 <= nil_threshold < math.inf:
                raise ValueError(f"nil_threshold must be a finite number >= 0 (a probability), got {nil_threshold!r}.")
            post["nil_threshold"] = float(nil_threshold)
        return pre, forward, post

    def __call__(self, inputs, *args, **kwargs):
        """Link `inputs` (see the class docstring); a list in gives a list of per-input results out.

        Every parameter, then every input of a list, is checked before any model work, so a bad one fails fast and
        names its index and field; with `errors="collect"` refused inputs give `{"error": message}` in their place.
        """
        if kwargs.get("batch_size") is not None:
            kwargs["batch_size"] = _positive_int(kwargs["batch_size"], "batch_size")
        call_parameters = {k: v for k, v in kwargs.items() if k not in ("batch_size", "num_workers")}
        preprocess_parameters = self._sanitize_parameters(**call_parameters)[0]  # a bad parameter raises here
        errors = preprocess_parameters.get("errors", self._preprocess_params.get("errors", "raise"))
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        if isinstance(inputs, list):
            return self._call_list(inputs, errors == "collect", *args, **kwargs)
        if isinstance(inputs, str | dict) or not hasattr(inputs, "__iter__"):
            try:
                _parse_input(inputs, 0)
            except ValueError as error:
                if errors == "collect":
                    return {"error": str(error)}
                raise
        return super().__call__(inputs, *args, **kwargs)  # generators and datasets: checked in preprocess

    def _call_list(self, inputs: list, collect: bool, *args, **kwargs) -> list:
        """Check every item, then link the valid ones in one pass; refused ones raise or become `{"error": ...}`."""
        refused: dict[int, dict] = {}
        for index, item in enumerate(inputs):
            try:
                _parse_input(item, index)
            except ValueError as error:
                if not collect:
                    raise
                refused[index] = {"error": str(error)}
        valid = [item for index, item in enumerate(inputs) if index not in refused]
        linked = iter(super().__call__(valid, *args, **kwargs) if valid else [])
        return [refused[index] if index in refused else next(linked) for index in range(len(inputs))]

    def preprocess(self, inputs, errors: str = "raise") -> dict:
        """One input as `{"text", "mentions", "types", "passages"}`; `mentions` is None when they are to be detected
        (detection runs in `_forward`, batched over documents). `errors` is applied in `__call__`."""
        text, mentions, types, passages = _parse_input(inputs)
        return {"text": text, "mentions": mentions, "types": types, "passages": passages}

    def _detect(self, texts: list[str], passages: list[list[Span]], detector: str) -> list[list[tuple]]:
        """Typed mentions `(start, end, type)` of raw documents; per passage, so none crosses a passage boundary."""
        learned = self.detector if detector != "dictionary" else None
        if detector == "model" and learned is None:
            raise ValueError(
                "detector='model' but this checkpoint has no detector/ folder; use detector='dictionary' "
                "or train one with `bel train --stage detector`."
            )
        if learned is not None:
            return learned.detect(list(zip(texts, passages, strict=True)))
        return [
            [
                (start + offset, end + offset, None)
                for offset, stop in doc_passages
                if text[offset:stop].strip()
                for start, end in self.matcher.find(text[offset:stop])
            ]
            for text, doc_passages in zip(texts, passages, strict=True)
        ]

    def _forward(
        self,
        model_inputs: dict,
        num_candidates: int | None = None,
        mode: str | None = None,
        detector: str = "auto",
        deterministic: bool = False,
        cascade: bool | None = None,
        type_filter: bool | None = None,
        repeated_names: str | None = None,
    ) -> dict:
        """Detect (where no spans were given), retrieve and rerank the mentions of one document or a collated batch."""
        batched = not isinstance(model_inputs["text"], str)
        documents = model_inputs if batched else {key: [value] for key, value in model_inputs.items()}
        texts, passages = documents["text"], documents["passages"]
        mentions, types = list(documents["mentions"]), list(documents["types"])
        raw = [d for d, given in enumerate(mentions) if given is None]
        if raw:
            with self._stage("detect"):
                found = self._detect([texts[d] for d in raw], [passages[d] for d in raw], detector)
            for d, entities in zip(raw, found, strict=True):
                mentions[d], types[d] = [(s, e) for s, e, _ in entities], [t for _, _, t in entities]
        cascade = getattr(self.model.config, "cascade", False) if cascade is None else cascade
        type_filter = getattr(self.model.config, "type_filter", True) if type_filter is None else type_filter
        repeated_names = (
            getattr(self.model.config, "repeated_names", DEFAULT_REPEATED_NAMES)
            if repeated_names is None
            else repeated_names
        )
        retrieved, decided = self._retrieve(texts, mentions, num_candidates, cascade, types if type_filter else None)
        logits = [[[] for _ in doc_mentions] for doc_mentions in mentions]
        with self._stage("prepare"):
            groups = [
                _repeat_groups(text, spans, found, done)
                for text, spans, found, done in zip(texts, mentions, retrieved, decided, strict=True)
            ]
            reranked = [
                reranked_mentions(doc_groups, [not done for done in doc_decided], repeated_names)
                for doc_groups, doc_decided in zip(groups, decided, strict=True)
            ]
            scored = [d for d, kept in enumerate(reranked) if any(retrieved[d][m] for m in kept)]
            namespaces = getattr(self.model.config, "candidate_namespace", False)
            linking = [
                build_linking_input(
                    texts[d],
                    mentions[d],
                    retrieved[d],
                    passages=passages[d],
                    keep=reranked[d],
                    namespaces=namespaces,
                )
                for d in scored
            ]
        scores = (
            self.model.score(
                self.tokenizer, linking, mode=mode, batch_independent=deterministic, timings=self.stage_seconds
            )
            if linking
            else []
        )
        for d, doc_scores in zip(scored, scores, strict=True):
            for m, mention_scores in zip(reranked[d], doc_scores, strict=True):
                logits[d][m] = mention_scores
        logits = [
            share_repeats(doc, doc_groups, repeated_names) for doc, doc_groups in zip(logits, groups, strict=True)
        ]
        outputs = {
            "text": texts,
            "mentions": mentions,
            "types": types,
            "retrieved": retrieved,
            "logits": logits,
            "decided": decided,
        }
        return outputs if batched else {key: value[0] for key, value in outputs.items()}

    def _retrieve(self, texts, mentions, num_candidates: int | None, cascade: bool, types=None) -> tuple[list, list]:
        """Candidates per document and mention, and whether the retriever alone decides each mention (the cascade).

        With the cascade on, two candidates are retrieved at least, so that an exact match shared by a second entity
        is seen (and reranked) even when one candidate is asked for. `types[d][m]` (None: no type filter) restricts
        mention m's candidates to its type's KB branch (`inputs_bel.retrieve`)."""
        wanted = num_candidates or self.model.config.num_candidates
        searched = max(wanted, 2) if cascade else wanted
        with self._stage("retrieve"):
            found = retrieve(self.retriever, list(zip(texts, mentions, strict=True)), searched, types=types)
        decided = [[cascade and retriever_decides(c, searched) for c in doc] for doc in found]
        return [[c[:wanted] for c in doc] for doc in found], decided

    def _stage(self, name: str):
        return _StageTimer(self.stage_seconds, name)

    def postprocess(self, model_outputs: dict, top_k: int = 5, nil_threshold: float | None = None) -> list[dict]:
        """Softmax per mention, top-k candidates and NIL decision; see the class docstring for the schema."""
        started = time.perf_counter()
        threshold = nil_threshold if nil_threshold is not None else getattr(self.model.config, "nil_threshold", None)
        text = model_outputs["text"]
        results = [
            _mention_result(text, span, kind, retrieved, logits, decided, top_k, threshold)
            for span, kind, retrieved, logits, decided in zip(
                model_outputs["mentions"],
                model_outputs["types"],
                model_outputs["retrieved"],
                model_outputs["logits"],
                model_outputs.get("decided") or [False] * len(model_outputs["mentions"]),
                strict=True,
            )
        ]
        self.stage_seconds["postprocess"] = self.stage_seconds.get("postprocess", 0.0) + time.perf_counter() - started
        return results


def _repeat_groups(text: str, spans, retrieved, decided) -> list[int]:
    """`consistency_bel.repeat_groups` of one document's reranked mentions (a decided mention is its own group)."""
    queries = retrieval_queries(text, spans)
    ids = [[] if done else [c.entity_id for c in found] for found, done in zip(retrieved, decided, strict=True)]
    return repeat_groups(queries, ids)


def _apply_to_encoder(model, backend: str) -> None:
    """Run `model`'s encoder (its base model) on `backend`; the small heads stay in float, where int8 saves nothing
    and costs precision."""
    apply_backend(getattr(model, "base_model", model), backend)


class _StageTimer:
    """Adds the seconds spent inside a `with` block to `seconds[name]`."""

    def __init__(self, seconds: dict[str, float], name: str) -> None:
        self.seconds, self.name = seconds, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self.seconds[self.name] = self.seconds.get(self.name, 0.0) + time.perf_counter() - self.started


def _mention_result(text, span, kind, retrieved, logits, decided, top_k, threshold) -> dict:
    """One mention's output dict: reranked (softmax over `logits`) or decided by the retriever (one-hot on its top)."""
    start, end = span
    probabilities = [float(c == 0) for c in range(len(retrieved))] if decided else softmax(logits)
    order = sorted(range(len(retrieved)), key=lambda c: (-round(probabilities[c], 6), c))[: max(0, top_k)]
    candidates = [
        {"id": retrieved[c].entity_id, "name": retrieved[c].preferred_name, "score": round(probabilities[c], 6)}
        for c in order
    ]
    best = max(range(len(retrieved)), key=lambda c: (round(probabilities[c], 6), -c)) if retrieved else None
    result = {
        "start": start,
        "end": end,
        "text": text[start:end],
        "type": kind,
        "entity_id": None,
        "entity_name": None,
        "score": round(probabilities[best], 6) if best is not None else None,
        "decided_by": "retriever" if decided or not retrieved else "reranker",
        "candidates": candidates,
    }
    if best is None:
        result["nil_reason"] = "no_candidates"
    elif threshold is not None and probabilities[best] < threshold:
        result["nil_reason"] = "below_threshold"
    else:
        result["entity_id"] = retrieved[best].entity_id
        result["entity_name"] = retrieved[best].preferred_name
    return result


def _where(index: int | None) -> str:
    return "input" if index is None else f"input {index}"


def _parse_input(item, index: int | None = None) -> tuple[str, list[Span] | None, list | None, list[Span]]:
    """`(text, given mentions or None, their types or None, passages)` of one pipeline input, or a ValueError naming
    the input index and the field that is wrong."""
    where = _where(index)
    if isinstance(item, str):
        _check_text(item, where)
        return item, None, None, [(0, len(item))]
    if not isinstance(item, dict):
        raise ValueError(
            f"{where}: expected a string or a dict with 'text' (and optional 'mentions'), got {type(item).__name__}."
        )
    text = item.get("text")
    if not isinstance(text, str):
        raise ValueError(f"{where}: a dict input needs a string 'text', got {type(text).__name__}.")
    _check_text(text, where)
    passages = _check_passages(item.get("passages"), text, where)
    given = item.get("mentions")
    if given is None:
        return text, None, None, passages
    if not isinstance(given, list | tuple):
        raise ValueError(f"{where}: 'mentions' must be a list of {{'start': s, 'end': e}}, got {type(given).__name__}.")
    mentions = [_check_span(mention, k, text, where) for k, mention in enumerate(given)]
    for k, (start, end) in enumerate(mentions):
        if not any(p_start <= start and end <= p_end for p_start, p_end in passages):
            raise ValueError(
                f"{where}, mention {k} ({start}, {end}): the span is not inside one passage of {passages}; "
                "a mention may not cross a passage boundary or lie outside every passage."
            )
    return text, mentions, [_check_type(mention, k, where) for k, mention in enumerate(given)], passages


def _check_text(text: str, where: str) -> None:
    """Refuse lone surrogates: no tokenizer can encode them, and JSON output of them is not valid UTF-8."""
    bad = _SURROGATE.search(text)
    if bad is not None:
        raise ValueError(
            f"{where}, 'text': lone surrogate U+{ord(bad.group()):04X} at character {bad.start()}; text must be valid "
            "Unicode (decode the source with errors='replace', or fix the bytes it came from)."
        )


def _check_type(mention, position: int, where: str) -> str | None:
    kind = mention.get("type") if isinstance(mention, dict) else None
    if kind is not None and not isinstance(kind, str):
        raise ValueError(f"{where}, mention {position}: 'type' must be a string or absent, got {kind!r}.")
    return kind


def _check_passages(passages, text: str, where: str) -> list[Span]:
    if passages is None:
        return [(0, len(text))]
    if not isinstance(passages, list | tuple) or not passages:
        raise ValueError(f"{where}: 'passages' must be a non-empty list of [start, end] pairs, got {passages!r}.")
    spans = []
    for k, passage in enumerate(passages):
        if not isinstance(passage, list | tuple) or len(passage) != 2 or not all(_is_int(x) for x in passage):
            raise ValueError(f"{where}, passage {k}: expected [start, end] integers, got {passage!r}.")
        start, end = passage
        if start > end:
            raise ValueError(f"{where}, passage {k} ({start}, {end}): the passage is reversed (start > end).")
        if start < 0 or end > len(text):
            raise ValueError(
                f"{where}, passage {k} ({start}, {end}): the passage is outside the text (length {len(text)})."
            )
        if spans and start < spans[-1][1]:
            raise ValueError(f"{where}, passage {k} ({start}, {end}): passages must be in order and must not overlap.")
        spans.append((start, end))
    return spans


def _check_span(mention, position: int, text: str, where: str) -> Span:
    try:
        start, end = (mention["start"], mention["end"]) if isinstance(mention, dict) else mention
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}, mention {position}: expected {{'start': s, 'end': e}}, got {mention!r}.") from None
    if not _is_int(start) or not _is_int(end):
        raise ValueError(f"{where}, mention {position}: start/end must be integers, got {mention!r}.")
    if start > end:
        raise ValueError(f"{where}, mention {position} ({start}, {end}): the span is reversed (start > end).")
    if start < 0 or end > len(text):
        raise ValueError(
            f"{where}, mention {position} ({start}, {end}): the span is outside the text "
            f"(length {len(text)}); offsets are 0-based character indices with end exclusive."
        )
    if start == end:
        raise ValueError(
            f"{where}, mention {position} ({start}, {end}): zero-length span; a mention needs at least one character."
        )
    return (start, end)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_errors_option(errors) -> str:
    if errors not in ERRORS_OPTIONS:
        raise ValueError(f"errors must be one of {', '.join(map(repr, ERRORS_OPTIONS))}, got {errors!r}.")
    return errors


def _positive_int(value, name: str) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    return value


__all__ = ["EntityLinkingPipeline"]
