"""Inference backends of the portable core: fp32 torch, or torch with dynamic int8 linear layers (Hub-portable core).

`"int8"` quantises the weights of every `nn.Linear` of a model to int8 once, at load (a scale per output channel,
packed for oneDNN where torch has it), and quantises activations on the fly (torch's dynamic quantisation, CPU only).
The ONNX Runtime backend needs `onnxruntime` and lives outside the portable core, in `bel.onnx_backend`: importing it
registers `"onnx"` here ([`register_backend`]), which is how `bel.load_linker(..., backend="onnx")` reaches the
pipeline. A checkpoint loaded as remote code (no `bel` installed) has the two built-in backends only.

Only the standard library and torch are imported, so the file ships inside a checkpoint.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable

import torch
from torch import nn

BACKENDS = ("torch", "int8")
"""Backends the portable core runs by itself; `bel.load_linker(..., backend="onnx")` adds `"onnx"`."""

_REGISTERED: dict[str, Callable[[nn.Module], nn.Module]] = {}
"""Backends added by packages outside the core (name -> function that makes a model run on it)."""


def register_backend(name: str, apply: Callable[[nn.Module], nn.Module]) -> None:
    """Make `backend=name` valid: `apply(module)` returns `module` ready to run on it (called once per model)."""
    if name in BACKENDS:
        raise ValueError(f"backend {name!r} is built in; register another name.")
    _REGISTERED[name] = apply


def available_backends() -> tuple[str, ...]:
    """The built-in backends plus the registered ones."""
    return BACKENDS + tuple(sorted(_REGISTERED))


def check_backend(backend: str) -> str:
    """`backend`, once known to be one that can run here; else a ValueError that shows the way to ONNX."""
    if backend in BACKENDS or backend in _REGISTERED:
        return backend
    if backend == "onnx":
        raise ValueError(
            "backend='onnx' needs the bel package and onnxruntime: pip install 'bel-linking[onnx]', then "
            "bel.load_linker(checkpoint, backend='onnx') or `bel link --backend onnx`."
        )
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)} (or 'onnx' through bel), got {backend!r}.")


INT8_ENGINE = "onednn"
"""torch's quantised engine the int8 backend packs its weights for, when this torch build has it. oneDNN runs VNNI/AMX
int8 kernels; torch's default x86 engine packs for fbgemm, whose dynamic linear is called with `reduce_range=True`
(7-bit activations). On NCBI Disease test (one thread, an AVX-512 VNNI + AMX CPU) oneDNN was faster and closer to
fp32 than fbgemm (eval/RESULTS.md, issue 14)."""


def int8_engine() -> str:
    """The engine [`quantize_int8`] uses here: [`INT8_ENGINE`] when supported, else torch's current one."""
    if INT8_ENGINE in torch.backends.quantized.supported_engines:
        return INT8_ENGINE
    return torch.backends.quantized.engine


@contextlib.contextmanager
def _quantized_engine(name: str):
    """Pack weights for `name`: the packed weights keep their kernels after the global engine is restored."""
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


def quantize_int8(module: nn.Module, engine: str | None = None) -> nn.Module:
    """`module` with every `nn.Linear` replaced by a dynamically quantised int8 one (in place; returned too).

    Weights are quantised per output channel (a scale per row: the per-tensor recipe lost 0.8 Acc@1 points on NCBI
    Disease test) and packed for `engine` (default: [`int8_engine`]); activations are quantised on the fly.
    """
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    with warnings.catch_warnings(), _quantized_engine(engine or int8_engine()):
        warnings.simplefilter("ignore")  # torch marks its eager quantisation API deprecated in favour of torchao
        return torch.ao.quantization.quantize_dynamic(module, {nn.Linear: qconfig}, dtype=torch.qint8, inplace=True)


def apply_backend(module: nn.Module, backend: str) -> nn.Module:
    """`module` ready to run on `backend` (`"torch"`: unchanged; `"int8"`: [`quantize_int8`]; a registered backend:
    its function, e.g. `"onnx"` once `bel.onnx_backend` is imported)."""
    backend = check_backend(backend)
    if backend == "int8":
        return quantize_int8(module.eval())
    if backend in _REGISTERED:
        return _REGISTERED[backend](module.eval())
    return module


__all__ = [
    "BACKENDS",
    "INT8_ENGINE",
    "apply_backend",
    "available_backends",
    "check_backend",
    "int8_engine",
    "quantize_int8",
    "register_backend",
]
