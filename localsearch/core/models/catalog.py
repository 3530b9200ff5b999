"""The model catalog: what localsearch knows about each embedding model, typed.

The one source is gguf/catalog.toml in a source checkout; the package ships it as
localsearch/core/models/catalog.toml (a link to that file, copied into wheels), so an
installed application reads the same text. Every entry must carry every field: a
missing or mistyped field is an error naming the model and the field, not a default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from localsearch import paths
from localsearch.errors import ModelError

CATALOG_FILE = "catalog.toml"
FORMATS = ("gguf", "safetensors")
POOLINGS = ("mean", "cls", "last")
CONVERTERS = ("", "bert", "jina-bert-v2")


@dataclass(frozen=True)
class ModelEntry:
    """One catalog entry. Field meanings are documented at the top of catalog.toml."""

    name: str
    display_name: str
    hf_repo: str
    hf_revision: str
    hf_file: str
    format: str
    hf_extra_files: tuple[str, ...]
    sha256: str
    license: str
    parameters: int
    file_size: int
    dimensions: int
    matryoshka_dimensions: tuple[int, ...] | None  # None: "none", not trained for truncation
    output_heads: tuple[int, ...]  # dense heads' output sizes, the default first; () if none
    layers: int
    layer_truncation: bool
    max_context: int
    pooling: str
    query_prompt: str
    document_prompt: str
    tasks: tuple[str, ...]
    task_prompts: Mapping[str, str]
    task_adapters: bool
    hf_architecture: str
    architecture: str
    llama_cpp: bool
    converter: str
    reason: str
    alternative: str

    @property
    def usable(self) -> bool:
        return self.llama_cpp and not self.reason

    @property
    def downloadable(self) -> bool:
        """Whether `models download` can fetch it: a pinned file, and a way to run it."""
        if not self.usable or not self.hf_repo or not self.hf_file:
            return False
        return self.format == "gguf" or bool(self.converter)

    def head_for(self, dimensions: int) -> int:
        """The output head serving `dimensions` (0: the default head): that size's own head, else
        the smallest larger one, whose vectors are then cut. 0 when the model has no heads."""
        if not self.output_heads:
            return 0
        if dimensions <= 0:
            return self.output_heads[0]
        larger = [h for h in self.output_heads if h >= dimensions]
        if not larger:
            sizes = ", ".join(str(h) for h in sorted(self.output_heads))
            raise ModelError(
                f"{self.display_name}'s output heads give {sizes} dimensions; {dimensions} is too many"
            )
        return min(larger)

    @property
    def default_dimensions(self) -> int:
        """What the model outputs when no size is chosen: its default head's, else its native size."""
        return self.output_heads[0] if self.output_heads else self.dimensions

    def dimension_note(self, dimensions: int) -> str:
        """Empty when `dimensions` is native or a trained Matryoshka size; else why it is lossy."""
        if self.output_heads:
            head = self.head_for(dimensions)
            if dimensions in (0, head):
                return ""
            return (
                f"{self.display_name} has no {dimensions}-dimension output head: the {head} head's vectors "
                f"are cut to {dimensions}, a size it was not trained for (lossy)"
            )
        if dimensions in (0, self.dimensions):
            return ""
        if self.matryoshka_dimensions is None:
            return f"{self.display_name} was not trained for truncation: {dimensions} dimensions lose quality"
        if dimensions not in self.matryoshka_dimensions:
            trained = ", ".join(str(d) for d in self.matryoshka_dimensions)
            return f"{dimensions} is not a trained size of {self.display_name} ({trained}): expect some loss"
        return ""

    def layer_note(self, layers: int) -> str:
        if layers in (0, self.layers) or self.layer_truncation:
            return ""
        return f"{self.display_name} was not trained for layer truncation: {layers} layers lose quality"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        out["matryoshka_dimensions"] = (
            "none" if self.matryoshka_dimensions is None else list(self.matryoshka_dimensions)
        )
        if self.output_heads:  # the sizes to choose from are the heads', each trained
            out["matryoshka_dimensions"] = sorted(self.output_heads, reverse=True)
            out["default_dimensions"] = self.default_dimensions
        return out


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "display_name": str,
    "hf_repo": str,
    "hf_revision": str,
    "hf_file": str,
    "format": str,
    "hf_extra_files": list,
    "sha256": str,
    "license": str,
    "parameters": int,
    "file_size": int,
    "dimensions": int,
    "matryoshka_dimensions": (list, str),
    "output_heads": list,
    "layers": int,
    "layer_truncation": bool,
    "max_context": int,
    "pooling": str,
    "query_prompt": str,
    "document_prompt": str,
    "tasks": list,
    "task_prompts": dict,
    "task_adapters": bool,
    "hf_architecture": str,
    "architecture": str,
    "llama_cpp": bool,
    "converter": str,
    "reason": str,
    "alternative": str,
}
REQUIRED_FIELDS = tuple(_FIELD_TYPES)


def _entry(name: str, raw: Mapping[str, Any], source: str) -> ModelEntry:
    def fail(message: str) -> ModelError:
        return ModelError(f"{source}: model {name!r}: {message}")

    missing = [key for key in REQUIRED_FIELDS if key not in raw]
    if missing:
        raise fail(f"missing field(s) {', '.join(missing)}")
    unknown = sorted(set(raw) - set(REQUIRED_FIELDS))
    if unknown:
        raise fail(f"unknown field(s) {', '.join(unknown)}")
    for key, expected in _FIELD_TYPES.items():
        value = raw[key]
        # bool is an int in Python; an int field must not accept true/false.
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise fail(f"field {key!r} has the wrong type ({type(value).__name__})")

    matryoshka_raw = raw["matryoshka_dimensions"]
    matryoshka: tuple[int, ...] | None
    if isinstance(matryoshka_raw, str):
        if matryoshka_raw != "none":
            raise fail('matryoshka_dimensions must be a list of sizes or "none"')
        matryoshka = None
    else:
        if not matryoshka_raw or not all(
            isinstance(d, int) and 0 < d <= raw["dimensions"] for d in matryoshka_raw
        ):
            raise fail("matryoshka_dimensions must hold sizes between 1 and the native dimensions")
        matryoshka = tuple(sorted(set(matryoshka_raw), reverse=True))
    heads = raw["output_heads"]
    sizes_ok = all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in heads)
    if not sizes_ok or len(set(heads)) != len(heads):
        raise fail("output_heads must list distinct positive sizes (the default first), or be []")
    if raw["format"] not in FORMATS:
        raise fail(f"format must be one of {', '.join(FORMATS)}")
    if raw["pooling"] not in POOLINGS:
        raise fail(f"pooling must be one of {', '.join(POOLINGS)}")
    if raw["converter"] not in CONVERTERS:
        raise fail(f"converter must be one of {', '.join(repr(c) for c in CONVERTERS)}")
    if raw["dimensions"] <= 0 or raw["layers"] <= 0 or raw["max_context"] <= 0:
        raise fail("dimensions, layers and max_context must be positive")
    if raw["sha256"] and (len(raw["sha256"]) != 64 or set(raw["sha256"]) - set("0123456789abcdef")):
        raise fail("sha256 must be 64 lowercase hex digits or empty")
    if not raw["llama_cpp"] and not raw["reason"]:
        raise fail("a model llama.cpp cannot run needs a reason")
    for key in ("hf_extra_files", "tasks"):
        if not all(isinstance(item, str) for item in raw[key]):
            raise fail(f"{key} must be a list of strings")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in raw["task_prompts"].items()):
        raise fail("task_prompts must map task names to prompts")
    if set(raw["task_prompts"]) - set(raw["tasks"]):
        raise fail("task_prompts names a task not in tasks")
    if "." in name or name != name.lower():
        raise fail("catalog names are lowercase and have no dots (they become file names)")

    values = dict(raw)
    values["hf_extra_files"] = tuple(raw["hf_extra_files"])
    values["tasks"] = tuple(raw["tasks"])
    values["task_prompts"] = dict(raw["task_prompts"])
    values["matryoshka_dimensions"] = matryoshka
    values["output_heads"] = tuple(heads)
    return ModelEntry(name=name, **values)


class Catalog:
    """The catalog's entries by name; lookups ignore case and accept display names."""

    def __init__(self, entries: Mapping[str, ModelEntry], source: str = CATALOG_FILE) -> None:
        self.entries = dict(entries)
        self.source = source
        self._aliases: dict[str, str] = {}
        for name, entry in self.entries.items():
            self._aliases[name.lower()] = name
            self._aliases[entry.display_name.lower()] = name

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def find(self, name: str) -> ModelEntry | None:
        key = self._aliases.get(name.strip().lower())
        return self.entries[key] if key else None

    def get(self, name: str) -> ModelEntry:
        entry = self.find(name)
        if entry is None:
            known = ", ".join(sorted(self.entries))
            raise ModelError(f"Unknown model {name!r}. Known models: {known}")
        return entry

    @classmethod
    def parse(cls, text: str, source: str = CATALOG_FILE) -> Catalog:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ModelError(f"{source} is not valid TOML: {exc}") from exc
        if raw.get("schema") != 1:
            raise ModelError(f"{source}: unsupported catalog schema {raw.get('schema')!r}")
        models = raw.get("models")
        if not isinstance(models, dict) or not models:
            raise ModelError(f"{source}: no [models.NAME] tables")
        entries = {}
        for name, table in models.items():
            if not isinstance(table, dict):
                raise ModelError(f"{source}: models.{name} is not a table")
            entries[name] = _entry(name, table, source)
        catalog = cls(entries, source)
        for entry in catalog:
            if entry.alternative and catalog.find(entry.alternative) is None:
                raise ModelError(f"{source}: {entry.name}'s alternative {entry.alternative!r} is not listed")
        return catalog

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        if path is not None:
            return cls.parse(path.read_text(encoding="utf-8"), str(path))
        return cls.parse(_packaged_text(), CATALOG_FILE)


def _packaged_text() -> str:
    """The catalog shipped in the package, else the source checkout's gguf/catalog.toml
    (a checkout where the package's link to it did not survive, as on some Windows setups)."""
    resource = resources.files("localsearch.core.models").joinpath(CATALOG_FILE)
    try:
        text = resource.read_text(encoding="utf-8")
        if text.lstrip().startswith(("#", "schema")):
            return text
    except (OSError, UnicodeDecodeError):
        pass
    source = paths.SOURCE_GGUF_DIR / CATALOG_FILE
    try:
        return source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"The model catalog is missing from this installation ({source})") from exc


_cached: Catalog | None = None


def load_catalog() -> Catalog:
    """The installed catalog, parsed once per process."""
    global _cached
    if _cached is None:
        _cached = Catalog.load()
    return _cached
