"""bel: fast biomedical entity linking with multi-candidate cross-encoders.

Importing `bel` registers its config, model and tokenizer with the Auto classes (for in-process use) and for remote
code (`auto_map` is written on save, so `trust_remote_code=True` loads a checkpoint where `bel` is not installed).
"""

from __future__ import annotations

import logging

from transformers import AutoConfig, AutoModel, AutoTokenizer
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_bel import BEL_VERSION, BelConfig
from .modeling_bel import BelForMultiCandidateLinking, BelLinkingOutput, BelPreTrainedModel
from .pipeline_bel import EntityLinkingPipeline
from .saving import load_linker, save_linker
from .tokenization_bel import PACKING_MODES, BelTokenizer, LinkingInput

__version__ = BEL_VERSION

AutoConfig.register("bel", BelConfig, exist_ok=True)
AutoModel.register(BelConfig, BelForMultiCandidateLinking, exist_ok=True)
AutoTokenizer.register(BelConfig, fast_tokenizer_class=BelTokenizer, exist_ok=True)
BelConfig.register_for_auto_class()
BelForMultiCandidateLinking.register_for_auto_class("AutoModel")
BelTokenizer.register_for_auto_class("AutoTokenizer")
PIPELINE_REGISTRY.register_pipeline(
    "entity-linking", pipeline_class=EntityLinkingPipeline, pt_model=AutoModel, type="text"
)

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "PACKING_MODES",
    "BelConfig",
    "BelForMultiCandidateLinking",
    "BelLinkingOutput",
    "BelPreTrainedModel",
    "BelTokenizer",
    "EntityLinkingPipeline",
    "LinkingInput",
    "__version__",
    "load_linker",
    "save_linker",
]
