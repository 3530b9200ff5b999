"""Every location localsearch reads or writes. LOCALSEARCH_HOME moves all state
under one folder (tests point it at a temporary directory)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "localsearch"
# The one application id: the .desktop file's name, the AppStream <id>, the icon's name and
# QGuiApplication.desktopFileName (the Wayland app id) all use it (packaging/linux/).
APP_ID = "org.localsearch.localsearch"
HOME_ENV = "LOCALSEARCH_HOME"

# A source checkout keeps built models in <repo>/gguf (git-ignored), next to the catalog.
# In a frozen app this is the bundle's gguf/ folder, which carries the default model.
SOURCE_GGUF_DIR = Path(__file__).resolve().parent.parent / "gguf"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser().resolve() if value else None


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    home = _home()
    return _ensure(home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME)))


def config_dir() -> Path:
    home = _home()
    return _ensure(home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME)))


def cache_dir() -> Path:
    home = _home()
    return _ensure(home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME)))


def log_dir() -> Path:
    home = _home()
    return _ensure(home / "logs" if home else Path(platformdirs.user_log_dir(APP_NAME)))


def models_dir() -> Path:
    """Where models are built or downloaded to."""
    home = _home()
    if home:
        return _ensure(home / "models")
    if (SOURCE_GGUF_DIR.parent / "pyproject.toml").is_file():
        return _ensure(SOURCE_GGUF_DIR)
    return _ensure(Path(platformdirs.user_data_dir(APP_NAME)) / "models")


def model_search_dirs() -> list[Path]:
    """Where an existing model file may be found: the models directory first, then a
    source checkout's gguf/ folder (read-only), so a model built once serves every home."""
    dirs = [models_dir()]
    if SOURCE_GGUF_DIR.is_dir() and SOURCE_GGUF_DIR not in dirs:
        dirs.append(SOURCE_GGUF_DIR)
    return dirs


def index_db_path() -> Path:
    return data_dir() / "index.sqlite3"


def settings_path() -> Path:
    return config_dir() / "settings.toml"


def autostart_dir() -> Path:
    """Where a user-level XDG autostart entry goes ($XDG_CONFIG_HOME/autostart); under
    LOCALSEARCH_HOME when that is set, so tests never start anything at a real login."""
    home = _home()
    if home:
        return home / "autostart"
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "autostart"
