"""The model layer's one face for the command line and the window.

List, build, download, import, convert, quantize, slice and choose models, and resolve the
configured one (ModelSpec). Long work reports through a callback of strings; problems raise
ModelError with a sentence for the user. Choosing a model returns what to set (UseResult):
settings are saved by the caller, never here. Callers import this module, not the
manager, the converters or the GGUF reader behind it.
"""

from __future__ import annotations

from localsearch.core.models.catalog import Catalog, ModelEntry
from localsearch.core.models.default import DEFAULT_MODEL, bundled_model
from localsearch.core.models.files import QUANT_TYPES
from localsearch.core.models.manager import (
    OFFLINE_BUILDS,
    ModelStatus,
    UseResult,
    build_model,
    choose_model,
    convert_model,
    download_model,
    import_model,
    list_models,
    model_costs,
    model_info,
    quantize_model,
    slice_model,
)
from localsearch.core.models.spec import ModelSpec, model_prompts, resolve_model, space_key

__all__ = [
    "DEFAULT_MODEL",
    "OFFLINE_BUILDS",
    "QUANT_TYPES",
    "Catalog",
    "ModelEntry",
    "ModelSpec",
    "ModelStatus",
    "UseResult",
    "build_model",
    "bundled_model",
    "choose_model",
    "convert_model",
    "download_model",
    "import_model",
    "list_models",
    "model_costs",
    "model_info",
    "model_prompts",
    "quantize_model",
    "resolve_model",
    "slice_model",
    "space_key",
]
