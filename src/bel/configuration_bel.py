"""Configuration of bel's multi-candidate cross-encoder."""

from __future__ import annotations

from transformers import AutoConfig, BertConfig, PreTrainedConfig

from .consistency_bel import REPEATED_NAMES_MODES

PACKING_MODES = ("pair", "mention", "sentence", "passage", "document")
TEMPLATES = ("paper", "compact")
LOSSES = ("listwise", "pointwise")
SLOT_POOLINGS = ("mask", "span")
BEL_VERSION = "0.1.0"


class BelConfig(PreTrainedConfig):
    r"""
    Configuration of a [`BelForMultiCandidateLinking`] model: a BERT-family encoder (its config nested under `encoder`)
    that reads a mention in context next to candidate entity names and scores every candidate at a `[MASK]` slot.

    Args:
        encoder (`PreTrainedConfig` or `dict`, *optional*):
            Config of the wrapped encoder (any BERT-family model: BERT, RoBERTa, MiniLM, BiomedBERT, SapBERT...).
            A dict must carry a `model_type`. Defaults to a `bert-base` config.
        mode (`str`, *optional*, defaults to `"mention"`):
            How (mention, candidate) pairs are packed into sequences: `"pair"` (one pair per sequence, the classic
            cross-encoder), `"mention"` (one mention and all its candidates), `"sentence"`, `"passage"` or
            `"document"` (every mention of that unit with all their candidates).
        num_candidates (`int`, *optional*, defaults to 16):
            Candidates per mention proposed by the retriever and scored by the model.
        max_sequence_length (`int`, *optional*, defaults to 512):
            Longest packed sequence in tokens. Longer inputs are split into several sequences, never truncated away.
        context_length (`int`, *optional*, defaults to 64):
            Tokens of local context around the mentions of a sequence (their sentences, widened or narrowed to this).
        template (`str`, *optional*, defaults to `"paper"`):
            `"paper"` repeats the mention before every candidate (`m [MASK] name [SEP]`); `"compact"` states it once
            per group of candidate slots (`m [MASK] name1 [MASK] name2 ... [SEP]`).
        loss (`str`, *optional*, defaults to `"listwise"`):
            `"listwise"` (softmax over one mention's candidates) or `"pointwise"` (binary cross-entropy per slot).
        nil_threshold (`float`, *optional*):
            A mention whose best candidate's probability (softmax over that mention's candidates) is below this
            threshold is NIL (no KB entry). `None` never predicts NIL.
        use_retrieval_score (`bool`, *optional*, defaults to `False`):
            Add the retriever's score of each candidate, times a learned weight, to its logit.
        retrieval_score_init (`float`, *optional*, defaults to 10.0):
            Initial value of that weight. With retrieval scores on, the scorer starts at zero, so an untrained model
            ranks exactly as the retriever does and this weight only sets how peaked its softmax is.
        slot_pooling (`str`, *optional*, defaults to `"mask"`):
            What the scorer reads for a slot: `"mask"`, the hidden state at its `[MASK]` (the paper's), or `"span"`,
            the mean of the hidden states of the `[MASK]` and the candidate name after it. `"span"` gives each slot a
            distinct starting representation and learns much faster from a sentence-embedding encoder such as MiniLM.
        cascade (`bool`, *optional*, defaults to `True`):
            Confidence cascade at inference: a mention whose query exactly matches the names of one KB entity and of no
            other is linked by the retriever without reranking (`inputs_bel.retriever_decides`); the reranker scores
            the rest. Training is unaffected.
        repeated_names (`str`, *optional*, defaults to `"first"`):
            What the reranker does with mentions of one document that repeat a name (same abbreviation-expanded query,
            same candidates; `consistency_bel`): `"first"` reranks the first and gives the others its link, `"pool"`
            reranks all and gives them their mean probabilities, `"each"` links every one alone.
        candidate_namespace (`bool`, *optional*, defaults to `False`):
            Show each candidate's identifier namespace (its id up to the first digit, e.g. `OMIM`, `MESH:D`, `MESH:C`,
            `HP`) before its name, so the reranker can learn which vocabulary a corpus annotates with when several
            share a name (MEDIC lists many diseases under a MeSH and an OMIM id).
        scorer_dropout (`float`, *optional*, defaults to 0.1):
            Dropout on the slot hidden states before the scorer.
        bel_version (`str`, *optional*):
            Version of the `bel` package that saved the checkpoint.

    Example:

    ```python
    >>> from transformers import BertConfig
    >>> from bel import BelConfig, BelForMultiCandidateLinking

    >>> encoder = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    >>> config = BelConfig(encoder=encoder, mode="sentence", num_candidates=8)
    >>> model = BelForMultiCandidateLinking(config)
    >>> model.config.encoder.hidden_size
    32
    ```
    """

    model_type = "bel"

    def __init__(
        self,
        encoder: PreTrainedConfig | dict | None = None,
        mode: str = "mention",
        num_candidates: int = 16,
        max_sequence_length: int = 512,
        context_length: int = 64,
        template: str = "paper",
        loss: str = "listwise",
        nil_threshold: float | None = None,
        use_retrieval_score: bool = False,
        retrieval_score_init: float = 10.0,
        slot_pooling: str = "mask",
        scorer_dropout: float = 0.1,
        cascade: bool = True,
        repeated_names: str = "first",
        candidate_namespace: bool = False,
        bel_version: str | None = None,
        **kwargs,
    ):
        if isinstance(encoder, dict):
            encoder = dict(encoder)
            if "model_type" not in encoder:
                raise ValueError("BelConfig(encoder=dict) needs a 'model_type' key, e.g. {'model_type': 'bert', ...}.")
            encoder = AutoConfig.for_model(**encoder)
        elif encoder is None:
            encoder = BertConfig()
        self.encoder = encoder
        self.mode = _checked_choice("mode", mode, PACKING_MODES)
        self.template = _checked_choice("template", template, TEMPLATES)
        self.loss = _checked_choice("loss", loss, LOSSES)
        self.slot_pooling = _checked_choice("slot_pooling", slot_pooling, SLOT_POOLINGS)
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {num_candidates}.")
        if max_sequence_length < 32:
            raise ValueError(f"max_sequence_length must be >= 32 tokens, got {max_sequence_length}.")
        self.num_candidates = num_candidates
        self.max_sequence_length = max_sequence_length
        self.context_length = context_length
        self.nil_threshold = nil_threshold
        self.use_retrieval_score = use_retrieval_score
        self.retrieval_score_init = retrieval_score_init
        self.scorer_dropout = scorer_dropout
        self.cascade = bool(cascade)
        self.repeated_names = _checked_choice("repeated_names", repeated_names, REPEATED_NAMES_MODES)
        self.candidate_namespace = bool(candidate_namespace)
        self.bel_version = bel_version or BEL_VERSION
        super().__init__(**kwargs)

    def to_dict(self) -> dict:
        output = super().to_dict()
        if isinstance(self.encoder, PreTrainedConfig):
            output["encoder"] = self.encoder.to_dict()
        return output

    def to_diff_dict(self) -> dict:
        output = super().to_diff_dict()
        output["encoder"] = self.encoder.to_diff_dict()
        return output


def _checked_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """``value``, once it is known to be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"BelConfig({name}={value!r}) is not one of {', '.join(choices)}.")
    return value
