"""Accelerate training of a bel reranker: ``accelerate launch train.py ...``, ``bel train ...`` or :func:`train`.

One script for CPU, multi-process CPU (gloo), GPUs, FSDP and DeepSpeed; mixed precision comes from the launcher.
Data are documents (one LinkingInput each) packed in the configured mode; batches hold whole mentions (see
:mod:`bel.batching`) under a padded-token budget (``batch_size`` is **tokens per process per step**, not sequences,
so every mode sees a similar amount of compute per step). Every epoch the model is evaluated on the dev split (Acc@1
with ``model.score``) and the best epoch is saved as a full pipeline directory in ``OUTPUT/best``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from bel.encoders import default_encoder, set_attention_dropout

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Options of :func:`train` (the CLI flags are the field names with dashes)."""

    dataset: str | None = None
    data_dir: str | None = None
    train_file: str | None = None
    dev_file: str | None = None
    kb_file: str | None = None
    encoder: str | None = None
    init_from: str | None = None
    output_dir: str = "runs/train"
    mode: str = "sentence"
    template: str = "compact"
    num_candidates: int = 16
    loss: str = "listwise"
    use_retrieval_score: bool = True
    retrieval_score_init: float = 10.0
    slot_pooling: str = "span"
    attention_dropout: float = 0.0
    context_length: int = 64
    max_sequence_length: int = 512
    learning_rate: float = 5e-5
    head_learning_rate_multiplier: float = 20.0
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    scheduler: str = "linear"
    epochs: int = 3
    max_steps: int | None = None
    batch_size: int = 4096
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    seed: int = 42
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    resume_from_checkpoint: str | None = None
    early_stopping_patience: int | None = None
    max_train_documents: int | None = None
    eval_max_documents: int | None = None
    eval_max_tokens: int = 2048
    push_to_hub: str | None = None
    log_every: int = 10
    stop_after_step: int | None = None

    def validate(self) -> None:
        if not self.dataset and not (self.train_file and self.kb_file):
            raise ValueError("Pass --dataset NAME (with --data-dir or BEL_DATA_DIR) or --train-file and --kb-file.")
        if self.epochs < 1 and not self.max_steps:
            raise ValueError("--epochs must be >= 1 (or pass --max-steps).")


def _data(config: TrainConfig, log):
    from bel.examples import build_examples, build_retriever, load_documents, load_knowledge_base

    all_train_docs = load_documents(config.dataset, "train", config.data_dir, config.train_file)
    train_docs = all_train_docs[: config.max_train_documents] if config.max_train_documents else all_train_docs
    dev_docs = []
    if config.dev_file or config.dataset:
        dev_docs = load_documents(config.dataset, "dev", config.data_dir, config.dev_file)
        if config.eval_max_documents:
            dev_docs = dev_docs[: config.eval_max_documents]
    kb = load_knowledge_base(config.dataset, config.data_dir, config.kb_file)
    retriever = build_retriever(kb, all_train_docs)  # aliases of the whole training split, even for a subset run
    train = build_examples(train_docs, retriever, config.num_candidates, kb=kb, training=True, seed=config.seed)
    dev = build_examples(dev_docs, retriever, config.num_candidates, kb=kb, retrieve_k=64) if dev_docs else []
    log.info("%d training documents (%d mentions), %d dev documents", len(train),
             sum(len(e.gold_ids) for e in train), len(dev))
    return retriever, train, dev


def _evaluate(accelerator, model, tokenizer, examples, retriever, config: TrainConfig) -> dict:
    """Dev metrics, each process scoring its share of the documents (gathered with ``gather_object``)."""
    from accelerate.utils import gather_object

    from bel.evaluation import linking_metrics, rank_candidates

    unwrapped = accelerator.unwrap_model(model)
    unwrapped.eval()
    rows = []
    with accelerator.split_between_processes(examples) as part:
        scores = unwrapped.score(tokenizer, [e.input for e in part], max_tokens=config.eval_max_tokens) if part else []
        for example, doc_scores in zip(part, scores, strict=True):
            for m, ids in enumerate(example.candidate_ids):
                rows.append((rank_candidates(ids, doc_scores[m]), example.gold_ids[m], example.retrieved_ids[m],
                             any(g in retriever for g in example.gold_ids[m])))
    rows = gather_object(rows)
    model.train()
    rankings, gold, retrieved, in_kb = (list(x) for x in zip(*rows, strict=True)) if rows else ([], [], [], [])
    return linking_metrics(rankings, gold, retrieved, in_kb, num_candidates=config.num_candidates)


def parameter_groups(model, config: TrainConfig) -> list[dict]:
    """AdamW groups: weight decay except on biases and norms; the head (scorer and retrieval-score weight) learns
    `head_learning_rate_multiplier` times faster. With retrieval scores on, the scorer starts at zero, and at the
    encoder's learning rate it stayed near zero for a whole epoch (NCBI, 417 steps: weight norm 0.014), so the
    reranker could not move away from the retriever's ranking."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    is_head = [n.startswith("scorer.") or n.endswith("retrieval_weight") for n, _ in named]
    is_plain = [any(k in n for k in ("bias", "LayerNorm", "norm")) for n, _ in named]
    decay = [p for (_, p), head, plain in zip(named, is_head, is_plain, strict=True) if not head and not plain]
    no_decay = [p for (_, p), head, plain in zip(named, is_head, is_plain, strict=True) if not head and plain]
    head = [p for (_, p), h in zip(named, is_head, strict=True) if h]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if head:
        groups.append({"params": head, "weight_decay": 0.0,
                       "lr": config.learning_rate * config.head_learning_rate_multiplier})
    return groups


def train(config: TrainConfig) -> Path:
    """Train a reranker and return the directory of the best checkpoint (a full pipeline directory)."""
    import torch
    from accelerate import Accelerator
    from accelerate.logging import get_logger
    from accelerate.tracking import register_tracker_class
    from accelerate.utils import ProjectConfiguration, set_seed
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    from bel.batching import TokenBudgetBatchSampler, UnitCollator, sequence_units
    from bel.checkpointing import JsonlTracker, read_meta, resolve_checkpoint, save_checkpoint, save_pipeline

    config.validate()
    output = Path(config.output_dir)
    register_tracker_class(JsonlTracker)  # before Accelerator(): never touch PartialState earlier
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps, log_with="jsonl",
        project_config=ProjectConfiguration(project_dir=str(output), logging_dir=str(output / "logs")),
    )
    log = get_logger(__name__)
    set_seed(config.seed)
    encoder = config.encoder or default_encoder()
    retriever, train_examples, dev_examples = _data(config, log)
    model, tokenizer = _initial_model(config, encoder)
    set_attention_dropout(model, config.attention_dropout)
    sequences = tokenizer.pack([e.input for e in train_examples], mode=config.mode,
                               max_length=config.max_sequence_length, context_length=config.context_length,
                               template=config.template)
    units = sequence_units(sequences)
    sampler = TokenBudgetBatchSampler(units, config.batch_size, seed=config.seed)
    # a private generator: creating the (skipping) iterator on resume must not consume the global RNG that dropout uses
    loader = DataLoader(units, batch_sampler=sampler, collate_fn=UnitCollator(tokenizer, config.use_retrieval_score),
                        generator=torch.Generator().manual_seed(config.seed))
    batches_per_process = math.ceil(len(sampler) / accelerator.num_processes)
    steps_per_epoch = math.ceil(batches_per_process / config.gradient_accumulation_steps)
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    epochs = math.ceil(total_steps / steps_per_epoch) if config.max_steps else config.epochs
    optimizer = torch.optim.AdamW(parameter_groups(model, config), lr=config.learning_rate)
    # AcceleratedScheduler steps the wrapped scheduler once per process per optimizer step
    scheduler = get_scheduler(config.scheduler, optimizer,
                              num_warmup_steps=int(config.warmup_ratio * total_steps) * accelerator.num_processes,
                              num_training_steps=total_steps * accelerator.num_processes)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    accelerator.init_trackers("bel", config={k: v for k, v in asdict(config).items() if v is not None})
    log.info("%s mode, %d sequences in %d units, %d batches/process/epoch, %d steps", config.mode, len(sequences),
             len(units), batches_per_process, total_steps)

    state = {"global_step": 0, "epoch": 0, "batches_seen": 0, "best_score": None, "best_epoch": None,
             "bad_epochs": 0, "history": []}
    resume = resolve_checkpoint(config.resume_from_checkpoint, output)
    if resume is not None:
        accelerator.load_state(str(resume))
        state.update(read_meta(resume))
        log.info("resumed from %s at step %d (epoch %d, %d batches seen)", resume, state["global_step"],
                 state["epoch"], state["batches_seen"])
    best_dir = output / "best"
    bar = tqdm(total=total_steps, initial=state["global_step"], desc="train",
               disable=not accelerator.is_local_main_process)
    model.train()
    stop = state["global_step"] >= total_steps
    for epoch in range(state["epoch"], epochs):
        if stop:
            break
        sampler.set_epoch(epoch)
        skip = state["batches_seen"] if state["epoch"] == epoch else 0
        state.update(epoch=epoch, batches_seen=skip)
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        train_seconds, checkpoint_seconds, started, losses = 0.0, 0.0, time.perf_counter(), []
        for batch in epoch_loader:
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            state["batches_seen"] += 1
            losses.append(loss.detach().float().item())
            if not accelerator.sync_gradients:
                continue
            state["global_step"] += 1
            bar.update(1)
            step = state["global_step"]
            if step % config.log_every == 0 or step == total_steps:
                accelerator.log({"train/loss": sum(losses[-config.log_every:]) / len(losses[-config.log_every:]),
                                 "train/lr": scheduler.get_last_lr()[0], "epoch": epoch}, step=step)
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                tick = time.perf_counter()
                save_checkpoint(accelerator, output, dict(state), keep=config.keep_checkpoints)
                checkpoint_seconds += time.perf_counter() - tick
                if config.stop_after_step and step >= config.stop_after_step:
                    log.warning("--stop-after-step %d: exiting hard (simulated crash)", step)
                    os._exit(3)
            if step >= total_steps:
                stop = True
                break
        train_seconds = time.perf_counter() - started - checkpoint_seconds
        record = {"epoch": epoch, "step": state["global_step"], "train_seconds": train_seconds,
                  "train_loss": sum(losses) / max(len(losses), 1), "batches": len(losses)}
        if dev_examples:
            tick = time.perf_counter()
            metrics = _evaluate(accelerator, model, tokenizer, dev_examples, retriever, config)
            record.update({"eval_seconds": time.perf_counter() - tick, "dev/acc@1": metrics["acc@1"],
                           "dev/acc@5": metrics["acc@5"], "dev/mrr": metrics["mrr"],
                           "dev/retriever_acc@1": metrics["retriever_acc@1"]})
            score = metrics["acc@1"]
        else:
            score = -float(record["train_loss"])
        improved = state["best_score"] is None or score > state["best_score"]
        if improved:
            state.update(best_score=score, best_epoch=epoch, bad_epochs=0)
            _save_best(accelerator, model, tokenizer, retriever, best_dir, config, record, save_pipeline)
        else:
            state["bad_epochs"] += 1
        state["history"].append(record)
        state.update(epoch=epoch + 1, batches_seen=0)
        accelerator.log({k: v for k, v in record.items() if isinstance(v, int | float)}, step=state["global_step"])
        log.info("epoch %d: %s", epoch, json.dumps(record))
        if config.early_stopping_patience is not None and state["bad_epochs"] >= config.early_stopping_patience:
            log.info("early stopping: no dev improvement for %d epochs", state["bad_epochs"])
            break
    bar.close()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        summary = {"config": asdict(config), "best_epoch": state["best_epoch"], "best_score": state["best_score"],
                   "global_step": state["global_step"], "history": state["history"], "best_dir": str(best_dir),
                   "num_processes": accelerator.num_processes,
                   "train_mentions": sum(len(e.gold_ids) for e in train_examples), "distributed_type": str(accelerator.distributed_type),
                   "resumed_from": str(resume) if resume else None}
        (output / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        if config.push_to_hub:
            _push(best_dir, config.push_to_hub)
    accelerator.end_training()
    return best_dir


def _initial_model(config: TrainConfig, encoder: str):
    """A fresh model on ``encoder``, or (``--init-from``) a saved bel model to fine-tune further with this run's
    packing options; its scorer, pooling and retrieval-score setting are kept."""
    from bel import BelForMultiCandidateLinking, BelTokenizer

    if config.init_from:
        from bel.checkpointing import load_pipeline

        model, tokenizer, _ = load_pipeline(config.init_from)
        if model.config.use_retrieval_score != config.use_retrieval_score:
            flag = "--use-retrieval-score" if model.config.use_retrieval_score else "--no-use-retrieval-score"
            raise ValueError(f"--init-from {config.init_from} was trained with use_retrieval_score="
                             f"{model.config.use_retrieval_score}; pass {flag} to continue it.")
        for key in ("mode", "template", "num_candidates", "loss", "context_length", "max_sequence_length"):
            setattr(model.config, key, getattr(config, key))
        return model.train(), tokenizer
    tokenizer = BelTokenizer.from_encoder(encoder)
    model = BelForMultiCandidateLinking.from_encoder(
        encoder, tokenizer=tokenizer, mode=config.mode, template=config.template, num_candidates=config.num_candidates,
        loss=config.loss, use_retrieval_score=config.use_retrieval_score, context_length=config.context_length,
        max_sequence_length=config.max_sequence_length, retrieval_score_init=config.retrieval_score_init,
        slot_pooling=config.slot_pooling,
    )
    return model, tokenizer


def _save_best(accelerator, model, tokenizer, retriever, best_dir, config, record, save_pipeline) -> None:
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    if accelerator.is_main_process:
        card = {"dataset": config.dataset, "mode": config.mode, "template": config.template,
                "num_candidates": config.num_candidates, "encoder": config.encoder or "all-MiniLM-L6-v2",
                "metrics": {k: v for k, v in record.items() if k.startswith("dev/")}, "epoch": record["epoch"]}
        save_pipeline(best_dir, unwrapped, tokenizer, retriever, card_data=card)
    accelerator.wait_for_everyone()


def _push(directory: Path, repo_id: str) -> None:
    try:
        from bel import saving
    except ImportError:
        raise RuntimeError("--push-to-hub needs bel.saving (not in this build); upload with `bel push`.") from None
    push = getattr(saving, "push_to_hub", None) or getattr(saving, "push_linker", None)
    if push is None:
        raise RuntimeError("bel.saving has no push function; upload the best directory with `bel push`.")
    push(directory, repo_id)


# ------------------------------------------------------------------------------------------------------ CLI options
def add_train_arguments(parser) -> None:
    """The training options, shared by ``train.py`` and ``bel train``."""
    defaults = TrainConfig()
    helps = {
        "dataset": "ncbi-disease, bc5cdr-disease or bc5cdr-chemical (read from --data-dir / BEL_DATA_DIR)",
        "encoder": "Hub id or local directory of a BERT-family encoder (default: bundled all-MiniLM-L6-v2)",
        "batch_size": "padded tokens per batch per process (a token budget, not a sequence count)",
        "resume_from_checkpoint": "a checkpoint directory, or `latest` (newest complete one in --output-dir)",
        "checkpoint_every": "save a resumable checkpoint every N optimizer steps (0: never)",
        "stop_after_step": "debug: exit hard (os._exit) right after the checkpoint at this step",
        "push_to_hub": "Hub repo id to upload the best checkpoint to",
        "init_from": "a saved bel model directory to continue training from (fresh optimizer and schedule)",
        "slot_pooling": "span (mean of [MASK] + candidate name; learns much faster) or mask (the paper's [MASK] state)",
        "attention_dropout": "dropout on the encoder's attention probabilities while training (default 0: with dropout "
                             "SDPA materialises (batch, heads, length, length) tensors, twice the CPU cost per "
                             "token of long packed sequences); negative keeps the encoder's",
        "use_retrieval_score": "feed the retriever's score to the scorer as a learned input, so reranking starts "
                               "from the retriever's ranking (default: on)",
        "retrieval_score_init": "initial (learned) weight of the retriever's score with --use-retrieval-score; large "
                                "values start at the retriever's ranking but leave the scorer little to learn",
    }
    for field in fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        if field.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=helps.get(field.name, f"default: {default}"))
            continue
        kind = {"int": int, "float": float}.get(field.type.replace(" | None", ""), str)
        parser.add_argument(flag, type=kind, default=default, help=helps.get(field.name, f"default: {default}"))


def config_from_args(args) -> TrainConfig:
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
