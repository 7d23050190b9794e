"""ONNX Runtime backend: a model's encoder exported to ONNX and run by onnxruntime, the rest of the model in torch.

[`use_onnx`] swaps the base model of a transformers model (the reranker's `encoder`, or the detector's `bert`,
`roberta`, ...: whatever `model.base_model_prefix` names) for an [`OnnxEncoder`], which feeds the same `input_ids`,
`attention_mask` (and `token_type_ids` when the encoder has more than one token type) to an onnxruntime session and
returns `last_hidden_state` as a torch tensor. Given a base model itself (what the pipeline passes), its `forward` is
replaced in place and its torch layers dropped. Slot pooling, the scorer and the detector's head stay in torch, so
`model.score(...)` and the pipeline work unchanged.

Exports have dynamic batch and sequence axes and are cached: without a `directory`, under `$BEL_ONNX_CACHE` (else
`$XDG_CACHE_HOME/bel/onnx`, else `~/.cache/bel/onnx`), one folder per fingerprint of the encoder's weights, written
atomically (concurrent processes may race; one wins). Importing this module registers `"onnx"` with
`bel.backends_bel`, so `EntityLinkingPipeline(..., backend="onnx")` and `bel.load_linker(..., backend="onnx")` work.

Needs the optional extra: `pip install 'bel-linking[onnx]'` (onnxruntime to run; onnx and onnxscript to export with
torch's dynamo exporter). This file is not part of the Hub-portable core; it imports them lazily.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import io
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from .backends_bel import register_backend

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'bel-linking[onnx]'"
ONNX_FILE = "encoder.onnx"
INFO_FILE = "bel_onnx.json"
EXPORT_FORMAT = 1  # bump when the exported graph's inputs or outputs change: old cache entries are then ignored
RUN_PACKAGES = ("onnxruntime",)
EXPORT_PACKAGES = ("onnx", "onnxscript")  # torch.onnx.export(dynamo=True) needs both


class OnnxUnavailableError(ImportError, ValueError):
    """onnxruntime (or the exporter's packages) is not installed; a ValueError too, so `bel` reports it on one line."""


def _missing(packages: tuple[str, ...]) -> list[str]:
    return [name for name in packages if importlib.util.find_spec(name) is None]


def onnx_available() -> bool:
    """Whether the ONNX backend can export and run here (onnxruntime, onnx and onnxscript importable)."""
    return not _missing(RUN_PACKAGES + EXPORT_PACKAGES)


def require_onnx(export: bool = True) -> None:
    """Raise [`OnnxUnavailableError`] (one line, with the pip command) unless the backend's packages are installed."""
    missing = _missing(RUN_PACKAGES + (EXPORT_PACKAGES if export else ()))
    if missing:
        raise OnnxUnavailableError(f"backend 'onnx' needs {', '.join(missing)}: {INSTALL_HINT}")


# ---------------------------------------------------------------------------------------------- export
def base_model(model: nn.Module) -> nn.Module:
    """The encoder of a transformers model (`model.base_model`: the reranker's `encoder`, the detector's `bert`, ...),
    or `model` itself when it is a base model already (what the pipeline passes); the part that is exported."""
    encoder = getattr(model, "base_model", model)
    if not isinstance(encoder, nn.Module) or not hasattr(encoder, "config"):
        raise ValueError(f"{type(model).__name__} is not a transformers model: nothing to export to ONNX.")
    return encoder


def runs_onnx(model: nn.Module) -> bool:
    """Whether `model`'s encoder runs on ONNX Runtime already ([`use_onnx`] was applied to it or to its parent)."""
    encoder = getattr(model, "base_model", model)
    return isinstance(encoder, OnnxEncoder) or isinstance(getattr(encoder, "onnx_runner", None), OnnxEncoder)


def input_names(encoder: nn.Module) -> list[str]:
    """The graph's inputs, as `BelForMultiCandidateLinking.forward` feeds the encoder: token types only when used."""
    names = ["input_ids", "attention_mask"]
    if getattr(encoder.config, "type_vocab_size", 1) > 1:
        names.append("token_type_ids")
    return names


def fingerprint(encoder: nn.Module) -> str:
    """A hash of the encoder's weights and the export format: the cache key of its export."""
    digest = hashlib.sha256(f"bel-onnx-{EXPORT_FORMAT}:{','.join(input_names(encoder))}".encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class _ExportedEncoder(nn.Module):
    """The encoder as a function of tensors only, returning `last_hidden_state` (what the exporter traces)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **extra)[0]


def _example_inputs(names: list[str]) -> tuple[torch.Tensor, ...]:
    # batch 2 and length 16 (never 1: the exporter would specialise the axis), one padded row so that the traced
    # attention keeps its mask path
    input_ids = torch.full((2, 16), 5, dtype=torch.long)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 10:] = 0
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, 8:] = 1
    return (input_ids, attention_mask, token_type_ids)[: len(names)]


def export_onnx(model: nn.Module, directory: str | os.PathLike) -> Path:
    """Export `model`'s encoder to `directory/encoder.onnx` (dynamic batch and sequence axes) and return its path.

    `directory/bel_onnx.json` records the weights' fingerprint, the inputs and the export seconds; [`use_onnx`] reuses
    an export whose fingerprint matches. Files are replaced atomically.
    """
    require_onnx()
    encoder = base_model(model)
    names = input_names(encoder)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    target, partial = folder / ONNX_FILE, folder / f".{ONNX_FILE}.{os.getpid()}.tmp"
    axes = {name: {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")} for name in names}
    started = time.perf_counter()
    # the exporter prints progress to stdout and warns about torchvision and axis names: `bel eval` prints JSON there
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        _quiet("torch.onnx", "torch.export", "onnx_ir", "onnxscript"),
    ):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _ExportedEncoder(encoder).eval(),
            _example_inputs(names),
            str(partial),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_shapes=axes,
            dynamo=True,
            external_data=False,
        )
    os.replace(partial, target)
    info = {"format": EXPORT_FORMAT, "fingerprint": fingerprint(encoder), "inputs": names}
    info["export_seconds"] = round(time.perf_counter() - started, 3)
    _write_json(folder / INFO_FILE, info)
    return target


@contextlib.contextmanager
def _quiet(*names: str):
    """Raise the level of the `names` loggers (and their children) to ERROR: the exporter's info and warnings concern
    it (torchvision absent, axis names, passes), not the user."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [item.level for item in loggers]
    for item in loggers:
        item.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for item, level in zip(loggers, levels, strict=True):
            item.setLevel(level)


def _write_json(path: Path, content: dict) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _export_info(folder: Path) -> dict | None:
    try:
        info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and (folder / ONNX_FILE).is_file() else None


def cache_dir() -> Path:
    """Where exports go when [`use_onnx`] gets no directory: `$BEL_ONNX_CACHE`, else the user's cache folder."""
    if os.environ.get("BEL_ONNX_CACHE"):
        return Path(os.environ["BEL_ONNX_CACHE"])
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "bel" / "onnx"


def _export_to_cache(model: nn.Module, folder: Path) -> None:
    """Export into a fresh sibling folder, then rename it into place (another process may have won the race)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        export_onnx(model, staging)
        with contextlib.suppress(OSError):  # the folder exists: a concurrent export finished first
            os.rename(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- running
class OnnxEncoder(nn.Module):
    """Stands in for a transformers encoder: runs its ONNX export with onnxruntime and returns a `BaseModelOutput`
    whose `last_hidden_state` is a torch tensor (on the device of `input_ids`). Hidden states and attentions of the
    layers are not available."""

    def __init__(self, path: str | os.PathLike, config, names: list[str]) -> None:
        super().__init__()
        require_onnx(export=False)
        self.config, self.path, self.input_names = config, Path(path), tuple(names)
        self.session = _session(self.path)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = True,
        **unused,
    ):
        if output_hidden_states or output_attentions or unused.get("inputs_embeds") is not None:
            raise ValueError("the ONNX backend returns last_hidden_state only (no hidden states, attentions, embeds).")
        given = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids) if attention_mask is None else attention_mask,
            "token_type_ids": torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids,
        }
        feeds = {name: given[name].detach().cpu().to(torch.long).numpy() for name in self.input_names}
        (hidden,) = self.session.run(["last_hidden_state"], feeds)
        state = torch.from_numpy(hidden).to(input_ids.device)
        return BaseModelOutput(last_hidden_state=state) if return_dict is not False else (state,)


def _session(path: Path):
    """An onnxruntime CPU session with all graph optimisations and torch's intra-op thread count."""
    onnxruntime = importlib.import_module("onnxruntime")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def use_onnx(model: nn.Module, directory: str | os.PathLike | None = None) -> nn.Module:
    """Run `model`'s encoder with onnxruntime from now on (in place; `model` is returned).

    The export in `directory` is used when it matches the encoder's weights; otherwise the encoder is exported there
    (into the cache, see [`cache_dir`], when `directory` is None) and the seconds are logged. The model can no longer
    be trained or saved afterwards (its encoder weights are gone from torch).
    """
    require_onnx()
    if runs_onnx(model):
        return model
    encoder = base_model(model)
    key = fingerprint(encoder)
    folder = Path(directory) if directory is not None else cache_dir() / key[:32]
    info = _export_info(folder)
    if info is None or info.get("fingerprint") != key:
        if info is not None:
            logger.warning("the ONNX export in %s belongs to other weights: exporting again", folder)
        started = time.perf_counter()
        if directory is None:
            _export_to_cache(model, folder)
        else:
            export_onnx(model, folder)
        logger.info("exported the %s encoder to ONNX in %.1f s: %s", type(encoder).__name__, _since(started), folder)
    else:
        logger.info("using the ONNX export of the %s encoder in %s", type(encoder).__name__, folder)
    runner = OnnxEncoder(folder / ONNX_FILE, encoder.config, input_names(encoder))
    if encoder is model:
        _run_in_place(encoder, runner)
    else:
        setattr(model, model.base_model_prefix, runner)
    return model.eval()


def _run_in_place(encoder: nn.Module, runner: OnnxEncoder) -> None:
    """Make a base model held by a parent we were not given run `runner`: its `forward` becomes the runner's and its
    torch layers are dropped (the export holds the weights; keeping both would double the memory)."""
    for name in list(encoder._modules):  # nn.Module keeps submodules in `_modules`; no public way to drop them
        setattr(encoder, name, None)
    encoder.onnx_runner = runner
    encoder.forward = runner.forward


def _since(started: float) -> float:
    return time.perf_counter() - started


register_backend("onnx", use_onnx)

__all__ = [
    "INSTALL_HINT",
    "OnnxEncoder",
    "OnnxUnavailableError",
    "cache_dir",
    "export_onnx",
    "onnx_available",
    "require_onnx",
    "runs_onnx",
    "use_onnx",
]
