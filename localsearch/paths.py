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


# The index holds a private copy of the user's documents; settings and logs name their
# folders. Only the user may read any of it: folders 0700, files 0600.
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
PRIVATE_UMASK = 0o077


def _ensure(path: Path) -> Path:
    if not path.is_dir():
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _private(path, PRIVATE_DIR)
    return path


def _private(path: Path, mode: int) -> None:
    """Narrow `path` to `mode` if it is ours and wider (never widen, never follow a link)."""
    try:
        info = path.lstat()
        if info.st_uid == os.getuid() and not path.is_symlink() and info.st_mode & 0o777 & ~mode:
            path.chmod(mode)
    except (OSError, AttributeError):  # a read-only home; no getuid on Windows
        pass


def secure_state() -> None:
    """At start-up of the command line and the window: whatever this process creates is
    the user's alone (umask), and state left by an older version is narrowed to that."""
    os.umask(PRIVATE_UMASK)
    try:
        home = _home()
        folders = [home] if home else []
        folders += [data_dir(), config_dir(), cache_dir(), log_dir()]
        if home or models_dir() != SOURCE_GGUF_DIR:
            folders.append(models_dir())  # a source checkout's gguf/ is the developer's business
        for folder in folders:
            if not folder.is_dir():
                continue
            _private(folder, PRIVATE_DIR)
            for entry in folder.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    _private(entry, PRIVATE_DIR)
                elif entry.is_file() and not entry.is_symlink():
                    _private(entry, PRIVATE_FILE)
    except OSError:  # a read-only or missing home: the command says so where it matters
        pass


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
