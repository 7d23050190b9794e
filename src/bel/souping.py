"""Model soups: one checkpoint whose weights are the uniform average of several trained from the same start.

Rerankers (or detectors) fine-tuned from one encoder with different seeds land in one basin of the loss, and the mean
of their weights is usually at least as good as the best of them (Wortsman et al., "Model soups", ICML 2022) while it
costs one model's time at inference, unlike an ensemble. `soup_checkpoints` averages saved linkers (their reranker and,
when every source has one, their `detector/`) or saved detector folders. The sources must be the same model: same
configuration apart from provenance, same weight names and shapes, and for linkers the same retriever files (the
retriever is copied, not averaged). Seeds and training data may differ; starts may not (a soup of models fine-tuned
from different encoders is noise).

Example::

    bel soup runs/seed42/best runs/seed43/best --output-dir runs/soup/best
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .configuration_bel import BelConfig
from .detection_bel import DETECTOR_DIR
from .link_state import file_sha256
from .retrieval_bel import RETRIEVER_DIR

logger = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"
SOUP_KEY = "bel_soup"
"""Config key recording the sources of a souped model (kept in `config.json` and shown on the model card)."""
PROVENANCE_KEYS = frozenset({"bel_training", SOUP_KEY, "transformers_version", "_name_or_path"})
"""Config keys that may differ between the sources: how each was trained, not what it is."""
SAME_FILES = ("tokenizer.json", "dictionary.json")


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform mean of `states`, each tensor in its own dtype; integer tensors (buffers such as position ids)
    must be equal in all and are kept.

    >>> a, b = {"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 6.0])}
    >>> average_state_dicts([a, b])["w"].tolist()
    [2.0, 4.0]
    """
    if len(states) < 2:
        raise ValueError(f"a soup needs at least two models, got {len(states)}")
    names = set(states[0])
    for index, state in enumerate(states[1:], start=1):
        if set(state) != names:
            differ = sorted(names ^ set(state))[:3]
            raise ValueError(f"model {index} has other weights than model 0 (e.g. {differ}): not the same model")
    averaged = {}
    for name, first in states[0].items():
        tensors = [state[name] for state in states]
        if any(t.shape != first.shape for t in tensors):
            raise ValueError(f"weight {name!r} has shapes {[tuple(t.shape) for t in tensors]}: not the same model")
        if first.is_floating_point():
            averaged[name] = torch.stack([t.double() for t in tensors]).mean(0).to(first.dtype)
        elif all(torch.equal(first, t) for t in tensors):
            averaged[name] = first.clone()
        else:
            raise ValueError(f"integer tensor {name!r} differs between the models; it cannot be averaged")
    return averaged


def soup_checkpoints(sources: Sequence[str | os.PathLike], output: str | os.PathLike) -> Path:
    """Write to `output` (new or empty) a copy of `sources[0]` whose weights are the mean of all sources' weights.

    A source is a saved linker (`OUTPUT/best`, its `detector/` averaged too when all sources have one) or a saved
    detector folder. The config of each averaged model records the sources under `bel_soup`.
    """
    paths = [Path(source) for source in sources]
    if len(paths) < 2:
        raise ValueError(f"bel soup: give at least two checkpoints, got {len(paths)}")
    for path in paths:
        if not (path / WEIGHTS).is_file():
            raise FileNotFoundError(f"{path}: no {WEIGHTS}; pass saved linkers (OUTPUT/best) or detector folders")
    target = Path(output)
    if target.exists() and any(target.iterdir()):
        raise ValueError(f"{target} is not empty; choose a new --output-dir")
    parts = [Path(".")]
    if all((path / DETECTOR_DIR / WEIGHTS).is_file() for path in paths):
        parts.append(Path(DETECTOR_DIR))
    for part in parts:
        _check_same_model([path / part for path in paths])
    if (paths[0] / RETRIEVER_DIR).is_dir():
        _check_same_files([path / RETRIEVER_DIR for path in paths], "retriever")
    shutil.copytree(paths[0], target, dirs_exist_ok=True)
    for part in parts:
        _write_average([path / part for path in paths], target / part, [str(path) for path in paths])
    _add_card_note(target / "README.md", [str(path) for path in paths])
    logger.info("souped %d checkpoints (%s) into %s", len(paths), ", ".join(p.as_posix() for p in parts), target)
    return target


def _write_average(directories: list[Path], target: Path, sources: list[str]) -> None:
    states = [load_file(directory / WEIGHTS) for directory in directories]
    save_file(average_state_dicts(states), target / WEIGHTS, metadata={"format": "pt"})
    config_file = target / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config[SOUP_KEY] = {"method": "uniform mean of the weights", "sources": sources}
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _comparable_config(directory: Path) -> dict:
    raw = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    # a linker's config with its defaults filled in, so that a checkpoint saved before a setting existed compares
    # equal to one saved after it with the default value
    config = BelConfig.from_pretrained(directory).to_dict() if raw.get("model_type") == "bel" else raw
    return {key: value for key, value in config.items() if key not in PROVENANCE_KEYS}


def _check_same_model(directories: list[Path]) -> None:
    first = _comparable_config(directories[0])
    for directory in directories[1:]:
        other = _comparable_config(directory)
        differ = sorted(key for key in set(first) | set(other) if first.get(key) != other.get(key))
        if differ:
            raise ValueError(
                f"{directory} is configured differently from {directories[0]} ({', '.join(differ)}): a soup "
                "averages models of one configuration trained from one start, e.g. the same `bel train` command "
                "with other --seed values"
            )
    _check_same_files(directories, "files", names=SAME_FILES)


def _check_same_files(directories: list[Path], what: str, names: Sequence[str] | None = None) -> None:
    def fingerprint(directory: Path) -> dict[str, str]:
        files = [directory / name for name in names] if names else sorted(directory.rglob("*"))
        return {file.relative_to(directory).as_posix(): file_sha256(file) for file in files if file.is_file()}

    first = fingerprint(directories[0])
    for directory in directories[1:]:
        other = fingerprint(directory)
        if other != first:
            differ = sorted(name for name in set(first) | set(other) if first.get(name) != other.get(name))
            raise ValueError(
                f"{directory}: {what} differ from {directories[0]}'s ({', '.join(differ[:3])}); a soup keeps one "
                "tokenizer, dictionary and retriever, so the sources must share them (train them on the same data "
                "and encoder)"
            )


def _add_card_note(card: Path, sources: list[str]) -> None:
    if not card.is_file():
        return
    listed = "\n".join(f"- `{source}`" for source in sources)
    note = (
        "\n## Weights: a model soup\n\n"
        f"The weights are the uniform mean of {len(sources)} checkpoints trained from the same start (`bel soup`; "
        "Wortsman et al., 2022). The training details and evaluation results above are those of the first source, "
        f"not of the soup (score it with `bel eval`):\n\n{listed}\n"
    )
    card.write_text(card.read_text(encoding="utf-8").rstrip("\n") + "\n" + note, encoding="utf-8")
