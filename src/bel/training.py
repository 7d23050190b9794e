"""Accelerate training of a bel reranker: ``accelerate launch train.py ...``, ``bel train ...`` or :func:`train`.

One script for CPU, multi-process CPU (gloo), GPUs, FSDP and DeepSpeed; mixed precision comes from the launcher.
Data are documents (one LinkingInput each) packed in the configured mode; batches hold whole mentions (see
:mod:`bel.batching`) under a padded-token budget (``batch_size`` is **tokens per process per step**, not sequences,
so every mode sees a similar amount of compute per step). Every epoch the model is evaluated on the dev split (Acc@1
with ``model.score``) and the best epoch is saved as a full pipeline directory in ``OUTPUT/best``, with a model card
(:mod:`bel.model_card`) that records the data, KB, hyperparameters, dev results and software versions.

KB synonyms can be added as context-free pseudo-mentions (:mod:`bel.kb_examples`): ``--kb-examples R`` adds R per
corpus training mention; a KB-only run (``--kb-file KB`` with no corpus, or ``--dataset X --kb-only``) trains on
``--kb-examples-count`` of them alone and picks its epoch on the synonyms of entities it never trained on.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bel.encoders import default_encoder, set_attention_dropout

if TYPE_CHECKING:
    from bel.model_card import LinkerCardData

logger = logging.getLogger(__name__)
STAGES = ("linker", "detector", "both")
RETRIEVALS = ("tfidf", "hybrid")
PACKING_SETTINGS = (
    "mode",
    "template",
    "num_candidates",
    "loss",
    "context_length",
    "max_sequence_length",
    "candidate_namespace",
)
"""Settings a run may change on an `--init-from` model; the rest of `MODEL_SETTINGS` is fixed by its weights."""
MODEL_SETTINGS = (*PACKING_SETTINGS, "use_retrieval_score", "retrieval_score_init", "slot_pooling")

KB_NAMES = {"medic": "MEDIC", "mesh": "MeSH"}


@dataclass
class TrainConfig:
    """Options of :func:`train` (the CLI flags are the field names with dashes, their help the fields' ``help``)."""

    dataset: str | None = field(
        default=None,
        metadata={"help": "ncbi-disease, bc5cdr-disease or bc5cdr-chemical (read from --data-dir / BEL_DATA_DIR)"},
    )
    data_dir: str | None = None
    train_file: str | None = None
    dev_file: str | None = None
    kb_file: str | None = None
    encoder: str | None = field(
        default=None,
        metadata={"help": "Hub id or local directory of a BERT-family encoder (default: bundled all-MiniLM-L6-v2)"},
    )
    init_from: str | None = field(
        default=None,
        metadata={"help": "a saved bel model directory to continue training from (fresh optimizer and schedule)"},
    )
    output_dir: str = "runs/train"
    mode: str = "sentence"
    template: str = "compact"
    num_candidates: int = 16
    loss: str = "listwise"
    use_retrieval_score: bool = field(
        default=True,
        metadata={
            "help": "feed the retriever's score to the scorer as a learned input, so reranking starts "
            "from the retriever's ranking (default: on)"
        },
    )
    retrieval_score_init: float = field(
        default=10.0,
        metadata={
            "help": "initial (learned) weight of the retriever's score with --use-retrieval-score; large "
            "values start at the retriever's ranking but leave the scorer little to learn"
        },
    )
    slot_pooling: str = field(
        default="span",
        metadata={
            "help": "span (mean of [MASK] + candidate name; learns much faster) or mask (the paper's [MASK] state)"
        },
    )
    attention_dropout: float = field(
        default=0.0,
        metadata={
            "help": "dropout on the encoder's attention probabilities while training (default 0: with dropout "
            "SDPA materialises (batch, heads, length, length) tensors, twice the CPU cost per "
            "token of long packed sequences); negative keeps the encoder's"
        },
    )
    candidate_namespace: bool = field(
        default=False,
        metadata={
            "help": "show each candidate's id namespace (OMIM, MESH:D, ...) before its name, so the reranker can "
            "learn which vocabulary the corpus annotates with when several share a name (off by default: NCBI dev "
            "Acc@1 rose in all three runs, test fell in two; 0.82x reranker speed; eval/RESULTS.md)"
        },
    )
    context_length: int = 64
    max_sequence_length: int = 512
    learning_rate: float = 5e-5
    head_learning_rate_multiplier: float = 20.0
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    scheduler: str = "linear"
    epochs: int = field(
        default=1,
        metadata={
            "help": "training epochs; the dev split picks the best (default 1: a second epoch overfitted, "
            "eval/RESULTS.md)"
        },
    )
    max_steps: int | None = None
    batch_size: int = field(
        default=4096, metadata={"help": "padded tokens per batch per process (a token budget, not a sequence count)"}
    )
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    seed: int = 42
    checkpoint_every: int = field(
        default=0, metadata={"help": "save a resumable checkpoint every N optimizer steps (0: never)"}
    )
    keep_checkpoints: int = 2
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "a checkpoint directory, or `latest` (newest complete one in --output-dir)"}
    )
    early_stopping_patience: int | None = None
    max_train_documents: int | None = None
    eval_max_documents: int | None = None
    eval_max_tokens: int = 2048
    push_to_hub: str | None = field(default=None, metadata={"help": "Hub repo id to upload the best checkpoint to"})
    log_every: int = 10
    stop_after_step: int | None = field(
        default=None, metadata={"help": "debug: exit hard (os._exit) right after the checkpoint at this step"}
    )
    stage: str = field(
        default="linker",
        metadata={
            "help": "what to train: linker (the reranker, default), detector (the mention detector alone) or both (the "
            "reranker, then the detector saved inside OUTPUT/best/detector)"
        },
    )
    train_on: str = field(
        default="all",
        metadata={
            "help": "which training mentions the reranker learns from: all (default) or hard (only those the "
            "confidence cascade leaves to the reranker: no unique exact match)"
        },
    )
    detector_epochs: int = field(
        default=8,
        metadata={"help": "mention detector epochs; dev F1 picks one (default 8: dev still rose at epochs 5-7)"},
    )
    detector_learning_rate: float = 1e-4
    detector_batch_size: int = field(default=32, metadata={"help": "windows per detector training step, at most"})
    detector_case_types: bool = field(
        default=False,
        metadata={
            "help": "feed the detector each word's letter case as token type ids (the default encoder is uncased: "
            "it cannot tell 'AIDS' from 'aids'); off by default: no gain on NCBI dev after two epochs (eval/RESULTS.md)"
        },
    )
    detector_context: str = field(
        default="passage",
        metadata={
            "help": "what the detector reads as one sequence: each passage alone ('passage') or a document's passages "
            "together, [SEP] between them ('document': a title is read with its abstract)",
        },
    )
    detector_dictionary: bool | None = field(
        default=None,
        metadata={
            "help": "feed the detector the matches of the KB's names of each entity type (MeSH trees C/F03 for Disease, "
            "D for Chemical; every name for a KB without categories) as token type ids; the names ship in the "
            "detector's dictionary.json. Default: on when the run has a KB (--dataset or --kb-file): dev strict F1 "
            "+1.3 NCBI, +2.0 BC5CDR (eval/RESULTS.md)"
        },
    )
    detector_dictionary_mentions: bool = field(
        default=False,
        metadata={
            "help": "add the training mentions to the detector's dictionary (each training document is tagged with "
            "the other half's mentions only, so that the detector does not learn to trust a dictionary holding its "
            "own gold mentions)"
        },
    )
    detector_train_on_dev: bool = field(
        default=False,
        metadata={
            "help": "train the detector on the training and all dev documents for exactly --detector-epochs and keep "
            "the last epoch (no dev selection; how most published BioNER test figures are trained); default: off, "
            "dev F1 picks the epoch"
        },
    )
    detector_init_from: str | None = field(
        default=None,
        metadata={
            "help": "a saved detector (a detector/ folder, or a checkpoint holding one) to start the detector from, "
            "e.g. one trained on another corpus: its encoder, the head rows and dictionary token types of the labels "
            "it shares with this run; the rest starts fresh"
        },
    )
    detector_max_tokens: int = field(
        default=2048,
        metadata={"help": "padded tokens per detector training step, at most (windows of similar length share a step)"},
    )
    attach_to: str | None = field(
        default=None,
        metadata={"help": "with --stage detector: a saved linker directory that receives the trained detector"},
    )
    align: bool = field(
        default=True,
        metadata={
            "help": "synonym-align the encoder on the KB's names before training (bel align; cached and reused, see "
            "BEL_ALIGN_CACHE): the reranker and the dense retriever start from the aligned encoder (default: on)"
        },
    )
    align_epochs: int = field(default=1, metadata={"help": "epochs of the synonym alignment (default: 1)"})
    retrieval: str = field(
        default="hybrid",
        metadata={
            "help": "tfidf (char n-grams) or hybrid (TF-IDF fused with dense retrieval by the aligned encoder, or by "
            "--dense-encoder), saved in the checkpoint (default: hybrid)"
        },
    )
    dense_encoder: str | None = field(
        default=None,
        metadata={"help": "encoder of the dense retriever (default: the aligned encoder, else --encoder's)"},
    )
    fusion_weight: float = field(
        default=0.3, metadata={"help": "hybrid retrieval: weight of the TF-IDF cosine (the dense one gets the rest)"}
    )
    kb_examples: float = field(
        default=0.0,
        metadata={
            "help": "KB synonyms added as context-free pseudo-mentions (bel.kb_examples), per corpus training "
            "mention (0: none, the default)"
        },
    )
    kb_only: bool = field(
        default=False,
        metadata={
            "help": "train on the KB alone (the --dataset's KB or --kb-file): no corpus aliases in the retriever, "
            "no corpus examples; implied by --kb-file without --dataset/--train-file"
        },
    )
    kb_examples_count: int = field(
        default=5000, metadata={"help": "KB-only runs: pseudo-mentions to train on (default: 5000, as measured)"}
    )
    kb_dev_mentions: int = field(
        default=1000,
        metadata={
            "help": "KB-only runs without --dev-file: dev pseudo-mentions, the names of entities set aside from "
            "training (default: 1000)"
        },
    )

    def validate(self) -> None:
        if self.train_on not in ("all", "hard"):
            raise ValueError(f"--train-on must be all or hard, got {self.train_on!r}.")
        if self.stage not in STAGES:
            raise ValueError(f"--stage must be one of {', '.join(STAGES)}, got {self.stage!r}.")
        if self.stage == "detector" and not (self.dataset or self.train_file):
            raise ValueError("Pass --dataset NAME (with --data-dir or BEL_DATA_DIR) or --train-file.")
        if self.detector_dictionary_mentions and not self.uses_detector_dictionary:
            raise ValueError(
                "--detector-dictionary-mentions needs the detector dictionary (a KB, and no --no-detector-dictionary)."
            )
        if self.detector_dictionary is True and not (self.dataset or self.kb_file):
            raise ValueError("--detector-dictionary needs the KB's names: pass --dataset NAME or --kb-file.")
        if self.detector_init_from is not None:
            from bel.detector_training import detector_source

            detector_source(self.detector_init_from)
        if self.detector_train_on_dev and not (self.dataset or self.dev_file):
            raise ValueError("--detector-train-on-dev needs dev documents: pass --dataset NAME or --dev-file.")
        if self.stage != "detector" and not self.dataset and not self.kb_file:
            raise ValueError(
                "Pass --dataset NAME (with --data-dir or BEL_DATA_DIR), --train-file and --kb-file, or --kb-file alone "
                "(a KB-only linker)."
            )
        if self.epochs < 1 and not self.max_steps:
            raise ValueError("--epochs must be >= 1 (or pass --max-steps).")
        if self.retrieval not in RETRIEVALS:
            raise ValueError(f"--retrieval must be one of {', '.join(RETRIEVALS)}, got {self.retrieval!r}.")
        if not 0 <= self.fusion_weight <= 1:
            raise ValueError(f"--fusion-weight must be in [0, 1], got {self.fusion_weight}.")
        if self.kb_examples < 0:
            raise ValueError(f"--kb-examples must be >= 0, got {self.kb_examples}.")
        if self.kb_only_run:
            self._validate_kb_only()

    @property
    def uses_detector_dictionary(self) -> bool:
        """Whether the detector reads KB name matches: as asked, else whenever the run has a KB."""
        if self.detector_dictionary is not None:
            return self.detector_dictionary
        return bool(self.dataset or self.kb_file)

    @property
    def kb_only_run(self) -> bool:
        """Training on the KB alone: `--kb-only`, or `--kb-file` without a corpus (`--dataset`, `--train-file`)."""
        return self.kb_only or bool(self.kb_file and not self.dataset and not self.train_file)

    def _validate_kb_only(self) -> None:
        if self.train_file:
            raise ValueError("--kb-only trains on the KB alone: drop --train-file (or --kb-only).")
        if self.stage != "linker":
            raise ValueError(f"--stage {self.stage} needs an annotated corpus; a KB-only run trains the linker only.")
        if self.kb_examples_count < 1:
            raise ValueError(f"--kb-examples-count must be >= 1 in a KB-only run, got {self.kb_examples_count}.")
        if not self.dev_file and self.kb_dev_mentions < 1:
            raise ValueError("--kb-dev-mentions must be >= 1 in a KB-only run without --dev-file.")


def _corpus(config: TrainConfig) -> tuple[list, list, list]:
    """All training documents, the run's share of them (`--max-train-documents`) and the dev documents it scores."""
    from bel.examples import load_documents

    all_train_docs = load_documents(config.dataset, "train", config.data_dir, config.train_file)
    train_docs = all_train_docs[: config.max_train_documents] if config.max_train_documents else all_train_docs
    dev_docs = []
    if config.dev_file or config.dataset:
        dev_docs = load_documents(config.dataset, "dev", config.data_dir, config.dev_file)
        dev_docs = dev_docs[: config.eval_max_documents or None]
    return all_train_docs, train_docs, dev_docs


def _data(config: TrainConfig, log, retrieval: dict | None = None):
    from bel.examples import build_examples, build_retriever, hard_mentions_only, load_knowledge_base, mention_types
    from bel.kb_examples import synthesise_examples

    kb = load_knowledge_base(config.dataset, config.data_dir, config.kb_file)
    if config.kb_only_run:
        retriever, train, dev = _kb_only_data(config, kb, retrieval or {})
    else:
        all_train_docs, train_docs, dev_docs = _corpus(config)
        retriever = build_retriever(
            kb, all_train_docs, **(retrieval or {})
        )  # aliases of the whole training split, even for a subset run
        # typed candidates (the KB branch of the mention's type), as at inference
        train = build_examples(
            train_docs,
            retriever,
            config.num_candidates,
            kb=kb,
            training=True,
            seed=config.seed,
            types=mention_types(train_docs, config.dataset),
            namespaces=config.candidate_namespace,
        )
        dev = (
            build_examples(
                dev_docs,
                retriever,
                config.num_candidates,
                kb=kb,
                retrieve_k=64,
                types=mention_types(dev_docs, config.dataset),
                namespaces=config.candidate_namespace,
            )
            if dev_docs
            else []
        )
        count = round(config.kb_examples * sum(len(e.gold_ids) for e in train))
        if count:
            train += synthesise_examples(
                kb, retriever, config.num_candidates, count, seed=config.seed, namespaces=config.candidate_namespace
            )
    if config.train_on == "hard":
        train = hard_mentions_only(train)
    log.info(
        "%d training documents (%d mentions, %d of them KB synonyms), %d dev documents",
        len(train),
        sum(len(e.gold_ids) for e in train),
        synthesised_mentions(train),
        len(dev),
    )
    return retriever, train, dev


def _kb_only_data(config: TrainConfig, kb, retrieval: dict) -> tuple[Any, list, list]:
    """A KB-only run: the retriever over the KB's names alone, `kb_examples_count` pseudo-mentions to train on, and
    dev = `--dev-file`, else pseudo-mentions of entities whose names training never uses (`held_out_entities`)."""
    from bel.examples import build_examples, build_retriever, load_documents
    from bel.kb_examples import held_out_entities, synthesise_examples

    retriever = build_retriever(kb, **retrieval)
    held_out = set() if config.dev_file else held_out_entities(kb, config.kb_dev_mentions, seed=config.seed)
    namespaces = config.candidate_namespace
    train = synthesise_examples(
        kb,
        retriever,
        config.num_candidates,
        config.kb_examples_count,
        seed=config.seed,
        exclude_entities=held_out,
        namespaces=namespaces,
    )
    if config.dev_file:
        dev_docs = load_documents(None, "dev", config.data_dir, config.dev_file)[: config.eval_max_documents or None]
        dev = build_examples(dev_docs, retriever, config.num_candidates, kb=kb, retrieve_k=64, namespaces=namespaces)
    else:
        dev = synthesise_examples(
            kb,
            retriever,
            config.num_candidates,
            config.kb_dev_mentions,
            seed=config.seed + 1,
            entities=held_out,
            training=False,
            namespaces=namespaces,
        )
    return retriever, train, dev


def synthesised_mentions(examples: list) -> int:
    """How many of the examples' mentions are KB synonyms (`bel.kb_examples`), not corpus mentions."""
    from bel.kb_examples import SOURCE

    return sum(len(e.gold_ids) for e in examples if e.doc_id.startswith(SOURCE))


def _evaluate(accelerator, model, tokenizer, examples, retriever, config: TrainConfig) -> dict:
    """Dev metrics, each process scoring its share of the documents (gathered with ``gather_object``)."""
    from accelerate.utils import gather_object

    from bel.consistency_bel import DEFAULT_REPEATED_NAMES
    from bel.evaluation import linking_metrics, rank_candidates, score_examples

    unwrapped = accelerator.unwrap_model(model)
    unwrapped.eval()
    rows = []
    with accelerator.split_between_processes(examples) as part:
        # as the pipeline will link: mentions the cascade decides keep the retriever's ranking
        cascade = getattr(unwrapped.config, "cascade", False)
        repeated_names = getattr(unwrapped.config, "repeated_names", DEFAULT_REPEATED_NAMES)
        scores = score_examples(
            unwrapped,
            tokenizer,
            part,
            max_tokens=config.eval_max_tokens,
            cascade=cascade,
            repeated_names=repeated_names,
        )
        for example, doc_scores in zip(part, scores, strict=True):
            for m, ids in enumerate(example.candidate_ids):
                rows.append(
                    (
                        rank_candidates(ids, doc_scores[m]),
                        example.gold_ids[m],
                        example.retrieved_ids[m],
                        any(g in retriever for g in example.gold_ids[m]),
                    )
                )
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
        groups.append(
            {"params": head, "weight_decay": 0.0, "lr": config.learning_rate * config.head_learning_rate_multiplier}
        )
    return groups


CARD_HYPERPARAMETERS = (
    "learning_rate",
    "head_learning_rate_multiplier",
    "epochs",
    "max_steps",
    "batch_size",
    "gradient_accumulation_steps",
    "warmup_ratio",
    "scheduler",
    "weight_decay",
    "max_grad_norm",
    "loss",
    "attention_dropout",
    "retrieval_score_init",
    "context_length",
    "max_sequence_length",
    "early_stopping_patience",
    "max_train_documents",
    "eval_max_documents",
    "train_on",
    "seed",
)
"""The TrainConfig fields the model card lists (unset ones are left out)."""


@dataclass
class _Run:
    """One training run: its Accelerate objects, data and the resumable ``state`` (saved in ``meta.json``)."""

    config: TrainConfig
    accelerator: Any
    log: Any
    model: Any
    tokenizer: Any
    retriever: Any
    optimizer: Any
    loader: Any
    sampler: Any
    scheduler: Any
    dev_examples: list
    train_mentions: int
    kb_mentions: int
    total_steps: int
    epochs: int
    state: dict = field(
        default_factory=lambda: {
            "global_step": 0,
            "epoch": 0,
            "batches_seen": 0,
            "best_score": None,
            "best_epoch": None,
            "bad_epochs": 0,
            "history": [],
        }
    )
    resumed_from: Path | None = None
    bar: Any = None
    stop: bool = False

    @property
    def output(self) -> Path:
        return Path(self.config.output_dir)

    @property
    def best_dir(self) -> Path:
        return self.output / "best"


def train(config: TrainConfig) -> Path:
    """Train what `config.stage` says and return the directory of the result.

    `linker` (default): the reranker; returns `OUTPUT/best`, a full pipeline directory. `detector`: the mention
    detector alone; returns `OUTPUT/detector` (copied into `--attach-to DIR`'s linker when given). `both`: the reranker,
    then the detector, saved inside `OUTPUT/best/detector`.
    """
    config.validate()
    if config.stage == "detector":
        return _detector_stage(config, attach_to=config.attach_to)
    best = _train_linker(config)
    if config.stage == "both":
        _detector_stage(config, attach_to=str(best))
    return best


def _train_linker(config: TrainConfig) -> Path:
    run = prepare(config)
    for epoch in range(run.state["epoch"], run.epochs):
        if run.stop:
            break
        record = run_epoch(run, epoch)
        if not evaluate_and_save(run, epoch, record):
            break
    return finish(run)


def prepare(config: TrainConfig) -> _Run:
    """Accelerator, data, model, optimizer and schedule; resumes the state of ``--resume-from-checkpoint``."""
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    accelerator, log = _accelerator(config)
    set_seed(config.seed)
    encoder, retrieval = _encoders(config)
    retriever, train_examples, dev_examples = _data(config, log, retrieval)
    model, tokenizer = _initial_model(config, encoder)
    set_attention_dropout(model, config.attention_dropout)
    run = _Run(
        config=config,
        accelerator=accelerator,
        log=log,
        model=model,
        tokenizer=tokenizer,
        retriever=retriever,
        optimizer=None,
        loader=None,
        sampler=None,
        scheduler=None,
        dev_examples=dev_examples,
        train_mentions=sum(len(e.gold_ids) for e in train_examples),
        kb_mentions=synthesised_mentions(train_examples),
        total_steps=0,
        epochs=0,
    )
    _optimization(run, train_examples)
    _resume(run)
    run.bar = tqdm(
        total=run.total_steps,
        initial=run.state["global_step"],
        desc="train",
        disable=not accelerator.is_local_main_process,
    )
    run.model.train()
    run.stop = run.state["global_step"] >= run.total_steps
    return run


def _encoders(config: TrainConfig) -> tuple[str, dict]:
    """The reranker's starting encoder (aligned on the KB with `align`, from the cache when it ran before) and the
    retriever options (`build_retriever`) of `retrieval`."""
    encoder = config.encoder or default_encoder()
    if config.align and not config.init_from:
        from bel.alignment import AlignConfig, cached_alignment

        encoder = str(
            cached_alignment(
                AlignConfig(
                    dataset=config.dataset if not config.kb_file else None,
                    data_dir=config.data_dir,
                    kb_file=config.kb_file,
                    encoder=encoder,
                    epochs=config.align_epochs,
                    seed=config.seed,
                )
            )
        )
    if config.retrieval == "tfidf":
        return encoder, {}
    return encoder, {"dense_encoder": config.dense_encoder or encoder, "fusion_weight": config.fusion_weight}


def _accelerator(config: TrainConfig):
    from accelerate import Accelerator
    from accelerate.logging import get_logger
    from accelerate.tracking import register_tracker_class
    from accelerate.utils import ProjectConfiguration

    from bel.checkpointing import JsonlTracker

    output = Path(config.output_dir)
    register_tracker_class(JsonlTracker)  # before Accelerator(): never touch PartialState earlier
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with="jsonl",
        project_config=ProjectConfiguration(project_dir=str(output), logging_dir=str(output / "logs")),
    )
    return accelerator, get_logger(__name__)


def _optimization(run: _Run, train_examples: list) -> None:
    """Packed sequences, the token-budget loader, AdamW and the schedule, all passed through ``accelerator.prepare``."""
    import torch
    from torch.utils.data import DataLoader
    from transformers import get_scheduler

    from bel.batching import TokenBudgetBatchSampler, UnitCollator, sequence_units

    config, accelerator = run.config, run.accelerator
    sequences = run.tokenizer.pack(
        [e.input for e in train_examples],
        mode=config.mode,
        max_length=config.max_sequence_length,
        context_length=config.context_length,
        template=config.template,
    )
    units = sequence_units(sequences)
    run.sampler = TokenBudgetBatchSampler(units, config.batch_size, seed=config.seed)
    # a private generator: creating the (skipping) iterator on resume must not consume the global RNG that dropout uses
    loader = DataLoader(
        units,
        batch_sampler=run.sampler,
        collate_fn=UnitCollator(run.tokenizer, config.use_retrieval_score),
        generator=torch.Generator().manual_seed(config.seed),
    )
    batches_per_process = math.ceil(len(run.sampler) / accelerator.num_processes)
    steps_per_epoch = math.ceil(batches_per_process / config.gradient_accumulation_steps)
    run.total_steps = config.max_steps or config.epochs * steps_per_epoch
    run.epochs = math.ceil(run.total_steps / steps_per_epoch) if config.max_steps else config.epochs
    optimizer = torch.optim.AdamW(parameter_groups(run.model, config), lr=config.learning_rate)
    # AcceleratedScheduler steps the wrapped scheduler once per process per optimizer step
    scheduler = get_scheduler(
        config.scheduler,
        optimizer,
        num_warmup_steps=int(config.warmup_ratio * run.total_steps) * accelerator.num_processes,
        num_training_steps=run.total_steps * accelerator.num_processes,
    )
    run.model, run.optimizer, run.loader, run.scheduler = accelerator.prepare(run.model, optimizer, loader, scheduler)
    accelerator.init_trackers("bel", config={k: v for k, v in asdict(config).items() if v is not None})
    run.log.info(
        "%s mode, %d sequences in %d units, %d batches/process/epoch, %d steps",
        config.mode,
        len(sequences),
        len(units),
        batches_per_process,
        run.total_steps,
    )


def _resume(run: _Run) -> None:
    from bel.checkpointing import read_meta, resolve_checkpoint

    run.resumed_from = resolve_checkpoint(run.config.resume_from_checkpoint, run.output)
    if run.resumed_from is not None:
        run.accelerator.load_state(str(run.resumed_from))
        run.state.update(read_meta(run.resumed_from))
        run.log.info(
            "resumed from %s at step %d (epoch %d, %d batches seen)",
            run.resumed_from,
            run.state["global_step"],
            run.state["epoch"],
            run.state["batches_seen"],
        )


def run_epoch(run: _Run, epoch: int) -> dict:
    """Train one epoch (the rest of it when resuming mid-epoch); returns the epoch's record (loss, timing)."""
    accelerator, config, state = run.accelerator, run.config, run.state
    run.sampler.set_epoch(epoch)
    skip = state["batches_seen"] if state["epoch"] == epoch else 0
    state.update(epoch=epoch, batches_seen=skip)
    epoch_loader = accelerator.skip_first_batches(run.loader, skip) if skip else run.loader
    started, losses, checkpoint_seconds = time.perf_counter(), [], 0.0
    for batch in epoch_loader:
        with accelerator.accumulate(run.model):
            loss = run.model(**batch).loss
            accelerator.backward(loss)
            if accelerator.sync_gradients and config.max_grad_norm:
                accelerator.clip_grad_norm_(run.model.parameters(), config.max_grad_norm)
            run.optimizer.step()
            run.scheduler.step()
            run.optimizer.zero_grad()
        state["batches_seen"] += 1
        losses.append(loss.detach().float().item())
        if not accelerator.sync_gradients:
            continue
        state["global_step"] += 1
        run.bar.update(1)
        checkpoint_seconds += _after_step(run, epoch, losses)
        if state["global_step"] >= run.total_steps:
            run.stop = True
            break
    train_seconds = time.perf_counter() - started - checkpoint_seconds
    return {
        "epoch": epoch,
        "step": state["global_step"],
        "train_seconds": train_seconds,
        "train_loss": sum(losses) / max(len(losses), 1),
        "batches": len(losses),
    }


def _after_step(run: _Run, epoch: int, losses: list[float]) -> float:
    """Log, and checkpoint every ``checkpoint_every`` steps (``stop_after_step``: exit hard right after); returns the
    seconds spent checkpointing."""
    from bel.checkpointing import save_checkpoint

    config, step = run.config, run.state["global_step"]
    if step % config.log_every == 0 or step == run.total_steps:
        recent = losses[-config.log_every :]
        run.accelerator.log(
            {"train/loss": sum(recent) / len(recent), "train/lr": run.scheduler.get_last_lr()[0], "epoch": epoch},
            step=step,
        )
    if not (config.checkpoint_every and step % config.checkpoint_every == 0):
        return 0.0
    tick = time.perf_counter()
    save_checkpoint(run.accelerator, run.output, dict(run.state), keep=config.keep_checkpoints)
    if config.stop_after_step and step >= config.stop_after_step:
        run.log.warning("--stop-after-step %d: exiting hard (simulated crash)", step)
        os._exit(3)
    return time.perf_counter() - tick


def evaluate_and_save(run: _Run, epoch: int, record: dict) -> bool:
    """Score the dev split, save ``OUTPUT/best`` when the epoch improved, log; False when early stopping ends the
    run."""
    state, config = run.state, run.config
    if run.dev_examples:
        tick = time.perf_counter()
        metrics = _evaluate(run.accelerator, run.model, run.tokenizer, run.dev_examples, run.retriever, config)
        record.update(
            {
                "eval_seconds": time.perf_counter() - tick,
                "dev/acc@1": metrics["acc@1"],
                "dev/acc@5": metrics["acc@5"],
                "dev/mrr": metrics["mrr"],
                "dev/retriever_acc@1": metrics["retriever_acc@1"],
            }
        )
        score = metrics["acc@1"]
    else:
        score = -float(record["train_loss"])
    if state["best_score"] is None or score > state["best_score"]:
        state.update(best_score=score, best_epoch=epoch, bad_epochs=0)
        _save_best(run, record)
    else:
        state["bad_epochs"] += 1
    state["history"].append(record)
    state.update(epoch=epoch + 1, batches_seen=0)
    run.accelerator.log({k: v for k, v in record.items() if isinstance(v, int | float)}, step=state["global_step"])
    run.log.info("epoch %d: %s", epoch, json.dumps(record))
    if config.early_stopping_patience is not None and state["bad_epochs"] >= config.early_stopping_patience:
        run.log.info("early stopping: no dev improvement for %d epochs", state["bad_epochs"])
        return False
    return True


def finish(run: _Run) -> Path:
    """Write ``train_summary.json``, push ``OUTPUT/best`` when asked, end the trackers; returns ``OUTPUT/best``."""
    accelerator, state = run.accelerator, run.state
    run.bar.close()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        summary = {
            "config": asdict(run.config),
            "best_epoch": state["best_epoch"],
            "best_score": state["best_score"],
            "global_step": state["global_step"],
            "history": state["history"],
            "best_dir": str(run.best_dir),
            "num_processes": accelerator.num_processes,
            "train_mentions": run.train_mentions,
            "kb_mentions": run.kb_mentions,
            "kb_only": run.config.kb_only_run,
            "distributed_type": str(accelerator.distributed_type),
            "resumed_from": str(run.resumed_from) if run.resumed_from else None,
        }
        (run.output / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        if run.config.push_to_hub:
            _push(run.best_dir, run.config.push_to_hub)
    accelerator.end_training()
    return run.best_dir


def _detector_stage(config: TrainConfig, attach_to: str | None) -> Path:
    """Train the detector on the run's corpus (dev F1 picks the epoch, unless `detector_train_on_dev` adds every dev
    document to the training ones and keeps the last epoch); attach it to a saved linker when asked."""
    from bel.detector_training import DetectorSettings, train_detector
    from bel.examples import load_documents, load_knowledge_base
    from bel.saving import attach_detector

    _, train_docs, dev_docs = _corpus(config)
    if config.detector_train_on_dev:
        train_docs = [*train_docs, *load_documents(config.dataset, "dev", config.data_dir, config.dev_file)]
        dev_docs = []
    settings = DetectorSettings(
        encoder=config.encoder or default_encoder(),
        output_dir=config.output_dir,
        dataset=config.dataset,
        epochs=config.detector_epochs,
        learning_rate=config.detector_learning_rate,
        batch_size=config.detector_batch_size,
        max_tokens=config.detector_max_tokens,
        case_types=config.detector_case_types,
        context=config.detector_context,
        dictionary=config.uses_detector_dictionary,
        dictionary_mentions=config.detector_dictionary_mentions,
        train_on_dev=config.detector_train_on_dev,
        init_from=config.detector_init_from,
        seed=config.seed,
    )
    kb = None
    if config.uses_detector_dictionary:
        kb = load_knowledge_base(config.dataset, config.data_dir, config.kb_file)
    else:
        why = (
            "--no-detector-dictionary" if config.detector_dictionary is False else "no KB: pass --dataset or --kb-file"
        )
        logger.info("the detector trains without a dictionary (%s)", why)
    directory = train_detector(settings, train_docs, dev_docs, kb=kb)
    if attach_to:
        attach_detector(attach_to, directory)
        logger.info("attached the detector to %s", attach_to)
    return directory


def _initial_model(config: TrainConfig, encoder: str):
    """A fresh model on ``encoder``, or (``--init-from``) a saved bel model to fine-tune further with this run's
    packing options; its scorer, pooling and retrieval-score setting are kept."""
    from bel import BelForMultiCandidateLinking, BelTokenizer
    from bel.saving import load_components

    if config.init_from:
        model, tokenizer, _ = load_components(config.init_from)
        if model.config.use_retrieval_score != config.use_retrieval_score:
            flag = "--use-retrieval-score" if model.config.use_retrieval_score else "--no-use-retrieval-score"
            raise ValueError(
                f"--init-from {config.init_from} was trained with use_retrieval_score="
                f"{model.config.use_retrieval_score}; pass {flag} to continue it."
            )
        for key in PACKING_SETTINGS:
            setattr(model.config, key, getattr(config, key))
        return model.train(), tokenizer
    tokenizer = BelTokenizer.from_encoder(encoder)
    settings = {key: getattr(config, key) for key in MODEL_SETTINGS}
    model = BelForMultiCandidateLinking.from_encoder(encoder, tokenizer=tokenizer, **settings)
    return model, tokenizer


def _save_best(run: _Run, record: dict) -> None:
    """Save the current model as ``OUTPUT/best`` (main process), with a model card for this epoch."""
    from bel.saving import save_linker

    run.accelerator.wait_for_everyone()
    unwrapped = run.accelerator.unwrap_model(run.model)
    if run.accelerator.is_main_process:
        card = card_data(
            run.config,
            unwrapped.config,
            record,
            train_mentions=run.train_mentions,
            kb_mentions=run.kb_mentions,
            training_seconds=sum(h["train_seconds"] for h in run.state["history"]) + record["train_seconds"],
        )
        save_linker(run.best_dir, unwrapped, run.tokenizer, run.retriever, card_data=card)
    run.accelerator.wait_for_everyone()


def card_data(
    config: TrainConfig,
    model_config,
    record: dict,
    *,
    train_mentions: int | None = None,
    training_seconds: float | None = None,
    kb_mentions: int = 0,
) -> LinkerCardData:
    """The model card of a run's best epoch: data, KB, encoder, architecture, hyperparameters, dev metrics (the
    ``dev/*`` keys of the epoch ``record``), cost and software versions. A KB-only run lists no training corpus and
    says so in the Training section; `kb_mentions` of the training mentions were KB synonyms."""
    from bel.model_card import LinkerCardData, environment

    kb_name, kb_file = _kb_description(config)
    dev = {k.removeprefix("dev/"): v for k, v in record.items() if k.startswith("dev/")}
    hyperparameters = {
        name: getattr(config, name) for name in CARD_HYPERPARAMETERS if getattr(config, name) is not None
    }
    if config.kb_only_run:
        hyperparameters["kb_examples_count"] = config.kb_examples_count
    elif config.kb_examples:
        hyperparameters["kb_examples"] = config.kb_examples
    return LinkerCardData(
        datasets=[] if config.kb_only_run else [config.dataset or Path(config.train_file).name],
        training=_training_text(config, kb_mentions),
        kb_name=kb_name,
        kb_file=kb_file,
        base_model=None if config.init_from else config.encoder or default_encoder(),
        init_from=config.init_from,
        mode=model_config.mode,
        template=model_config.template,
        num_candidates=model_config.num_candidates,
        slot_pooling=model_config.slot_pooling,
        use_retrieval_score=model_config.use_retrieval_score,
        hyperparameters=hyperparameters,
        dev_results=[{"dataset": _dev_dataset(config), "split": "dev", "metrics": dev}] if dev else [],
        training_seconds=training_seconds,
        train_mentions=train_mentions,
        best_epoch=record["epoch"],
        **environment(),
    )


def _training_text(config: TrainConfig, kb_mentions: int) -> str | None:
    """The model card's note on KB knowledge in the run: KB-synthesised mentions, synonym alignment, hybrid retrieval
    (None when the run used none of them)."""
    notes = []
    if config.kb_only_run:
        notes.append(
            f"KB-only linker: trained without any annotated corpus, on {kb_mentions} synonyms of the knowledge base "
            "used as context-free pseudo-mentions, each linked through its entity's other names (`bel.kb_examples`)."
        )
    elif kb_mentions:
        notes.append(
            f"{kb_mentions} of the training mentions are KB synonyms used as pseudo-mentions (`bel.kb_examples`)."
        )
    if config.align and not config.init_from:
        notes.append(
            "The encoder was synonym-aligned on the knowledge base's names before training (`bel align`: names of one "
            "entity pulled together, TF-IDF neighbours as in-batch negatives)."
        )
    if config.retrieval == "hybrid":
        notes.append(
            "Candidates come from hybrid retrieval: char n-gram TF-IDF and dense name embeddings, interpolated with "
            f"TF-IDF weight {config.fusion_weight} (saved in `retriever/dense/`)."
        )
    return " ".join(notes) or None


def _dev_dataset(config: TrainConfig) -> str:
    if config.kb_only_run:
        return Path(config.dev_file).name if config.dev_file else "held-out KB synonyms"
    return config.dataset or Path(config.dev_file).name


def _kb_description(config: TrainConfig) -> tuple[str | None, str | None]:
    """``(KB name, KB file name)``: the dataset's default KB (``MEDIC``, ``medic_06Jul2012.txt``) or the file given."""
    from bel.data.datasets import DEFAULT_KB, KB_FILES

    if config.kb_file:
        return None, Path(config.kb_file).name
    kb = DEFAULT_KB[config.dataset]
    return KB_NAMES.get(kb, kb), Path(KB_FILES[kb]).name


def _push(directory: Path, repo_id: str) -> None:
    from bel.saving import push_to_hub

    push_to_hub(directory, repo_id)


# ------------------------------------------------------------------------------------------------------ CLI options
def add_train_arguments(parser) -> None:
    """The training options, shared by ``train.py`` and ``bel train``."""
    from bel.commands.options import add_dataclass_arguments

    add_dataclass_arguments(parser, TrainConfig)


def config_from_args(args) -> TrainConfig:
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
