"""The typed settings schema: defaults and descriptions in one place, saved as TOML."""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from localsearch import paths
from localsearch.errors import UserFacingError


def _setting(default: Any, description: str) -> Any:
    return field(default=default, metadata={"description": description})


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


# Settings whose value must be one of a few words.
CHOICES: dict[str, tuple[str, ...]] = {
    "on_battery": ("continue", "slow", "pause"),
    "vector_precision": ("float32", "float16"),
    "theme": ("system", "light", "dark"),
}


@dataclass
class Settings:
    model: str = _setting("all-minilm-l6-v2", "Embedding model (a name from `localsearch models list`).")
    dimensions: int = _setting(0, "Stored vector dimensions; 0 keeps the model's native size.")
    layers: int = _setting(0, "Transformer layers to run (a sliced model file); 0 runs them all.")
    chunk_tokens: int = _setting(
        256, "Model tokens per chunk, special tokens included; capped by the model's context."
    )
    chunk_overlap: int = _setting(32, "Tokens shared by neighbouring chunks of one document.")
    max_file_mb: int = _setting(50, "Files larger than this many megabytes are skipped.")
    threads: int = _setting(0, "CPU threads for embedding; 0 uses every core.")
    vector_precision: str = _setting(
        "float32",
        "How full vectors are stored for exact rescoring: 'float32', or 'float16' (half the bytes, "
        "scores within about 0.001). Binary codes for the first search stage are always kept.",
    )
    exclude: list[str] = field(
        default_factory=list,
        metadata={
            "description": "Paths never indexed, as .gitignore patterns relative to each indexed folder "
            "(e.g. 'build/', '*.log', '/drafts/**'; '!name' brings back a default exclusion). "
            "Hidden files, .git, node_modules, virtual environments and caches are always skipped."
        },
    )
    use_gitignore: bool = _setting(False, "Also skip what .gitignore files in the indexed folders ignore.")
    on_battery: str = _setting(
        "pause", "What indexing does on battery power: 'continue', 'slow' (half speed) or 'pause'."
    )
    extract_workers: int = _setting(
        1, "Threads extracting text ahead of the embedder; 0 extracts between embeddings."
    )
    late_chunking: bool = _setting(
        False,
        "Late chunking: the model reads each document whole (in windows of its context) and each "
        "passage's vector is pooled from its own tokens of that pass, so it carries the document's "
        "context; passages are still cut by the chunker. Changing it re-embeds every file.",
    )
    file_names: bool = _setting(
        True,
        "Embed each passage together with its file's name words (not with late chunking), so a file "
        "is found by what its name says. Changing it re-embeds every file.",
    )
    theme: str = _setting("system", "The window's colours: 'system', 'light' or 'dark'.")
    index_url: str = _setting(
        "",
        "A shared index on a PostgreSQL server with pgvector (postgresql://user@host/database), "
        "searched and written by several computers; empty keeps the index on this computer. No "
        "password here: PostgreSQL's client reads it from ~/.pgpass, PGPASSWORD or a service file.",
    )
    machine: str = _setting(
        "", "This computer's name in a shared index (files are told apart by it); empty: the host name."
    )
    keep_watching: bool = _setting(
        False,
        "Keep watching the folders from the tray when the window is closed (where there is a tray).",
    )

    @classmethod
    def describe(cls) -> dict[str, str]:
        return {f.name: f.metadata["description"] for f in fields(cls)}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def passage_reading(settings: Settings) -> str:
    """How passages are read before they are embedded, as it marks the index's vectors
    (models.spec.space_key): "+late" (in the context of the whole document), "+names" (after
    their file's name words; late chunking has no room for them) or "" (alone)."""
    if settings.late_chunking:
        return "+late"
    return "+names" if settings.file_names else ""


def embedding_changed(before: Settings, after: Settings) -> bool:
    """Whether `after` makes passage vectors another way than `before` (the same model):
    every file is then embedded again, into a space of its own."""
    return passage_reading(before) != passage_reading(after)


_FIELDS = {f.name: f for f in fields(Settings)}
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def validate(key: str, value: Any, where: str = "") -> Any:
    """`value` if it suits setting `key`, else a UserFacingError naming the setting
    (`where` says where the value came from, e.g. " in settings.toml")."""
    if key not in _FIELDS:
        raise UserFacingError(f"Unknown setting {key!r}; known settings: {', '.join(_FIELDS)}")
    default = _default(_FIELDS[key])
    if not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(default, bool):
        raise UserFacingError(f"Setting {key!r}{where} must be {type(default).__name__}, got {value!r}")
    if isinstance(value, list) and not all(isinstance(item, str) for item in value):
        raise UserFacingError(f"Setting {key!r}{where} must be a list of strings, got {value!r}")
    if key == "index_url" and value:
        from localsearch.core.pg.url import checked  # a password in the settings is refused

        value = checked(value)
    if key in CHOICES and value not in CHOICES[key]:
        raise UserFacingError(
            f"Setting {key!r}{where} must be one of {', '.join(CHOICES[key])}, got {value!r}"
        )
    return value


def parse(key: str, words: list[str]) -> Any:
    """A setting's value from command-line words: true/false (yes/no, on/off) for a
    switch, a number, a word, or any number of words for a list. Validated."""
    if key not in _FIELDS:
        return validate(key, None)
    default = _default(_FIELDS[key])
    if isinstance(default, list):
        return validate(key, list(words), " on the command line")
    if len(words) != 1:
        raise UserFacingError(f"Setting {key!r} takes one value, got {len(words)}")
    word = words[0]
    value: Any = word
    if isinstance(default, bool):
        if word.lower() not in _TRUE + _FALSE:
            raise UserFacingError(f"Setting {key!r} is a switch: give true or false, not {word!r}")
        value = word.lower() in _TRUE
    elif isinstance(default, int):
        try:
            value = int(word)
        except ValueError:
            raise UserFacingError(f"Setting {key!r} must be a whole number, not {word!r}") from None
    return validate(key, value, " on the command line")


def load(path: Path | None = None) -> Settings:
    path = path or paths.settings_path()
    if not path.is_file():
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:  # found by tests/fuzz
        raise UserFacingError(f"Cannot read settings file {path}: {exc}") from exc
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _FIELDS:
            continue  # a setting from a newer or older version: not ours; save() keeps it
        if key == "index_url" and isinstance(value, str):
            value = _without_password(value, path)
        values[key] = validate(key, value, f" in {path}")
    return Settings(**values)


def _without_password(url: str, path: Path) -> str:
    """A saved index address with a password in it is used without it (libpq then finds
    the password where it belongs), and the user is told to take it out of the file."""
    from localsearch.core.pg.url import PASSWORD_REFUSED, has_password, is_postgres, without_password

    if not (is_postgres(url) and has_password(url)):
        return url
    logging.getLogger(__name__).warning(
        "index_url in %s: %s The password was ignored.", path, PASSWORD_REFUSED
    )
    return without_password(url)


def _unknown_entries(path: Path) -> dict[str, Any]:
    """What the file holds that this version does not know (settings of a newer or older
    version, tables): kept as they are when the file is rewritten."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return {key: value for key, value in raw.items() if key not in _FIELDS}


def save(settings: Settings, path: Path | None = None) -> None:
    path = path or paths.settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    values = settings.to_dict() | _unknown_entries(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tomli_w.dumps(values), encoding="utf-8")
    tmp.replace(path)
