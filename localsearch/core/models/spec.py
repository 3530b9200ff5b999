"""One model, resolved once: what the settings and the catalog say to run, and its files.

A model setting names a catalog model (any spelling, "NAME.TYPE" for a weight type), an
imported model, or a .gguf path; with `dimensions` and `layers` it picks an output head, a
sliced file, the prompts and the task adapters. resolve_model() works all of that out in
one pass over the catalog and the models folder, so that the engines, the service and the
command line read one ModelSpec instead of asking the model manager piece by piece.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localsearch.core.embedding import EngineOptions
from localsearch.core.models import manager
from localsearch.core.models.catalog import Catalog, ModelEntry, load_catalog
from localsearch.errors import ModelError
from localsearch.settings import Settings, passage_reading

log = logging.getLogger(__name__)

Report = Callable[[str], None]


@dataclass(frozen=True)
class ModelSpec:
    """Everything an engine and an index need to know about the configured model."""

    setting: str  # the model setting as written: the engine's and the index's name for it
    entry: ModelEntry | None  # its catalog entry; None for an imported model or a file path
    path: Path  # the GGUF llama.cpp loads: the sliced file when `layers` is set
    layers: int  # layers run; 0: all of them
    dimensions: int  # the size asked for; 0: native (with output heads: the default head's)
    head_size: int  # the output head's size; 0: the model runs without one
    head: Path | None  # that head's file
    query_prompt: str
    document_prompt: str
    adapters: Mapping[str, Path] = field(default_factory=dict)  # role -> task adapter (jina-v3)
    space_key: str = ""  # what the index keys this model's vectors by (see space_key())

    @property
    def context(self) -> int:
        """The model's training context in tokens (0: not in the catalog; the file says)."""
        return self.entry.max_context if self.entry is not None else 0

    @property
    def pooling(self) -> str:
        """How the catalog says the model pools ("mean", "cls", "last"); "" when unknown."""
        return self.entry.pooling if self.entry is not None else ""

    @property
    def head_suffix(self) -> str:
        return _head_suffix(self.head_size)

    def engine_options(self, **options: Any) -> EngineOptions:
        """The engine for this model; `options` are how to run it (threads, max_tokens, ...)."""
        return EngineOptions(
            self.path,
            name=self.setting,
            query_prefix=self.query_prompt,
            document_prefix=self.document_prompt,
            adapters=dict(self.adapters),
            head=self.head,
            **options,
        )


def _quiet(message: str) -> None:
    log.info(message)


def _head_size(name: str, dimensions: int, entry: ModelEntry | None) -> int:
    """The output head a setting runs (see ModelEntry.head_for); 0 for a model without heads,
    a .gguf path, or a model the catalog does not know."""
    if name.lower().endswith(".gguf") or entry is None:
        return 0
    return entry.head_for(dimensions)


def _head_suffix(head_size: int) -> str:
    return f"#head{head_size}" if head_size else ""


def _space_key(settings: Settings, head_size: int) -> str:
    key = settings.model
    if settings.layers:
        key += f"@{settings.layers}L"
    key += passage_reading(settings)  # "+late", "+names" or nothing
    return key + _head_suffix(head_size)


READINGS = ("", "+names", "+late")  # the ways passages are read (settings.passage_reading)


def keys_read_otherwise(settings: Settings, key: str) -> list[str]:
    """The keys `key` (this model's space under `settings`) has with passages read the other
    ways: queries are embedded alike in all of them, so their vectors answer the same query
    vector."""
    reading = passage_reading(settings)
    prefix = settings.model + (f"@{settings.layers}L" if settings.layers else "")
    if not key.startswith(prefix + reading):
        return []  # not a key of these settings: nothing is known to be alike
    head = key[len(prefix + reading) :]
    return [prefix + other + head for other in READINGS if other != reading]


def space_key(settings: Settings, *, catalog: Catalog | None = None) -> str:
    """What the index's vectors are keyed by, from the settings and the catalog alone (no model
    file is looked for): the model, how many of its layers run (a sliced model's vectors are
    not comparable with the whole model's), "+late" for late chunking (passages pooled from a
    pass over the whole document), "+names" for passages embedded after their file's name
    words, and "#head<d>" for an output head (each head's vectors are
    their own space: a 768 head cut to 700 never meets the 1024 head's). Changing any of them
    makes a new space and re-embeds, so no search compares vectors made two ways."""
    catalog = catalog or load_catalog()
    entry = manager.catalog_entry(settings.model, catalog=catalog)
    return _space_key(settings, _head_size(settings.model, settings.dimensions, entry))


def model_prompts(name: str, *, catalog: Catalog | None = None) -> tuple[str, str]:
    """The (query, document) prompts the catalog gives the model a setting names (any
    spelling the model manager accepts); none when the model is unknown."""
    try:
        entry = manager.catalog_entry(name, catalog=catalog or load_catalog())
    except ModelError:  # an unreadable catalog must not stop search
        return "", ""
    return (entry.query_prompt, entry.document_prompt) if entry else ("", "")


def resolve_model(
    settings: Settings, *, catalog: Catalog | None = None, report: Report = _quiet
) -> ModelSpec:
    """The configured model, its files found (the sliced file made, the offline default built
    when missing, with progress through `report`). Raises ModelError naming what is missing:
    a model with task adapters never runs without them, one with heads never without its head."""
    catalog = catalog or load_catalog()
    name = settings.model
    entry = manager.catalog_entry(name, catalog=catalog)
    path = manager.resolve_model_file(name, layers=settings.layers, catalog=catalog, report=report)
    head_size = _head_size(name, settings.dimensions, entry)
    head = manager.find_head_file(name, head_size, catalog=catalog) if head_size else None
    query_prompt, document_prompt = (entry.query_prompt, entry.document_prompt) if entry else ("", "")
    # A model with task adapters (jina-embeddings-v3) runs one per role; a role's prompt is
    # the catalog's, else the one its adapter carries.
    adapters = manager.role_adapters(name, path, catalog=catalog)
    if adapters:
        query_prompt = query_prompt or adapters["query"].prompt_prefix
        document_prompt = document_prompt or adapters["document"].prompt_prefix
    return ModelSpec(
        setting=name,
        entry=entry,
        path=path,
        layers=settings.layers,
        dimensions=settings.dimensions,
        head_size=head_size,
        head=head,
        query_prompt=query_prompt,
        document_prompt=document_prompt,
        adapters={role: info.path for role, info in adapters.items()},
        space_key=_space_key(settings, head_size),
    )
