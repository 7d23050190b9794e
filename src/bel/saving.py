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
import re
import shutil
from pathlib import Path
from typing import Any

from .backends_bel import apply_backend, check_backend
from .detection_bel import DETECTOR_DIR, MentionDetector
from .model_card import LinkerCardData, render_model_card, write_detector_section
from .pipeline_bel import EntityLinkingPipeline
from .retrieval_bel import DENSE_DIR, RETRIEVER_DIR, RETRIEVER_FILES, CandidateRetriever, has_retriever

logger = logging.getLogger(__name__)

CODE_FILES = tuple(sorted(p.name for p in Path(__file__).resolve().parent.glob("*_bel.py")))
"""The Hub-portable core (every `*_bel.py` sibling), copied next to the weights so remote code can load them."""
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
"""Weight files bel reads (one file, or the index of a sharded checkpoint); nothing else is loaded."""
SAVED_BY = "a directory saved with bel.save_linker, `bel train` (OUTPUT/best) or `bel demo` (DIR/linker)"
# a Hub repo id: `name` or `owner/name` (letters, digits, `-`, `_`, `.`); anything else can only be a local path
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


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
    card = render_model_card(model.config, card_data or {})
    card.save(directory / "README.md")
    if detector is not None:
        save_detector(directory, detector)  # after the card: it adds its own section
    logger.info("saved linker to %s", directory)
    return directory


def save_detector(directory: str | os.PathLike, detector: MentionDetector) -> Path:
    """Write `detector` into a saved linker's `detector/` folder (replacing the one there)."""
    target = Path(directory) / DETECTOR_DIR
    if target.exists():
        shutil.rmtree(target)
    saved = detector.save_pretrained(target)
    write_detector_section(Path(directory) / "README.md", detector)
    return saved


def attach_detector(linker: str | os.PathLike, detector: str | os.PathLike) -> Path:
    """Put the detector saved in `detector` into the saved linker `linker` (refused when `linker` is not one)."""
    check_saved_linker(linker)
    return save_detector(linker, MentionDetector.from_pretrained(detector))


def check_safe_checkpoint(directory: str | os.PathLike) -> None:
    """Refuse a local checkpoint without `model.safetensors` (or a sharded `model.safetensors.index.json`), naming
    the pickle weights (`pytorch_model.bin` and friends) it holds instead and how to convert them."""
    path = Path(directory)
    if not path.is_dir():
        return
    if any((path / name).is_file() for name in SAFE_WEIGHTS):
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ValueError(
            f"{path} holds weights only as pickle ({', '.join(pickles)}); bel loads safetensors only because "
            "unpickling can run arbitrary code. Convert a checkpoint you trust once with transformers: "
            "model = BelForMultiCandidateLinking.from_pretrained(dir, use_safetensors=False); "
            "model.save_pretrained(dir)  # transformers 5 writes model.safetensors (4.x: safe_serialization=True)"
        )
    raise ValueError(
        f"{path} has no model.safetensors: pass a checkpoint directory saved with bel.save_linker or `bel train` "
        "(OUTPUT/best)."
    )


def load_components(directory: str | os.PathLike, *, backend: str = "torch"):
    """`(model, tokenizer, retriever)` of a directory written by [`save_linker`] (retriever None when it has none).

    Same policy as [`load_linker`]: weights from safetensors only, pickle-only checkpoints refused, bel's own classes
    (no remote code). Local directories only: FileNotFoundError when `directory` does not exist,
    NotADirectoryError when it is a file, ValueError when it is not a saved bel linker, holds pickle weights only
    or its weights are truncated or corrupt (see [`check_saved_linker`]). `backend` as in [`load_linker`] (the
    model then serves inference only).
    """
    check_backend_installed(backend)
    check_saved_linker(directory)
    model, tokenizer = _load_model_and_tokenizer(directory)
    apply_backend(model.base_model, backend)  # the encoder, as the pipeline does: the scorer stays in float
    retriever = CandidateRetriever.load(Path(directory) / RETRIEVER_DIR) if has_retriever(directory) else None
    return model, tokenizer, retriever


def load_linker(
    directory: str | os.PathLike,
    device: int | str | None = None,
    *,
    kb_file: str | os.PathLike | None = None,
    backend: str = "torch",
    **pipeline_kwargs,
) -> EntityLinkingPipeline:
    """Load a saved linker in-process with bel's own classes (no remote code), weights from safetensors only.

    `directory` is a local directory written by [`save_linker`] or a Hub repo id; the retriever is read on first
    use, from the checkpoint's `retriever/` files. With `kb_file` (any `bel.kb` format) the linker links to that
    KB instead: see [`retriever_for_kb`] (the checkpoint's retriever is kept when it indexes the same KB, else one is
    rebuilt from `kb_file` with the checkpoint's retriever settings, and the log says so).

    `backend` runs the reranker and the learned detector with `"torch"` (fp32, the default), `"int8"` (dynamic int8
    linear layers) or `"onnx"` (their encoders exported once to ONNX, cached, and run by onnxruntime: see
    `bel.onnx_backend`; needs `pip install 'bel-linking[onnx]'`). The linker's `backend` attribute names it.
    """
    check_backend_installed(backend)
    if kb_file is not None:
        if pipeline_kwargs.get("retriever") is not None:
            raise ValueError("load_linker: pass kb_file or retriever, not both (kb_file builds the retriever).")
        from .kb import KnowledgeBase

        kb = KnowledgeBase.load(kb_file)
        pipeline_kwargs["retriever"] = retriever_for_kb(directory, kb, kb_file=kb_file)
    model, tokenizer = _load_model_and_tokenizer(directory)
    return EntityLinkingPipeline(
        model=model,
        tokenizer=tokenizer,
        task="entity-linking",
        device=-1 if device is None else device,
        backend=backend,
        **pipeline_kwargs,
    )


def check_backend_installed(backend: str) -> str:
    """`backend` once it can run here: `"onnx"` registers bel's ONNX backend, refused in one line (with the pip
    command) when onnxruntime or the exporter is missing; an unknown name is a ValueError listing the known ones."""
    if backend == "onnx":
        from .onnx_backend import require_onnx

        require_onnx()
    return check_backend(backend)


# ---------------------------------------------------------------------------------------------- another KB
def retriever_for_kb(
    checkpoint: str | os.PathLike,
    kb,
    *,
    kb_file: str | os.PathLike | None = None,
    retriever: CandidateRetriever | None = None,
    train_documents=(),
    aliases_from: str | None = None,
) -> CandidateRetriever:
    """A retriever over `kb` for the linker saved in `checkpoint` (one rule for `bel eval`, `bel bench`, `bel link`).

    The checkpoint's own retriever (`retriever`, else read from `checkpoint`) is kept when it indexes exactly the
    names of `kb` (the same KB: its training aliases are kept too). Otherwise a retriever is rebuilt from `kb` with
    the checkpoint's retriever settings (n-gram range, max_df) plus the training aliases of `train_documents` (named
    `aliases_from` in the log); the checkpoint's own training aliases cannot be rebuilt without its training corpus,
    and the log says so. A KB with no entity is refused (ValueError).
    """
    source = str(kb_file or getattr(kb, "source", None) or "the given KB")
    if len(kb) == 0:
        raise ValueError(f"KB {source} has no entity: nothing could ever be linked; pass a KB file with entities.")
    settings = retriever_settings(checkpoint)
    if retriever is None and settings is not None and settings.get("num_entities") in (None, len(kb)):
        retriever = _load_retriever(checkpoint)  # may index the same KB: worth reading to compare
    if retriever is not None and indexes_kb(retriever, kb):
        logger.info("KB %s (%d entities) is the one the checkpoint's retriever indexes: keeping it", source, len(kb))
        return retriever
    from .examples import build_retriever

    previous = f"{settings['num_entities']} entities" if settings and "num_entities" in settings else "none saved"
    logger.warning(
        "rebuilding the retriever from KB %s (%d entities) instead of the checkpoint's (%s); %s",
        source,
        len(kb),
        previous,
        f"training aliases from {aliases_from}"
        if train_documents and aliases_from
        else "no training aliases: the checkpoint's cannot be rebuilt without its training corpus",
    )
    options = {} if settings is None else {"ngram_range": tuple(settings["ngram_range"]), "max_df": settings["max_df"]}
    dense = (settings or {}).get("dense")
    if dense:  # the saved dense part is an encoder directory: embed the new KB's names with it
        options.update(
            dense_encoder=Path(checkpoint) / RETRIEVER_DIR / DENSE_DIR,
            fusion=dense["fusion"],
            fusion_weight=dense["fusion_weight"],
        )
    return build_retriever(kb, train_documents, **options)


def retriever_settings(checkpoint: str | os.PathLike) -> dict | None:
    """The saved retriever configuration of a local checkpoint (`ngram_range`, `max_df`, `num_entities`, ...), or
    None when it has no retriever (or is a Hub repo id: its retriever is then rebuilt with the default settings)."""
    if not has_retriever(checkpoint):
        return None
    config = Path(checkpoint) / RETRIEVER_DIR / RETRIEVER_FILES[0]
    try:
        settings = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{config} cannot be read ({error}): re-save the checkpoint with bel.save_linker.") from error
    settings.setdefault("max_df", None)
    if "ngram_range" not in settings:
        raise ValueError(f"{config} has no ngram_range: re-save the checkpoint with bel.save_linker.")
    return settings


def _load_retriever(checkpoint: str | os.PathLike) -> CandidateRetriever:
    return CandidateRetriever.load(Path(checkpoint) / RETRIEVER_DIR)


def indexes_kb(retriever: CandidateRetriever, kb) -> bool:
    """Whether `retriever` indexes exactly the names of `kb` (entity ids and normalised names; aliases aside)."""
    from .retrieval_bel import normalize_name

    if set(retriever.entity_ids()) != {entity.id for entity in kb}:
        return False
    indexed = set(retriever.entity_names())  # each row keeps a KB name as written: exact lookups first (fast)
    kb_rows = {(entity_id, name) for entity_id, name, _ in kb.names()}
    if not indexed <= kb_rows:
        return False
    unmatched = kb_rows - indexed  # names the retriever deduplicated (same normalised form), or empty ones
    if not unmatched:
        return True
    normalized = {(entity_id, normalize_name(name)) for entity_id, name in indexed}
    return all((i, normalize_name(n)) in normalized for i, n in unmatched if normalize_name(n))


# ---------------------------------------------------------------------------------------------- loading checks
def _load_model_and_tokenizer(name_or_path: str | os.PathLike):
    """Model (eval mode) and tokenizer; a local directory is checked first (see [`check_saved_linker`]) and a file
    that cannot be read is named in the error."""
    from safetensors import SafetensorError

    from .modeling_bel import BelForMultiCandidateLinking
    from .tokenization_bel import BelTokenizer

    local = _is_local(name_or_path)
    if local:
        check_saved_linker(name_or_path)
    try:
        model = BelForMultiCandidateLinking.from_pretrained(name_or_path, use_safetensors=True).eval()
    except (SafetensorError, OSError) as error:
        raise _unreadable(name_or_path, "model.safetensors", error, local) from error
    try:
        tokenizer = BelTokenizer.from_pretrained(name_or_path)
    except Exception as error:
        if not (type(error) is Exception or isinstance(error, OSError)):  # tokenizers raises a bare Exception
            raise
        raise _unreadable(name_or_path, "tokenizer.json", error, local) from error
    return model, tokenizer


def _is_local(name_or_path: str | os.PathLike) -> bool:
    """True for a path that exists, or that cannot be a Hub repo id (`./x`, `/x`, `a/b/c`, `..`)."""
    text = os.fspath(name_or_path)
    return Path(text).exists() or not _REPO_ID.fullmatch(text) or ".." in text


def _unreadable(name_or_path, file_name: str, error: Exception, local: bool) -> Exception:
    if not local:
        return FileNotFoundError(
            f"{name_or_path} is neither a local directory nor a Hub repository that could be read ({error}); "
            f"pass {SAVED_BY}, or a Hub repo id (owner/name) when online."
        )
    return ValueError(
        f"{Path(name_or_path) / file_name} cannot be read ({type(error).__name__}: {error}); the file is truncated "
        "or corrupt: save the checkpoint again (bel.save_linker) or copy it again."
    )


def _check_directory(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"model directory {path} does not exist; pass {SAVED_BY}.")
    if not path.is_dir():
        raise NotADirectoryError(f"model {path} is a file, not a checkpoint directory; pass {SAVED_BY}.")


def check_saved_linker(directory: str | os.PathLike) -> None:
    """Refuse a local path that is not a saved bel model: missing (FileNotFoundError), a file (NotADirectoryError),
    no `config.json` (FileNotFoundError), a malformed `config.json` or another `model_type` (ValueError), or
    weights only as pickle or missing (ValueError, see [`check_safe_checkpoint`])."""
    from .configuration_bel import BelConfig

    path = Path(directory)
    _check_directory(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{path} is not a saved bel model (no config.json); pass {SAVED_BY}.")
    try:
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except (ValueError, AttributeError) as error:
        raise ValueError(f"{config_file} is not a JSON object ({error}); the checkpoint is damaged.") from error
    if model_type != BelConfig.model_type:
        raise ValueError(
            f"{path} holds a {model_type!r} model, not a bel linker (model_type "
            f"{BelConfig.model_type!r}); pass {SAVED_BY} (an encoder goes to --encoder)."
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
    _check_directory(directory)
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
    "check_backend_installed",
    "check_safe_checkpoint",
    "check_saved_linker",
    "indexes_kb",
    "load_components",
    "load_linker",
    "push_to_hub",
    "render_model_card",
    "retriever_for_kb",
    "retriever_settings",
    "save_detector",
    "save_linker",
    "upgrade_retriever",
]


def upgrade_retriever(directory: str | os.PathLike) -> Path:
    """Re-save a linker's retriever in the current format (format 1 files load, but recompute their lookups each time).

    The new files are written beside the old ones and swapped in by renames, so a crash leaves a loadable checkpoint.
    """
    folder = Path(directory) / RETRIEVER_DIR
    retriever = CandidateRetriever.load(folder)
    staging = folder.with_name(folder.name + ".upgrade")
    shutil.rmtree(staging, ignore_errors=True)
    retriever.save(staging)
    for file in sorted(staging.iterdir()):
        os.replace(file, folder / file.name)
    staging.rmdir()
    return folder


if (
    __name__ == "__main__"
):  # python -m bel.saving attach-detector DETECTOR_DIR LINKER_DIR | upgrade-retriever LINKER_DIR
    import sys

    if len(sys.argv) == 4 and sys.argv[1] == "attach-detector":
        print(attach_detector(sys.argv[3], sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "upgrade-retriever":
        print(upgrade_retriever(sys.argv[2]))
    else:
        sys.exit(
            "usage: python -m bel.saving attach-detector DETECTOR_DIR LINKER_DIR | "
            "python -m bel.saving upgrade-retriever LINKER_DIR"
        )
