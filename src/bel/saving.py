"""Save, load and push a complete linker: reranker, tokenizer, retriever, code files and model card in one directory.

A saved directory is loadable with `pipeline("entity-linking", model=dir, trust_remote_code=True)` on a machine
without `bel`, and with [`load_linker`] in-process. Weights are written and read as safetensors only; retriever files
are JSON and a NumPy `.npz` read with `allow_pickle=False`. Nothing is ever unpickled.

Example:

```python
>>> from bel.saving import save_linker, load_linker
>>> save_linker("out/linker", model, tokenizer, retriever, card_data={"datasets": ["ncbi-disease"]})  # doctest: +SKIP
>>> load_linker("out/linker")("Varicella causes fever.")  # doctest: +SKIP
```
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from .detection_bel import DETECTOR_DIR, MentionDetector
from .model_card import LinkerCardData, render_model_card
from .pipeline_bel import EntityLinkingPipeline
from .retrieval_bel import RETRIEVER_DIR, RETRIEVER_FILES, CandidateRetriever, has_retriever

logger = logging.getLogger(__name__)

CODE_FILES = tuple(sorted(p.name for p in Path(__file__).resolve().parent.glob("*_bel.py")))
"""The Hub-portable core (every `*_bel.py` sibling), copied next to the weights so remote code can load them."""
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def save_linker(
    directory: str | os.PathLike,
    model,
    tokenizer,
    retriever,
    *,
    card_data: LinkerCardData | dict[str, Any] | None = None,
    detector: MentionDetector | None = None,
) -> Path:
    """Save everything a linker needs into `directory` and return it.

    With `detector`, the learned mention detector goes to `detector/` (an existing one is kept when None is given).

    Writes `config.json` (with `auto_map` and `custom_pipelines`), `model.safetensors`, `tokenizer.json`,
    `tokenizer_config.json`, the core code files ([`CODE_FILES`]), `retriever/` and a `README.md` model card.

    `card_data` is a [`bel.model_card.LinkerCardData`] or a dict of its fields (all optional: `model_id`,
    `datasets`, `kb_name`, `kb_file`, `base_model`, `hyperparameters`, `dev_results`, `test_results`, `training`,
    ...; `eval_results`, a list of `{"dataset": name, "split": split, "metrics": {"acc@1": 0.81, ...}}`, is sorted
    into dev and test results by split).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("pytorch_model*.bin"):
        stale.unlink()  # never leave pickle weights next to the safetensors ones
    pipe = EntityLinkingPipeline(model=model, tokenizer=tokenizer, retriever=retriever, task="entity-linking")
    pipe.save_pretrained(directory)  # transformers 5 writes model.safetensors (no pickle option)
    package = Path(__file__).resolve().parent
    for name in CODE_FILES:
        if not (directory / name).exists():
            shutil.copyfile(package / name, directory / name)
    if (directory / RETRIEVER_DIR).exists():
        shutil.rmtree(directory / RETRIEVER_DIR)
    retriever.save(directory / RETRIEVER_DIR)
    if detector is not None:
        save_detector(directory, detector)
    card = render_model_card(model.config, card_data or {})
    card.save(directory / "README.md")
    logger.info("saved linker to %s", directory)
    return directory


def save_detector(directory: str | os.PathLike, detector: MentionDetector) -> Path:
    """Write `detector` into a saved linker's `detector/` folder (replacing the one there)."""
    target = Path(directory) / DETECTOR_DIR
    if target.exists():
        shutil.rmtree(target)
    return detector.save_pretrained(target)


def attach_detector(linker: str | os.PathLike, detector: str | os.PathLike) -> Path:
    """Put the detector saved in `detector` into the saved linker `linker` (refused when `linker` is not one)."""
    check_saved_linker(linker)
    return save_detector(linker, MentionDetector.from_pretrained(detector))


def check_safe_checkpoint(directory: str | os.PathLike) -> None:
    """Refuse a local checkpoint whose weights exist only as a pickle (`pytorch_model.bin` and friends)."""
    path = Path(directory)
    if not path.is_dir():
        return
    safe = list(path.glob("*.safetensors")) + list(path.glob("*.safetensors.index.json"))
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not safe:
        if pickles:
            raise ValueError(
                f"{path} holds weights only as pickle ({', '.join(pickles)}); bel loads safetensors only because "
                "unpickling can run arbitrary code. Convert a checkpoint you trust with: "
                "model = BelForMultiCandidateLinking.from_pretrained(dir, use_safetensors=False); "
                "model.save_pretrained(dir)  # writes model.safetensors"
            )
        raise ValueError(f"{path} has no model.safetensors: is it a directory written by bel.save_linker?")


def load_components(directory: str | os.PathLike):
    """`(model, tokenizer, retriever)` of a directory written by [`save_linker`] (retriever None when it has none).

    Same policy as [`load_linker`]: weights from safetensors only, pickle-only checkpoints refused, bel's own classes
    (no remote code). Raises FileNotFoundError when `directory` is not a saved model (local directories only),
    ValueError when it holds a model that is not a bel linker or holds pickle weights only.
    """
    if not Path(directory).is_dir():
        raise FileNotFoundError(
            f"{directory} is not a directory; pass a directory written by `bel train` "
            "(OUTPUT/best), `bel demo` (DIR/linker) or bel.save_linker."
        )
    model, tokenizer = _load_model_and_tokenizer(directory)
    retriever = CandidateRetriever.load(Path(directory) / RETRIEVER_DIR) if has_retriever(directory) else None
    return model, tokenizer, retriever


def load_linker(
    directory: str | os.PathLike, device: int | str | None = None, **pipeline_kwargs
) -> EntityLinkingPipeline:
    """Load a saved linker in-process with bel's own classes (no remote code), weights from safetensors only.

    `directory` is a local directory written by [`save_linker`] or a Hub repo id; the retriever is read on first
    use, from the checkpoint's `retriever/` files.
    """
    model, tokenizer = _load_model_and_tokenizer(directory)
    return EntityLinkingPipeline(
        model=model,
        tokenizer=tokenizer,
        task="entity-linking",
        device=-1 if device is None else device,
        **pipeline_kwargs,
    )


def _load_model_and_tokenizer(name_or_path: str | os.PathLike):
    """Model (eval mode) and tokenizer; a local directory is checked first (see [`check_saved_linker`])."""
    from .modeling_bel import BelForMultiCandidateLinking
    from .tokenization_bel import BelTokenizer

    if Path(name_or_path).is_dir():
        check_saved_linker(name_or_path)
    model = BelForMultiCandidateLinking.from_pretrained(name_or_path, use_safetensors=True).eval()
    tokenizer = BelTokenizer.from_pretrained(name_or_path)
    return model, tokenizer


def check_saved_linker(directory: str | os.PathLike) -> None:
    """Refuse a local directory that is not a saved bel model: no `config.json` (FileNotFoundError), another
    `model_type` (ValueError), or weights only as pickle (ValueError, see [`check_safe_checkpoint`])."""
    from .configuration_bel import BelConfig

    path = Path(directory)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(
            f"{path} is not a saved bel model (no config.json); pass a directory written by "
            "`bel train` (OUTPUT/best), `bel demo` (DIR/linker) or bel.save_linker."
        )
    model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    if model_type != BelConfig.model_type:
        raise ValueError(
            f"{path} holds a {model_type!r} model, not a bel linker (model_type "
            f"{BelConfig.model_type!r}); pass a directory written by `bel train`, `bel demo` or "
            "bel.save_linker (an encoder goes to --encoder)."
        )
    check_safe_checkpoint(path)


def push_to_hub(
    directory: str | os.PathLike,
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a directory written by [`save_linker`] to `repo_id` in one commit; returns the commit URL.

    The model card (`README.md`) is ours: its placeholder model id is replaced by `repo_id`. Pickle files are never
    uploaded, and a directory without safetensors weights is refused.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    directory = Path(directory)
    check_safe_checkpoint(directory)
    missing = [
        n
        for n in ("config.json", "README.md", *CODE_FILES, *(f"{RETRIEVER_DIR}/{f}" for f in RETRIEVER_FILES))
        if not (directory / n).exists()
    ]
    if missing:
        raise ValueError(
            f"{directory} is not a saved linker (missing {', '.join(missing)}); save it with bel.save_linker first."
        )
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    operations = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        if path.suffix in PICKLE_SUFFIXES or "__pycache__" in relative or relative.startswith("."):
            continue
        content: str | bytes = str(path)
        if relative == "README.md":
            content = (
                path.read_text(encoding="utf-8")
                .replace("path/to/checkpoint", repo_id)
                .replace("bel link DIR ", f"bel link {repo_id} ")
                .encode("utf-8")
            )
        operations.append(CommitOperationAdd(path_in_repo=relative, path_or_fileobj=content))
    info = api.create_commit(
        repo_id,
        operations=operations,
        revision=revision,
        commit_message=commit_message or f"Upload bel linker from {directory.name}",
    )
    logger.info("pushed %d files to %s: %s", len(operations), repo_id, info.commit_url)
    return info.commit_url


__all__ = [
    "LinkerCardData",
    "attach_detector",
    "check_safe_checkpoint",
    "check_saved_linker",
    "load_components",
    "load_linker",
    "push_to_hub",
    "render_model_card",
    "save_detector",
    "save_linker",
]


if __name__ == "__main__":  # python -m bel.saving attach-detector DETECTOR_DIR LINKER_DIR
    import sys

    if len(sys.argv) != 4 or sys.argv[1] != "attach-detector":
        sys.exit("usage: python -m bel.saving attach-detector DETECTOR_DIR LINKER_DIR")
    print(attach_detector(sys.argv[3], sys.argv[2]))
