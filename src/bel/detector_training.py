"""Training of the learned mention detector (`bel train --stage detector|both`), Accelerate like the reranker.

The detector is a token-classification model on the encoder (BIO tags with entity types, see `bel.detection_bel`),
trained on the same corpus files as the reranker: every passage is cut into the same overlapping windows the detector
uses at inference, each token labelled by the gold mention it overlaps. Every epoch the detector runs on the dev split
and the epoch with the best strict (exact span and type) F1 is kept in `OUTPUT/detector`.

With a dictionary (`bel train --detector-dictionary`), the KB's names of each entity type (`kb_dictionary`) are matched
in every window and reach the model as token type ids. Only KB names are used, never the training mentions: a
dictionary that held them would find every training mention and teach the model to trust it more than it deserves on
unseen text. `--detector-dictionary-mentions` adds them the safe way: the saved dictionary holds the KB names and every
training mention, but each training document is tagged with a dictionary holding only the other half's mentions
(two folds), so the model learns how far a dictionary of other documents' mentions can be trusted.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bel.data.datasets import entity_type
from bel.detection_bel import (
    CASE_TYPES,
    DETECTOR_DIR,
    IGNORE,
    OUTSIDE,
    MentionDetector,
    bio_labels,
    encode_labels,
    has_detector,
    token_type_count,
)
from bel.retrieval_bel import DEFAULT_TYPE_CATEGORIES

logger = logging.getLogger(__name__)


@dataclass
class DetectorSettings:
    """What the detector stage needs from `bel.training.TrainConfig`."""

    encoder: str
    output_dir: str
    dataset: str | None = None
    epochs: int = 8
    learning_rate: float = 1e-4
    batch_size: int = 32
    max_tokens: int = 2048
    max_length: int = 512
    overlap: int = 64
    case_types: bool = False
    context: str = "passage"
    """"document": a document's passages are read as one sequence (`MentionDetector.context`)."""
    dictionary: bool = False
    """Match the KB's names of each type into token type ids (the KB is passed to `train_detector`)."""
    dictionary_mentions: bool = False
    """Add the training mentions to the dictionary (two folds while training, see the module docstring)."""
    train_on_dev: bool = False
    """Provenance only: the training documents include the dev split (recorded in the detector's config and card)."""
    init_from: str | None = None
    """A saved detector to start from (`start_from`): e.g. one trained on another corpus of the same entity types."""
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42


def gold_entities(doc, dataset: str | None) -> list[tuple[int, int, str]]:
    """A document's gold mentions as `(start, end, type)`, types mapped for `dataset` (NCBI classes -> Disease)."""
    return sorted({(m.start, m.end, entity_type(dataset, m.type) or "Entity") for m in doc.mentions})


def detection_windows(detector: MentionDetector, documents: Sequence, dataset: str | None) -> list[dict]:
    """Training windows `{"input_ids", "labels"}` of every passage (labels -100 on `[CLS]`/`[SEP]`)."""
    windows = []
    for doc in documents:
        entities = gold_entities(doc, dataset)
        for group in detector.passage_groups([(passage.offset, passage.end) for passage in doc.passages]):
            tokens = detector.text_windows(doc.text, group)
            labels = [IGNORE] * len(tokens.ids)  # separators between passages stay unlabelled
            for low, high in tokens.segments:
                labels[low:high] = encode_labels(
                    tokens.offsets[low:high], tokens.words[low:high], entities, detector.label2id
                )
            for start, end in tokens.windows:
                if end > start:
                    window = {
                        "input_ids": detector.window_inputs(tokens, (start, end)),
                        "labels": [IGNORE, *labels[start:end], IGNORE],
                    }
                    if detector.uses_token_types:
                        window["token_type_ids"] = detector.window_token_types(tokens, (start, end))
                    windows.append(window)
    return windows


def detection_scores(detector: MentionDetector, documents: Sequence, dataset: str | None) -> dict:
    """Strict (exact span and type) precision, recall and F1 of `detector` on `documents`."""
    predicted = detector.detect([(doc.text, [(p.offset, p.end) for p in doc.passages]) for doc in documents])
    return strict_scores([gold_entities(doc, dataset) for doc in documents], predicted)


def decoded_scores(detector: MentionDetector, documents: Sequence, scored: Sequence, gold: Sequence) -> dict:
    """Strict scores of `detector.decode` over word log-probabilities `scored` (`MentionDetector.word_log_probs`), with
    the F1 of each of its types."""
    predicted = [detector.decode(doc.text, passages) for doc, passages in zip(documents, scored, strict=True)]
    return strict_scores(gold, predicted) | {
        kind: strict_scores(gold, predicted, kind)["f1"] for kind in detector.types
    }


def strict_scores(gold: Sequence, predicted: Sequence, kind: str | None = None) -> dict:
    """Precision, recall and F1 of exact `(start, end, type)` matches, per document summed (of type `kind` only when
    given)."""
    tp = fp = fn = 0
    for gold_entities_, found in zip(gold, predicted, strict=True):
        expected = {e for e in gold_entities_ if kind is None or e[2] == kind}
        guess = {e for e in found if kind is None or e[2] == kind}
        tp, fp, fn = tp + len(expected & guess), fp + len(guess - expected), fn + len(expected - guess)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def kb_dictionary(kb, types: Sequence[str], type_categories: dict | None = None) -> dict[str, list[str]]:
    """Entity type -> the names of the KB entities of that type, for the detector's dictionary tags.

    A type mapped to KB categories (`type_categories`, default MeSH trees C/F03 for Disease and D for Chemical) gets
    the names of the entities in those branches. Without categories, or for a lone type, every name serves: MEDIC
    holds diseases only. Several types over a KB without categories share one dictionary, keyed `Entity`.
    """
    prefixes = DEFAULT_TYPE_CATEGORIES if type_categories is None else type_categories
    categories = kb.categories()
    rows = kb.names()
    every_name = sorted({name for _, name, _ in rows})
    if len(types) == 1 and not (categories and types[0] in prefixes):
        return {types[0]: every_name}
    dictionary = {}
    for kind in [kind for kind in types if categories and kind in prefixes]:
        chosen = tuple(prefixes[kind])
        members = {e for e, codes in categories.items() if any(c.startswith(chosen) for c in codes)}
        dictionary[kind] = sorted({name for entity, name, _ in rows if entity in members})
    return {kind: names for kind, names in dictionary.items() if names} or {"Entity": every_name}


def with_mentions(dictionary: dict[str, list[str]], documents: Sequence, dataset: str | None) -> dict[str, list[str]]:
    """`dictionary` plus the text of every gold mention of `documents` under its type (every type under `Entity`, the
    key of an untyped dictionary)."""
    extended = {kind: set(names) for kind, names in dictionary.items()}
    for doc in documents:
        for start, end, kind in gold_entities(doc, dataset):
            key = kind if kind in extended else "Entity" if "Entity" in extended else None
            if key is not None:
                extended[key].add(doc.text[start:end])
    return {kind: sorted(names) for kind, names in extended.items()}


def training_windows(settings: DetectorSettings, detector: MentionDetector, train_docs: Sequence) -> list[dict]:
    """The training windows; with `dictionary_mentions`, each half of the documents tagged with the other half's
    mentions added to the KB names, and the detector left with every training mention added (what it saves)."""
    if not (detector.dictionary and settings.dictionary_mentions):
        return detection_windows(detector, train_docs, settings.dataset)
    names = detector.dictionary
    folds = [train_docs[0::2], train_docs[1::2]]
    windows = []
    for fold, other in zip(folds, reversed(folds), strict=True):
        detector.use_dictionary(with_mentions(names, other, settings.dataset))
        windows.extend(detection_windows(detector, fold, settings.dataset))
    detector.use_dictionary(with_mentions(names, train_docs, settings.dataset))
    return windows


def new_detector(settings: DetectorSettings, types: Sequence[str], dictionary: dict | None = None) -> MentionDetector:
    """A detector on `settings.encoder` with a fresh BIO head for `types` (reading `dictionary`'s matches as token
    types when given)."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    labels = bio_labels(types)
    # no attention dropout: with it SDPA materialises (batch, heads, length, length) tensors on CPU (see bel.encoders)
    model = AutoModelForTokenClassification.from_pretrained(
        settings.encoder,
        attention_probs_dropout_prob=0.0,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    count = token_type_count(settings.case_types, dictionary)
    if count > 1:
        add_token_types(model, count)
    detector = MentionDetector(
        model,
        AutoTokenizer.from_pretrained(settings.encoder),
        max_length=settings.max_length,
        overlap=settings.overlap,
        case_types=settings.case_types,
        dictionary=dictionary,
        context=settings.context,
    )
    if settings.init_from:
        start_from(detector, MentionDetector.from_pretrained(detector_source(settings.init_from)))
    return detector


def detector_source(path: str | Path) -> Path:
    """The saved detector at `path`: the `detector/` folder of a checkpoint, or a detector folder itself."""
    directory = Path(path)
    if has_detector(directory):
        return directory / DETECTOR_DIR
    config = directory / "config.json"
    if config.is_file() and OUTSIDE in json.loads(config.read_text(encoding="utf-8")).get("id2label", {}).values():
        return directory
    raise ValueError(
        f"--detector-init-from {path}: no saved detector there; pass a detector/ folder or a checkpoint holding one "
        "(`bel train --stage detector --output-dir DIR` writes DIR/detector)."
    )


def token_type_meanings(detector: MentionDetector) -> list[tuple[int, str, str | None]]:
    """`(letter case, B/I/O, dictionary type)` of each token type id the detector reads, in id order."""
    tags = [(OUTSIDE, None)] + [(bio, kind) for kind in sorted(detector.dictionary) for bio in ("B", "I")]
    return [(case, bio, kind) for case in range(CASE_TYPES if detector.case_types else 1) for bio, kind in tags]


def start_from(detector: MentionDetector, source: MentionDetector) -> None:
    """Give the fresh `detector` what `source` learned: its whole encoder, the head rows of the labels both have
    (`B-Disease` of a BC5CDR detector for an NCBI one) and the token type rows of the same letter case and dictionary
    tag (a dictionary type `source` lacks takes its `O` row). Labels `source` lacks keep their fresh rows."""
    import torch

    if source.tokenizer.get_vocab() != detector.tokenizer.get_vocab():
        raise ValueError(
            "--detector-init-from: that detector was trained on another encoder's vocabulary; pass the --encoder it "
            "was trained from."
        )
    state = {k: v for k, v in source.model.base_model.state_dict().items() if "token_type_embeddings" not in k}
    try:
        detector.model.base_model.load_state_dict(state, strict=False)
    except RuntimeError as error:
        raise ValueError(
            f"--detector-init-from: that detector's encoder is shaped unlike --encoder's; pass the --encoder it was "
            f"trained from ({error})"
        ) from error
    with torch.no_grad():
        head, source_head = detector.model.classifier, source.model.classifier
        for label, i in detector.label2id.items():
            if label in source.label2id:
                head.weight[i] = source_head.weight[source.label2id[label]]
                head.bias[i] = source_head.bias[source.label2id[label]]
        rows = detector.model.base_model.embeddings.token_type_embeddings.weight
        source_rows = source.model.base_model.embeddings.token_type_embeddings.weight
        known = {meaning: j for j, meaning in enumerate(token_type_meanings(source))}
        for i, (case, bio, kind) in enumerate(token_type_meanings(detector)):
            fallbacks = [(case, bio, kind), (0, bio, kind), (case, OUTSIDE, None), (0, OUTSIDE, None)]
            rows[i] = source_rows[next(known[m] for m in fallbacks if m in known)]


def add_token_types(model, count: int) -> None:
    """Give `model` `count` token types (letter-case classes times dictionary tags, see `bel.detection_bel`), each
    starting as the encoder's first segment embedding, so training starts from the encoder's own behaviour."""
    import torch

    embeddings = getattr(model.base_model, "embeddings", None)
    old = getattr(embeddings, "token_type_embeddings", None)
    if old is None:
        raise ValueError(
            f"{type(model.base_model).__name__} has no token type embeddings to carry letter case or dictionary "
            "matches; train the detector without --detector-case-types and --detector-dictionary."
        )
    new = torch.nn.Embedding(count, old.embedding_dim)
    with torch.no_grad():
        new.weight.copy_(old.weight[:1].expand(count, -1))
    embeddings.token_type_embeddings = new
    model.config.type_vocab_size = count


def train_detector(settings: DetectorSettings, train_docs: Sequence, dev_docs: Sequence = (), kb=None) -> Path:
    """Train a detector and return `OUTPUT/detector` (the best dev epoch; the last epoch without dev documents).
    `kb`: the knowledge base whose names make the dictionary (needed with `settings.dictionary`)."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    accelerator = Accelerator()
    set_seed(settings.seed)
    types = sorted({kind for doc in train_docs for _, _, kind in gold_entities(doc, settings.dataset)})
    if not types:
        raise ValueError("no mentions in the training documents: the detector has nothing to learn.")
    if settings.dictionary and kb is None:
        raise ValueError("a detector with a dictionary needs the KB: pass --dataset NAME or --kb-file.")
    dictionary = kb_dictionary(kb, types) if settings.dictionary else None
    if dictionary:
        logger.info("detector dictionary: %s", {kind: len(names) for kind, names in dictionary.items()})
    detector = new_detector(settings, types, dictionary)
    loader, sampler, optimizer, scheduler = _optimization(settings, detector, train_docs)
    model, optimizer, loader, scheduler = accelerator.prepare(detector.model, optimizer, loader, scheduler)
    target, best, history = Path(settings.output_dir) / "detector", None, []
    for epoch in range(settings.epochs):
        sampler.set_epoch(epoch)
        started, losses = time.perf_counter(), _epoch(accelerator, model, optimizer, loader, scheduler)
        record = {
            "epoch": epoch,
            "train_seconds": time.perf_counter() - started,
            "train_loss": sum(losses) / len(losses),
        }
        detector.model = accelerator.unwrap_model(model).eval()
        if accelerator.is_main_process:
            if dev_docs:
                record.update(
                    {f"dev/{k}": v for k, v in detection_scores(detector, dev_docs, settings.dataset).items()}
                )
            score = record.get("dev/f1", epoch)
            if best is None or score > best:
                best = score
                detector.model.config.bel_training = _provenance(settings, train_docs, dev_docs, record)
                detector.save_pretrained(target)
            logger.info("detector epoch %d: %s", epoch, json.dumps(record))
        history.append(record)
        model.train()
        accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        summary = {"types": types, "best_dev_f1": best if dev_docs else None, "history": history}
        (Path(settings.output_dir) / "detector_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return target


def _provenance(settings: DetectorSettings, train_docs: Sequence, dev_docs: Sequence, record: dict) -> dict:
    """How the saved epoch was trained, kept in the detector's config (`bel_training`) for its model card."""
    return {
        "dataset": settings.dataset,
        "encoder": settings.encoder,
        "train_documents": len(train_docs),
        "train_on_dev": settings.train_on_dev,
        "init_from": settings.init_from,
        "dictionary": settings.dictionary,
        "dictionary_mentions": settings.dictionary and settings.dictionary_mentions,
        "context": settings.context,
        "epochs": settings.epochs,
        "epoch": record["epoch"],
        "selection": "dev strict F1" if dev_docs else "last epoch",
        "dev_documents": len(dev_docs),
        "dev_f1": record.get("dev/f1"),
    }


def _optimization(settings: DetectorSettings, detector: MentionDetector, train_docs: Sequence):
    import torch
    from torch.utils.data import DataLoader
    from transformers import get_scheduler

    from bel.batching import TokenBudgetBatchSampler

    windows = training_windows(settings, detector, train_docs)
    pad = detector.tokenizer.pad_token_id or 0
    # windows of similar length share a step: random batches padded every title to the length of an abstract
    sampler = TokenBudgetBatchSampler(
        [[window] for window in windows], settings.max_tokens, seed=settings.seed, max_rows=settings.batch_size
    )
    loader = DataLoader(
        [[window] for window in windows],
        batch_sampler=sampler,
        collate_fn=lambda units: _collate([unit[0] for unit in units], pad),
    )
    decay = [p for n, p in detector.model.named_parameters() if not any(k in n for k in ("bias", "LayerNorm"))]
    plain = [p for n, p in detector.model.named_parameters() if any(k in n for k in ("bias", "LayerNorm"))]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": plain, "weight_decay": 0.0}],
        lr=settings.learning_rate,
    )
    total = settings.epochs * len(sampler)
    scheduler = get_scheduler("linear", optimizer, int(settings.warmup_ratio * total), total)
    logger.info("detector: %d training windows, %d steps", len(windows), total)
    return loader, sampler, optimizer, scheduler


def _collate(batch: list[dict], pad: int) -> dict:
    import torch

    width = max(len(item["input_ids"]) for item in batch)
    extra = {}
    if "token_type_ids" in batch[0]:
        extra["token_type_ids"] = torch.tensor(
            [item["token_type_ids"] + [0] * (width - len(item["token_type_ids"])) for item in batch]
        )
    return {
        **extra,
        "input_ids": torch.tensor([item["input_ids"] + [pad] * (width - len(item["input_ids"])) for item in batch]),
        "attention_mask": torch.tensor(
            [[1] * len(item["input_ids"]) + [0] * (width - len(item["input_ids"])) for item in batch]
        ),
        "labels": torch.tensor([item["labels"] + [IGNORE] * (width - len(item["labels"])) for item in batch]),
    }


def _epoch(accelerator, model, optimizer, loader, scheduler) -> list[float]:
    from tqdm.auto import tqdm

    model.train()
    losses = []
    for batch in tqdm(loader, desc="detector", disable=not accelerator.is_local_main_process):
        loss = model(**batch).loss
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(loss.detach().float().item())
    return losses


__all__ = [
    "DetectorSettings",
    "detection_scores",
    "strict_scores",
    "detection_windows",
    "gold_entities",
    "kb_dictionary",
    "train_detector",
]
