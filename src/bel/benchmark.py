"""Speed benchmark of every packing mode (and template) on the same encoder and the same candidates.

Per configuration: inference time of ``model.score`` (packing + dynamic-padded, length-sorted batches), one training
pass (forward + backward + AdamW step with lr 0, so weights never change) over the same mentions, the numbers of
sequences, real tokens and padded tokens, and the ratio to the ``pair`` baseline next to the token-count ideal
(``tokens(pair) / tokens(mode)``). Repetitions are interleaved across configurations and medians reported, so a
machine shared with other jobs slows every configuration alike. The ``pair`` baseline runs with the best token budget
of a small sweep (packed modes get a sweep of their own with ``packed_sweep``); ``pair@bs2`` is the reference code's batch size of 2; ``cross-encoder`` is a
``sentence_transformers.CrossEncoder`` on the same encoder directory and the same (mention-in-context, candidate) pairs.

JSON (``bel bench --output F.json``): ``{"settings": {...}, "results": {NAME: {...}}}`` with NAME ``pair``,
``pair@bs2``, ``<mode>/<template>`` and ``cross-encoder``; each result has ``mentions_per_second``, ``sequences``,
``tokens``, ``padded_tokens``, ``speedup_vs_pair``, ``ideal_ratio``, ``seconds`` (median) and ``seconds_all``, and
for reranker modes ``train_mentions_per_second``, ``train_seconds``, ``train_speedup_vs_pair``.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence

import torch

from bel.batching import TokenBudgetBatchSampler, sequence_units
from bel.modeling_bel import length_batches
from bel.sentences_bel import document_sentences

logger = logging.getLogger(__name__)


def token_counts(
    tokenizer, inputs, mode: str, template: str, config, max_tokens: int, max_batch_size: int = 256
) -> dict:
    """Sequences, real tokens and padded tokens of ``inputs`` packed in ``mode`` and batched like ``model.score``."""
    sequences = _pack(tokenizer, inputs, mode, template, config)
    batches = length_batches(sequences, max_tokens, max_batch_size)
    return {
        "sequences": len(sequences),
        "tokens": sum(len(s["input_ids"]) for s in sequences),
        "padded_tokens": sum(max(len(s["input_ids"]) for s in b) * len(b) for b in batches),
    }


def _pack(tokenizer, inputs, mode: str, template: str, config) -> list[dict]:
    """``inputs`` packed in ``mode`` and ``template`` with the sequence and context lengths of the model ``config``."""
    return tokenizer.pack(
        inputs,
        mode=mode,
        max_length=config.max_sequence_length,
        context_length=config.context_length,
        template=template,
    )


def time_inference(model, tokenizer, inputs, mode: str, template: str, max_tokens: int, max_batch_size: int = 256):
    start = time.perf_counter()
    model.score(tokenizer, inputs, mode=mode, template=template, max_tokens=max_tokens, max_batch_size=max_batch_size)
    return time.perf_counter() - start


def time_training(model, tokenizer, inputs, mode: str, template: str, max_tokens: int) -> float:
    """Seconds for one training pass over ``inputs`` (whole-mention batches under ``max_tokens`` padded tokens)."""
    config = model.config
    start = time.perf_counter()
    sequences = _pack(tokenizer, inputs, mode, template, config)
    units = sequence_units(sequences)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    model.train()
    for indices in TokenBudgetBatchSampler(units, max_tokens, seed=0):
        batch = tokenizer.pad_packed([s for i in indices for s in units[i]])
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    return time.perf_counter() - start


def cross_encoder_pairs(inputs) -> list[tuple[str, str]]:
    """(sentence with the mention marked, "mention [SEP] candidate name") for every pair, as plain text."""
    pairs = []
    for doc in inputs:
        sentences = list(doc.sentences or document_sentences(doc.text, doc.mentions, doc.passages))
        for (start, end), names in zip(doc.mentions, doc.candidates, strict=True):
            s, e = next(((a, b) for a, b in sentences if a <= start < b), (start, end))
            context = f"{doc.text[s:start]}[Ms] {doc.text[start:end]} [Me]{doc.text[end : max(e, end)]}"
            pairs.extend((context, f"{doc.text[start:end]} [SEP] {name}") for name in names)
    return pairs


def run_benchmark(
    model,
    tokenizer,
    inputs,
    *,
    modes=("pair", "mention", "sentence", "passage", "document"),
    templates=("paper", "compact"),
    repeats: int = 3,
    max_tokens: int = 16384,
    pair_sweep=(2048, 4096, 8192, 16384),
    sweep_documents: int = 2,
    train_inputs=None,
    train_max_tokens: int = 4096,
    cross_encoder: str | None = None,
    packed_sweep: Sequence[int] | None = None,
) -> dict:
    """Benchmark every (mode, template) on ``inputs`` (LinkingInputs); see the module docstring for the output."""
    model.eval()
    mentions = sum(len(doc.mentions) for doc in inputs)
    # warm-up (thread pools, allocator, first-call overheads) so the sweep's first budget is not penalised
    time_inference(model, tokenizer, inputs[:1], "pair", "paper", max(pair_sweep))
    sweep = _budget_sweep(model, tokenizer, inputs[:sweep_documents], "pair", "paper", pair_sweep)
    best = min(sweep, key=sweep.get)
    configs = {"pair": ("pair", "paper", best, 256), "pair@bs2": ("pair", "paper", best, 2)}
    packed_sweeps = {}
    for mode, template in ((m, t) for m in modes for t in templates if m != "pair"):
        # the same sweep as the baseline: long packed sequences pad less in smaller length-sorted batches
        timings = _budget_sweep(
            model, tokenizer, inputs[:sweep_documents], mode, template, packed_sweep or (max_tokens,)
        )
        packed_sweeps[f"{mode}/{template}"] = timings
        configs[f"{mode}/{template}"] = (mode, template, min(timings, key=timings.get), 256)
    results = _result_rows(tokenizer, inputs, configs, model.config)
    train_inputs = train_inputs or inputs
    timed = (model, tokenizer, inputs, train_inputs, train_max_tokens)
    _repeat_timings(results, configs, timed, repeats, cross_encoder, max(1, best // 128))
    return {
        "settings": {
            "documents": len(inputs),
            "mentions": mentions,
            "repeats": repeats,
            "pair_sweep_seconds": {str(k): v for k, v in sweep.items()},
            "pair_max_tokens": best,
            "packed_sweep_seconds": {
                name: {str(k): v for k, v in timings.items()} for name, timings in packed_sweeps.items()
            },
            "train_documents": len(train_inputs),
            "train_mentions": sum(len(d.mentions) for d in train_inputs),
            "threads": torch.get_num_threads(),
        },
        "results": _summarise(results, mentions, sum(len(d.mentions) for d in train_inputs)),
    }


def _result_rows(tokenizer, inputs, configs: dict, config) -> dict:
    """A result per configuration ``name: (mode, template, max_tokens, max_batch_size)``: its settings and token
    counts, with empty lists for the timings to come."""
    return {
        name: {
            "mode": m,
            "template": t,
            "max_tokens": b,
            "max_batch_size": s,
            **token_counts(tokenizer, inputs, m, t, config, b, s),
            "seconds_all": [],
            "train_seconds_all": [],
        }
        for name, (m, t, b, s) in configs.items()
    }


def _repeat_timings(results: dict, configs: dict, timed: tuple, repeats: int, cross_encoder, ce_batch_size: int):
    """Time every configuration (and the sentence-transformers baseline) `repeats` times, interleaved."""
    model, tokenizer, inputs, train_inputs, train_max_tokens = timed
    pairs = cross_encoder_pairs(inputs) if cross_encoder else None
    ce_model = _cross_encoder(cross_encoder) if cross_encoder else None
    if ce_model is not None:
        results["cross-encoder"] = {
            "mode": "pair",
            "template": "sentence-transformers",
            "sequences": len(pairs),
            "seconds_all": [],
            "batch_size": ce_batch_size,
        }
    for repeat in range(repeats):
        for name, (mode, template, budget, size) in configs.items():
            results[name]["seconds_all"].append(time_inference(model, tokenizer, inputs, mode, template, budget, size))
            if size > 2:
                results[name]["train_seconds_all"].append(
                    time_training(model, tokenizer, train_inputs, mode, template, train_max_tokens)
                )
            logger.info("repeat %d %s: %.2fs", repeat, name, results[name]["seconds_all"][-1])
        if ce_model is not None:
            start = time.perf_counter()
            ce_model.predict(pairs, batch_size=ce_batch_size, show_progress_bar=False)
            results["cross-encoder"]["seconds_all"].append(time.perf_counter() - start)


def _budget_sweep(model, tokenizer, inputs, mode: str, template: str, budgets) -> dict[int, float]:
    """Inference seconds of ``mode`` per padded-token budget on a few documents (the benchmark picks the fastest)."""
    timings = {budget: time_inference(model, tokenizer, inputs, mode, template, budget) for budget in budgets}
    logger.info("%s/%s token-budget sweep %s", mode, template, {k: round(v, 2) for k, v in timings.items()})
    return timings


def _summarise(results: dict, mentions: int, train_mentions: int) -> dict:
    base = results["pair"]
    base_seconds = statistics.median(base["seconds_all"])
    base_train = statistics.median(base["train_seconds_all"]) if base["train_seconds_all"] else None
    for result in results.values():
        seconds = statistics.median(result["seconds_all"])
        result.update(seconds=seconds, mentions_per_second=mentions / seconds, speedup_vs_pair=base_seconds / seconds)
        if "tokens" in result:
            result["ideal_ratio"] = base["tokens"] / result["tokens"]
            result["ideal_ratio_padded"] = base["padded_tokens"] / result["padded_tokens"]
            result["fraction_of_ideal"] = result["speedup_vs_pair"] / result["ideal_ratio"]
        else:
            result.update(tokens=None, padded_tokens=None, ideal_ratio=None)
        if result.get("train_seconds_all"):
            train = statistics.median(result["train_seconds_all"])
            result.update(
                train_seconds=train,
                train_mentions_per_second=train_mentions / train,
                train_speedup_vs_pair=base_train / train if base_train else None,
            )
    return results


def _cross_encoder(directory: str):
    from sentence_transformers import CrossEncoder

    return CrossEncoder(directory, num_labels=1, max_length=512, device="cpu")
