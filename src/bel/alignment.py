"""Synonym alignment of an encoder on a knowledge base (``bel align``), in the spirit of SapBERT's self-alignment.

Names of one KB entity are positives; the names of the other entities in the batch are negatives (symmetric InfoNCE on
mean-pooled, L2-normalised embeddings). Batches are built from **TF-IDF neighbourhoods**: an entity's lexically nearest
entities share its batch, so in-batch negatives are the hard ones a retriever confuses, at no extra encoder cost, and
no batch holds two names of one entity (no false negatives). Each epoch makes every name of an entity (up to
``max_names_per_entity``) the anchor of one pair; training-corpus mentions may be added as names of their gold entity.

The result, ``OUTPUT/encoder``, is a plain ``from_pretrained`` directory: ``--encoder`` of ``bel train`` and the dense
retriever's encoder. Accelerate runs it on one or many processes; ``--checkpoint-every`` makes it resumable.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bel.dense_bel import mean_pool
from bel.retrieval_bel import CandidateRetriever, exact_key

logger = logging.getLogger(__name__)
ENCODER_DIR = "encoder"
RECORD_FILE = "alignment.json"


@dataclass
class AlignConfig:
    """Options of :func:`align` (the CLI flags are the field names with dashes, their help the fields' ``help``)."""

    dataset: str | None = field(
        default=None, metadata={"help": "ncbi-disease, bc5cdr-disease, ... : align on its KB (see --data-dir)"}
    )
    data_dir: str | None = None
    kb_file: str | None = field(default=None, metadata={"help": "any KB file bel reads (MEDIC, MeSH, OBO, TSV, JSONL)"})
    corpus_mentions: bool = field(
        default=False,
        metadata={"help": "add the training split's mentions as names of their gold entity (off: KB only)"},
    )
    train_file: str | None = field(
        default=None, metadata={"help": "PubTator file of those mentions (else --dataset's)"}
    )
    encoder: str | None = field(default=None, metadata={"help": "encoder to align (default: bundled all-MiniLM-L6-v2)"})
    output_dir: str = field(default="runs/align", metadata={"help": "writes OUTPUT/encoder and OUTPUT/alignment.json"})
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = field(default=128, metadata={"help": "(anchor, positive) pairs per step per process"})
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.05
    temperature: float = 0.05
    max_length: int = field(default=32, metadata={"help": "tokens per name (names are short)"})
    max_names_per_entity: int = field(default=16, metadata={"help": "names of an entity used per epoch, at most"})
    neighbours: int = field(default=32, metadata={"help": "TF-IDF neighbours that share an entity's batch"})
    seed: int = 42
    checkpoint_every: int = field(default=0, metadata={"help": "save a resumable checkpoint every N steps (0: never)"})
    keep_checkpoints: int = 1
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "a checkpoint directory, or `latest` (newest complete one in --output-dir)"}
    )
    log_every: int = 20

    def validate(self) -> None:
        if not (self.dataset or self.kb_file):
            raise ValueError("Pass --dataset NAME (with --data-dir or BEL_DATA_DIR) or --kb-file KB.")
        if self.corpus_mentions and not (self.dataset or self.train_file):
            raise ValueError("--corpus-mentions needs --dataset or --train-file (the mentions to add).")
        if self.batch_size < 2:
            raise ValueError(f"--batch-size must be >= 2 (in-batch negatives), got {self.batch_size}.")


def synonym_sets(
    kb, aliases: Sequence[tuple[str, str]] = (), max_names: int | None = None
) -> list[tuple[str, list[str]]]:
    """``(entity_id, names)`` for every entity: its KB names plus ``aliases`` (entity id, text) of it, each distinct
    exact key once (`retrieval_bel.exact_key`, as in `bel.kb_examples`); the preferred name first, then the aliases,
    then the other KB names; at most ``max_names`` names (the first ones) per entity. Aliases come before the KB's
    synonyms because the cap would otherwise drop them for the entities mentioned most (a third of NCBI's)."""
    kb_names: dict[str, dict[str, str]] = {}
    for entity_id, name, _ in kb.names():
        kb_names.setdefault(entity_id, {}).setdefault(exact_key(name), name)
    alias_names: dict[str, list[tuple[str, str]]] = {}
    for entity_id, text in aliases:
        alias_names.setdefault(entity_id, []).append((exact_key(text), text))
    sets = []
    for entity, found in kb_names.items():
        preferred, *others = found.items()
        merged = dict([preferred])
        for key, name in [*alias_names.get(entity, []), *others]:
            merged.setdefault(key, name)
        sets.append((entity, list(merged.values())[:max_names]))
    return sets


def neighbourhood_order(sets: Sequence[tuple[str, list[str]]], neighbours: int, seed: int) -> list[int]:
    """Entity indices ordered so that each entity is followed by its nearest unvisited TF-IDF neighbours (by preferred
    name); consecutive slices of this order make batches of hard in-batch negatives."""
    retriever = CandidateRetriever.build([entity for entity, _ in sets], [names[0] for _, names in sets])
    found = retriever.search([names[0] for _, names in sets], top_k=neighbours + 1)
    position = {entity: index for index, (entity, _) in enumerate(sets)}
    seeds = list(range(len(sets)))
    random.Random(seed).shuffle(seeds)
    visited, order = [False] * len(sets), []
    for start in seeds:
        if visited[start]:
            continue
        for candidate in [start, *(position[c.entity_id] for c in found[start])]:
            if not visited[candidate]:
                visited[candidate] = True
                order.append(candidate)
    return order


def epoch_batches(
    sets: Sequence[tuple[str, list[str]]], order: Sequence[int], batch_size: int, seed: int
) -> list[list[tuple[str, str]]]:
    """One epoch of (anchor, positive) batches: round ``r`` pairs the ``r``-th name of every entity that has more than
    ``r`` names with another of its names, walking entities in neighbourhood ``order``; batches never mix rounds, so
    no entity appears twice in a batch. Batches are shuffled (seeded)."""
    rng = random.Random(seed)
    batches: list[list[tuple[str, str]]] = []
    rounds = max((len(names) for _, names in sets), default=0)
    for round_index in range(rounds):
        pairs = []
        for entity in order:
            names = sets[entity][1]
            if len(names) > max(1, round_index):
                others = [n for i, n in enumerate(names) if i != round_index]
                pairs.append((names[round_index], rng.choice(others)))
        batches.extend(pairs[start : start + batch_size] for start in range(0, len(pairs), batch_size))
    batches = [batch for batch in batches if len(batch) > 1]
    rng.shuffle(batches)
    return batches


def contrastive_loss(anchors, positives, temperature: float):
    """Symmetric InfoNCE: row ``i`` of ``anchors`` should match row ``i`` of ``positives`` and no other."""
    import torch

    logits = anchors @ positives.T / temperature
    target = torch.arange(len(anchors), device=anchors.device)
    return (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2


def encode_names(model, tokenizer, names: Sequence[str], max_length: int):
    """Mean-pooled, normalised embeddings of ``names`` with gradients: `(len(names), hidden_size)`."""
    batch = tokenizer(list(names), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    batch = {key: value.to(model.device) for key, value in batch.items()}
    return mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])


def _synonyms(config: AlignConfig) -> list[tuple[str, list[str]]]:
    from bel.examples import load_documents, load_knowledge_base, training_aliases

    kb = load_knowledge_base(config.dataset, config.data_dir, config.kb_file)
    aliases: list[tuple[str, str]] = []
    if config.corpus_mentions:
        aliases, _ = training_aliases(kb, load_documents(config.dataset, "train", config.data_dir, config.train_file))
    return synonym_sets(kb, aliases, config.max_names_per_entity)


def align(config: AlignConfig) -> Path:
    """Align ``config.encoder`` on the KB's synonym sets; returns ``OUTPUT/encoder`` (a ``from_pretrained`` dir)."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

    from bel.checkpointing import read_meta, resolve_checkpoint, save_checkpoint
    from bel.encoders import default_encoder

    config.validate()
    accelerator = Accelerator()
    set_seed(config.seed)
    output = Path(config.output_dir)
    sets = _synonyms(config)
    order = neighbourhood_order(sets, config.neighbours, config.seed)
    steps_per_epoch = len(epoch_batches(sets, order, config.batch_size, config.seed)) // accelerator.num_processes
    total = min(config.max_steps or steps_per_epoch * config.epochs, steps_per_epoch * config.epochs)
    encoder = config.encoder or default_encoder()
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = AutoModel.from_pretrained(encoder)
    for name, parameter in model.named_parameters():
        if name.startswith("pooler."):  # mean pooling never reads it; DDP refuses parameters without gradients
            parameter.requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    state = {"global_step": 0, "epoch": 0, "batches_seen": 0, "losses": []}
    resumed = resolve_checkpoint(config.resume_from_checkpoint, output)
    if resumed is not None:
        accelerator.load_state(str(resumed))
        state.update(read_meta(resumed))
    logger.info("%d entities, %d steps per epoch, %d steps", len(sets), steps_per_epoch, total)
    started = time.perf_counter()
    model.train()
    while state["global_step"] < total:
        batches = epoch_batches(sets, order, config.batch_size, config.seed + state["epoch"])
        mine = batches[accelerator.process_index :: accelerator.num_processes][:steps_per_epoch]
        for batch in mine[state["batches_seen"] :]:
            anchors = encode_names(model, tokenizer, [a for a, _ in batch], config.max_length)
            positives = encode_names(model, tokenizer, [p for _, p in batch], config.max_length)
            loss = contrastive_loss(anchors, positives, config.temperature)
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            state["global_step"] += 1
            state["batches_seen"] += 1
            state["losses"].append(round(loss.item(), 5))
            _log_step(state, config, total)
            if config.checkpoint_every and state["global_step"] % config.checkpoint_every == 0:
                save_checkpoint(accelerator, output, dict(state), keep=config.keep_checkpoints)
            if state["global_step"] >= total:
                break
        if state["global_step"] < total:
            state.update(epoch=state["epoch"] + 1, batches_seen=0)
    return _save(accelerator, model, tokenizer, config, state, time.perf_counter() - started, len(sets))


def _log_step(state: dict, config: AlignConfig, total: int) -> None:
    step = state["global_step"]
    if step % config.log_every == 0 or step == total:
        recent = state["losses"][-config.log_every :]
        logger.info("align step %d/%d loss %.4f", step, total, sum(recent) / len(recent))


def _save(accelerator, model, tokenizer, config: AlignConfig, state: dict, seconds: float, entities: int) -> Path:
    directory = Path(config.output_dir) / ENCODER_DIR
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        record = {
            "config": asdict(config),
            "entities": entities,
            "steps": state["global_step"],
            "train_seconds": round(seconds, 1),
            "losses": state["losses"],
        }
        (Path(config.output_dir) / RECORD_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return directory


CACHE_SETTINGS = (
    "corpus_mentions", "epochs", "max_steps", "batch_size", "learning_rate", "warmup_ratio", "temperature",
    "max_length", "max_names_per_entity", "neighbours", "seed",
)  # fmt: skip
"""Settings that change the aligned weights (the cache key holds them, the KB's and corpus' bytes and the encoder)."""


def cache_root() -> Path:
    """Where aligned encoders are cached: ``$BEL_ALIGN_CACHE``, else ``~/.cache/bel/align``."""
    import os

    return Path(os.environ.get("BEL_ALIGN_CACHE") or Path.home() / ".cache" / "bel" / "align")


def alignment_key(config: AlignConfig) -> str:
    """A digest of everything the aligned weights depend on: the KB file, the corpus file (with
    ``corpus_mentions``), the encoder's weights and the training settings."""
    import hashlib

    from bel.data.datasets import corpus_path, kb_path
    from bel.encoders import default_encoder

    digest = hashlib.sha256()
    files = [Path(config.kb_file) if config.kb_file else kb_path(config.dataset, config.data_dir)]
    if config.corpus_mentions:
        files.append(
            Path(config.train_file) if config.train_file else corpus_path(config.dataset, "train", config.data_dir)
        )
    encoder = Path(config.encoder or default_encoder())
    files += sorted(encoder.glob("*.safetensors")) if encoder.is_dir() else []
    for file in files:
        digest.update(file.read_bytes())
    digest.update(f"{config.dataset if config.corpus_mentions else ''}|{'' if encoder.is_dir() else encoder}".encode())
    if config.corpus_mentions:  # corpus names now come before the KB's synonyms (synonym_sets): not the older weights
        digest.update(b"|aliases-first")
    digest.update(json.dumps({name: getattr(config, name) for name in CACHE_SETTINGS}, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def cached_alignment(config: AlignConfig) -> Path:
    """The aligned encoder for ``config``: from the cache when an identical alignment ran before, else aligned now
    (in the cache directory, resumable with checkpoints every 100 steps) and kept there."""
    from dataclasses import replace

    directory = cache_root() / alignment_key(config)
    if (directory / RECORD_FILE).is_file() and (directory / ENCODER_DIR).is_dir():
        logger.info("reusing the aligned encoder %s", directory / ENCODER_DIR)
        return directory / ENCODER_DIR
    resume = "latest" if (directory / "checkpoints").is_dir() else None
    run = replace(config, output_dir=str(directory), checkpoint_every=100, resume_from_checkpoint=resume)
    return align(run)
