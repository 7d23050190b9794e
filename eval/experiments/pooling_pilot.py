"""Pilot: how fast does a pure cross-encoder (no retrieval score) fit a few NCBI training documents, per slot pooling?

Trains MiniLM on the first ``--documents`` training documents (sentence packing, compact template, C = 16, batches of
about 4,096 tokens drawn at random) and logs the listwise loss (chance: ln 16 = 2.77) every 5 steps.

    OMP_NUM_THREADS=1 python eval/experiments/pooling_pilot.py --pooling mask --output pooling_pilot_mask.json
    OMP_NUM_THREADS=1 python eval/experiments/pooling_pilot.py --pooling span --output pooling_pilot_span.json
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from pathlib import Path

import torch

from bel import BelForMultiCandidateLinking, BelTokenizer
from bel.batching import UnitCollator, sequence_units
from bel.encoders import default_encoder
from bel.examples import build_examples, build_retriever, load_documents, load_knowledge_base

logger = logging.getLogger("pooling_pilot")


def random_batch(units: list, rng: random.Random, max_tokens: int) -> list:
    batch, tokens = [], 0
    for index in rng.sample(range(len(units)), len(units)):
        size = sum(len(s["input_ids"]) for s in units[index])
        if batch and tokens + size > max_tokens:
            break
        batch.append(units[index])
        tokens += size
    return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pooling", choices=["mask", "span"], required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--head-learning-rate-multiplier", type=float, default=20.0)
    parser.add_argument("--output")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.manual_seed(0)
    documents = load_documents("ncbi-disease", "train", args.data_dir)
    kb = load_knowledge_base("ncbi-disease", args.data_dir)
    examples = build_examples(
        documents[: args.documents], build_retriever(kb, documents), 16, kb=kb, training=True, seed=1
    )
    encoder = default_encoder()
    tokenizer = BelTokenizer.from_encoder(encoder)
    model = BelForMultiCandidateLinking.from_encoder(
        encoder, tokenizer=tokenizer, mode="sentence", template="compact", slot_pooling=args.pooling
    ).train()
    units = sequence_units(tokenizer.pack([e.input for e in examples], mode="sentence", template="compact"))
    head = [p for n, p in model.named_parameters() if n.startswith("scorer.")]
    body = [p for n, p in model.named_parameters() if not n.startswith("scorer.")]
    optimizer = torch.optim.AdamW(
        [{"params": body}, {"params": head, "lr": args.learning_rate * args.head_learning_rate_multiplier}],
        lr=args.learning_rate,
    )
    collate, rng, losses = UnitCollator(tokenizer), random.Random(0), []
    for step in range(args.steps):
        loss = model(**collate(random_batch(units, rng, 4096))).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        if step % 5 == 0 or step == args.steps - 1:
            logger.info("step %d loss %.3f", step, loss.item())
    result = {
        "pooling": args.pooling,
        "documents": len(examples),
        "mentions": sum(len(e.gold_ids) for e in examples),
        "steps": args.steps,
        "losses": losses,
        "mean_loss_last_10": sum(losses[-10:]) / len(losses[-10:]),
    }
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    logger.info("mean loss over the last 10 steps: %.3f", result["mean_loss_last_10"])


if __name__ == "__main__":
    main()
