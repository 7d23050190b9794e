"""Cost per token of MiniLM forward + backward with and without attention dropout, at pair and packed lengths.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python eval/experiments/attention_dropout_probe.py

Session 4 (one thread, beside a one-thread training job), microseconds per token:
length 88 x 46: sdpa 0.1 -> 757, sdpa 0 -> 598, eager 0.1 -> 667, eager 0 -> 657, inference 193;
length 400 x 10: sdpa 0.1 -> 1537, sdpa 0 -> 738, eager 0.1 -> 1474, eager 0 -> 1126, inference 239.
"""

from __future__ import annotations

import statistics
import time

import torch
from transformers import AutoConfig, AutoModel
from transformers.utils import logging as hf_logging

from bel.encoders import default_encoder


def microseconds_per_token(length: int, batch: int, dropout: float, attention: str, train: bool = True) -> float:
    config = AutoConfig.from_pretrained(default_encoder())
    config.attention_probs_dropout_prob = dropout
    model = AutoModel.from_pretrained(
        default_encoder(), config=config, attn_implementation=attention, add_pooling_layer=False
    ).train(train)
    ids = torch.randint(1000, 20000, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[0, length // 2 :] = 0  # some padding, as in real batches
    times = []
    for _ in range(3):
        start = time.perf_counter()
        if train:
            model(input_ids=ids, attention_mask=mask).last_hidden_state.sum().backward()
            model.zero_grad()
        else:
            with torch.no_grad():
                model(input_ids=ids, attention_mask=mask)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]) / (batch * length) * 1e6


def main() -> None:
    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    for length, batch in [(88, 46), (400, 10)]:
        for attention in ("sdpa", "eager"):
            for dropout in (0.1, 0.0):
                cost = microseconds_per_token(length, batch, dropout, attention)
                print(f"length {length} x {batch}, {attention}, attention dropout {dropout}: {cost:.0f} us/token")
        print(
            f"length {length} x {batch}, sdpa inference: {microseconds_per_token(length, batch, 0.1, 'sdpa', False):.0f} us/token"
        )


if __name__ == "__main__":
    main()
