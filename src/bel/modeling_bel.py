"""BelForMultiCandidateLinking: a cross-encoder that scores many (mention, candidate) pairs in one pass."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_bel import BelConfig


@dataclass
class BelLinkingOutput(ModelOutput):
    r"""
    Output of [`BelForMultiCandidateLinking`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is provided):
            Listwise (softmax over each mention's candidates) or pointwise (binary cross-entropy) loss.
        logits (`torch.FloatTensor` of shape `(batch_size, num_slots)`):
            One score per slot; padded slots (`slot_mask` False) hold the dtype's minimum.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            The encoder's hidden states, when `output_hidden_states=True`.
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            The encoder's attentions, when `output_attentions=True`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class BelPreTrainedModel(PreTrainedModel):
    config_class = BelConfig
    config: BelConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, BelForMultiCandidateLinking):
            if module.retrieval_weight is not None:
                # start exactly at the retriever's ranking: the scorer adds nothing until training moves it
                init.constant_(module.retrieval_weight, float(self.config.retrieval_score_init))
                init.zeros_(module.scorer.weight)
                init.zeros_(module.scorer.bias)
            return
        encoder = getattr(self, "encoder", None)
        if encoder is not None and hasattr(encoder, "_init_weights"):
            encoder._init_weights(module)
        else:
            super()._init_weights(module)


class BelForMultiCandidateLinking(BelPreTrainedModel):
    r"""
    A BERT-family encoder with a linear scorer on every candidate slot: the hidden state at its `[MASK]`, or the mean
    over the `[MASK]` and the candidate name after it (`config.slot_pooling`).

    The packing mode (pair, mention, sentence, passage, document) only changes how [`BelTokenizer.pack`] lays pairs out
    in sequences; the same weights serve every mode.

    Example:

    ```python
    >>> import torch
    >>> from transformers import BertConfig
    >>> from bel import BelConfig, BelForMultiCandidateLinking

    >>> config = BelConfig(encoder=BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
    ...                                       num_attention_heads=2, intermediate_size=37))
    >>> model = BelForMultiCandidateLinking(config)
    >>> input_ids = torch.randint(5, 100, (2, 24))
    >>> slot_positions = torch.tensor([[10, 15], [12, 0]])
    >>> slot_mask = torch.tensor([[True, True], [True, False]])
    >>> model(input_ids=input_ids, slot_positions=slot_positions, slot_mask=slot_mask).logits.shape
    torch.Size([2, 2])
    ```
    """

    def __init__(self, config: BelConfig):
        super().__init__(config)
        self.encoder = _build_encoder(config.encoder)
        self.dropout = nn.Dropout(config.scorer_dropout)
        self.scorer = nn.Linear(config.encoder.hidden_size, 1)
        self.retrieval_weight = nn.Parameter(torch.ones(())) if config.use_retrieval_score else None
        self.post_init()

    @classmethod
    def from_encoder(
        cls, encoder_name_or_path: str | os.PathLike, tokenizer=None, **config_kwargs
    ) -> BelForMultiCandidateLinking:
        """Start a fresh model from pretrained encoder weights (a local directory or a Hub id).

        Pass the [`BelTokenizer`] built on the same encoder so the embeddings grow to hold the mention markers.
        """
        encoder = AutoModel.from_pretrained(encoder_name_or_path)
        model = cls(BelConfig(encoder=encoder.config, **config_kwargs))
        missing, unexpected = model.encoder.load_state_dict(encoder.state_dict(), strict=False)
        if [k for k in missing if "position_ids" not in k]:
            raise ValueError(f"Encoder weights from {encoder_name_or_path} lack {missing[:5]}...")
        if tokenizer is not None and len(tokenizer) > model.config.encoder.vocab_size:
            model.resize_token_embeddings(len(tokenizer))
        model.config.encoder._name_or_path = str(encoder_name_or_path)
        return model

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.encoder.set_input_embeddings(value)

    def resize_token_embeddings(self, new_num_tokens: int | None = None, **kwargs):
        embeddings = self.encoder.resize_token_embeddings(new_num_tokens, **kwargs)
        self.config.encoder.vocab_size = embeddings.weight.shape[0]
        return embeddings

    @torch.no_grad()
    def score(
        self,
        tokenizer,
        documents,
        mode: str | None = None,
        template: str | None = None,
        max_tokens: int = 2048,
        max_batch_size: int = 256,
        batch_independent: bool = False,
        timings: dict[str, float] | None = None,
    ) -> list[list[list[float]]]:
        """Score every candidate of every mention of `documents` (a list of [`LinkingInput`]).

        Sequences are packed in `mode` (default: the config's), sorted by length and batched up to `max_tokens`
        padded tokens (dynamic padding), so `pair` mode is a strong baseline, not a strawman. CPU kernels sum in an
        order that depends on the padded length and the number of rows, so a few scores move in the last bits with the
        other documents of a call: 38 of 2,380 probabilities rounded to 6 decimals (by 1e-6; no top-1 change) on 50
        NCBI test abstracts between batch sizes 1 and 3. With `batch_independent`, every sequence is encoded in a
        batch whose shape depends only on its own length ([`fixed_shape_batches`]): a document's scores are then
        bit-identical whatever it is scored with, for a given machine and thread count, at about 1.2x the time
        (whole pipeline, 40 NCBI test abstracts, one thread).

        `timings`, when given, accumulates seconds under `"pack"` (building the sequences) and `"forward"` (padding,
        the encoder and the scorer).

        Returns `scores[document][mention][candidate]`, aligned with each document's `candidates`.
        """
        started = time.perf_counter()
        sequences = tokenizer.pack(
            documents,
            mode=mode or self.config.mode,
            max_length=self.config.max_sequence_length,
            context_length=self.config.context_length,
            template=template or self.config.template,
        )
        scores = [[[0.0] * len(cands) for cands in doc.candidates] for doc in documents]
        packed = time.perf_counter()
        if batch_independent:
            batches = fixed_shape_batches(sequences, max_tokens)
        else:
            batches = [(batch, None) for batch in length_batches(sequences, max_tokens, max_batch_size)]
        for batch, shape in batches:
            rows = batch if shape is None else batch + [batch[-1]] * (shape[0] - len(batch))  # filler rows: dropped
            padded = tokenizer.pad_packed(rows, pad_to_multiple_of=None if shape is None else shape[1])
            if shape is not None:  # the slot dimension too: the pooling and scorer shapes must not vary either
                padded = _pad_slots(padded, shape[1])
            inputs = {k: v.to(self.device) for k, v in padded.items() if k != "labels"}
            logits = self(**inputs).logits.float().cpu()
            for row, seq in enumerate(batch):
                for k, (d, m, c) in enumerate(
                    zip(seq["slot_document"], seq["slot_mention"], seq["slot_candidate"], strict=True)
                ):
                    scores[d][m][c] = logits[row, k].item()
        if timings is not None:
            timings["pack"] = timings.get("pack", 0.0) + packed - started
            timings["forward"] = timings.get("forward", 0.0) + time.perf_counter() - packed
        return scores

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        slot_positions: torch.LongTensor | None = None,
        slot_ends: torch.LongTensor | None = None,
        slot_mask: torch.BoolTensor | None = None,
        slot_groups: torch.LongTensor | None = None,
        retrieval_scores: torch.FloatTensor | None = None,
        labels: torch.FloatTensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> BelLinkingOutput:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                Packed sequences from [`BelTokenizer.pad_packed`].
            attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 for real tokens, 0 for padding.
            token_type_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                0 for the context, 1 for candidate blocks; ignored by encoders with a single token type.
            slot_positions (`torch.LongTensor` of shape `(batch_size, num_slots)`):
                Index of each candidate slot (`[MASK]`) in its sequence.
            slot_ends (`torch.LongTensor` of shape `(batch_size, num_slots)`, *optional*):
                Exclusive end of the candidate name after each slot; needed when `config.slot_pooling == "span"`.
            slot_mask (`torch.BoolTensor` of shape `(batch_size, num_slots)`, *optional*):
                True for real slots, False for padding.
            slot_groups (`torch.LongTensor` of shape `(batch_size, num_slots)`, *optional*):
                Id of the mention each slot belongs to (unique within the batch); the listwise loss normalises over a
                group. Defaults to one group per sequence.
            retrieval_scores (`torch.FloatTensor` of shape `(batch_size, num_slots)`, *optional*):
                The retriever's score of each candidate, used when `config.use_retrieval_score`.
            labels (`torch.FloatTensor` of shape `(batch_size, num_slots)`, *optional*):
                1 for a gold candidate, 0 otherwise.
        """
        if input_ids is None or slot_positions is None:
            raise ValueError("BelForMultiCandidateLinking needs input_ids and slot_positions (see BelTokenizer.pack).")
        if slot_mask is None:
            slot_mask = torch.ones_like(slot_positions, dtype=torch.bool)
        flags = {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions}
        if token_type_ids is not None and getattr(self.config.encoder, "type_vocab_size", 1) > 1:
            flags["token_type_ids"] = token_type_ids
        outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **flags)
        slot_hidden = self._pool_slots(outputs.last_hidden_state, slot_positions, slot_ends)
        logits = self._score_slots(slot_hidden, retrieval_scores)
        logits = logits.masked_fill(~slot_mask, torch.finfo(logits.dtype).min)
        loss = None
        if labels is not None:
            if slot_groups is None:  # one group per sequence
                slot_groups = torch.arange(slot_positions.size(0), device=slot_positions.device)[:, None]
                slot_groups = slot_groups.expand_as(slot_positions)
            loss = slot_loss(logits, labels, slot_mask, slot_groups, self.config.loss)
        return BelLinkingOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )

    def _score_slots(self, slot_hidden: torch.Tensor, retrieval_scores: torch.Tensor | None) -> torch.Tensor:
        """One logit per slot `(batch_size, num_slots)`: the scorer, plus the weighted retrieval score when used."""
        logits = self.scorer(self.dropout(slot_hidden)).squeeze(-1)
        if self.retrieval_weight is None:
            return logits
        if retrieval_scores is None:
            raise ValueError("This checkpoint uses retrieval scores (config.use_retrieval_score): pass them.")
        return logits + self.retrieval_weight * retrieval_scores.to(logits.dtype)

    def _pool_slots(
        self, hidden: torch.Tensor, slot_positions: torch.LongTensor, slot_ends: torch.LongTensor | None
    ) -> torch.Tensor:
        """`(batch_size, num_slots, hidden_size)`: the `[MASK]` state, or the mean over `[MASK]` + candidate name."""
        if self.config.slot_pooling == "mask":
            index = slot_positions.unsqueeze(-1).expand(-1, -1, hidden.size(-1))
            return torch.gather(hidden, 1, index)
        if slot_ends is None:
            raise ValueError('config.slot_pooling="span" needs slot_ends: pass the output of BelTokenizer.pad_packed.')
        steps = torch.arange(hidden.size(1), device=hidden.device)
        inside = (steps >= slot_positions.unsqueeze(-1)) & (steps < slot_ends.unsqueeze(-1))
        weights = inside.to(hidden.dtype)
        return torch.bmm(weights, hidden) / weights.sum(-1, keepdim=True).clamp(min=1)


def length_batches(sequences: list[dict], max_tokens: int, max_batch_size: int) -> list[list[dict]]:
    """Group sequences sorted by length so that each padded batch holds at most `max_tokens` tokens."""
    batches, current, longest = [], [], 0
    for seq in sorted(sequences, key=lambda s: len(s["input_ids"])):
        length = len(seq["input_ids"])
        if current and (max(longest, length) * (len(current) + 1) > max_tokens or len(current) >= max_batch_size):
            batches.append(current)
            current, longest = [], 0
        current.append(seq)
        longest = max(longest, length)
    if current:
        batches.append(current)
    return batches


SHAPE_LENGTH_STEP = 32
SHAPE_ROWS = 4


def fixed_shape_batches(
    sequences: list[dict], max_tokens: int, length_step: int = SHAPE_LENGTH_STEP, rows: int = SHAPE_ROWS
) -> list[tuple[list[dict], tuple[int, int]]]:
    """Batches whose shape `(rows, padded length)` depends only on the length of the sequences in them.

    A sequence of `n` tokens is padded to `n` rounded up to `length_step` and encoded in a batch of exactly `rows`
    rows (`max_tokens // length` when smaller, at least 1); the caller fills a short batch with copies of its last
    sequence. Rows of one batch never mix in the encoder, and for a fixed shape the kernels sum in a fixed order, so
    each sequence's logits are the same whatever its neighbours. Sequences are taken in a stable (length, input) order.
    """
    by_length: dict[int, list[dict]] = {}
    for seq in sequences:
        length = -(-len(seq["input_ids"]) // length_step) * length_step
        by_length.setdefault(length, []).append(seq)
    batches = []
    for length in sorted(by_length):
        size = max(1, min(rows, max_tokens // length))
        group = by_length[length]
        batches.extend((group[i : i + size], (size, length)) for i in range(0, len(group), size))
    return batches


_SLOT_PADDING = {"slot_positions": 0, "slot_ends": 1, "slot_mask": False, "slot_groups": -1, "retrieval_scores": 0.0}


def _pad_slots(batch: dict[str, torch.Tensor], width: int) -> dict[str, torch.Tensor]:
    """Pad the per-slot tensors of a `pad_packed` batch to `width` slots (with `pad_packed`'s padding values)."""
    missing = width - batch["slot_positions"].size(1)
    if missing <= 0:
        return batch
    return {
        key: nn.functional.pad(value, (0, missing), value=_SLOT_PADDING[key]) if key in _SLOT_PADDING else value
        for key, value in batch.items()
    }


def slot_loss(
    logits: torch.Tensor, labels: torch.Tensor, slot_mask: torch.Tensor, slot_groups: torch.Tensor, kind: str
) -> torch.Tensor:
    """Listwise (per-mention softmax, mentions without a gold candidate skipped) or pointwise (BCE) loss."""
    scores, gold, groups = logits[slot_mask].float(), labels[slot_mask].float(), slot_groups[slot_mask]
    if kind == "pointwise":
        return nn.functional.binary_cross_entropy_with_logits(scores, gold)
    _, groups = torch.unique(groups, return_inverse=True)
    count = int(groups.max()) + 1 if groups.numel() else 0
    log_all = _group_logsumexp(scores, groups, count)
    has_gold = torch.zeros(count, device=scores.device).index_add_(0, groups, gold) > 0
    log_gold = _group_logsumexp(scores.masked_fill(gold <= 0, float("-inf")), groups, count)
    if not bool(has_gold.any()):
        return scores.sum() * 0.0
    return (log_all - log_gold)[has_gold].mean()


def _group_logsumexp(values: torch.Tensor, groups: torch.Tensor, count: int) -> torch.Tensor:
    peak = torch.full((count,), float("-inf"), device=values.device, dtype=values.dtype)
    peak = peak.scatter_reduce(0, groups, values, reduce="amax", include_self=True)
    safe_peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    sums = torch.zeros(count, device=values.device, dtype=values.dtype)
    sums = sums.index_add(0, groups, torch.exp(values - safe_peak[groups]))
    return torch.log(sums) + safe_peak


def _build_encoder(encoder_config) -> nn.Module:
    config = AutoConfig.for_model(**encoder_config.to_dict()) if isinstance(encoder_config, dict) else encoder_config
    try:
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(config)
