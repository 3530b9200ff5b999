"""Start at login (Linux): a user-level XDG autostart entry that opens the window minimized,
so the folders are watched from login on. Off until the user switches it on in Settings;
the entry's presence is the setting, so removing the file by hand switches it off too."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from localsearch import paths
from localsearch.launch import is_frozen


def supported() -> bool:
    return sys.platform.startswith("linux")


def entry_path() -> Path:
    return paths.autostart_dir() / f"{paths.APP_ID}.desktop"


def is_enabled() -> bool:
    return entry_path().is_file()


def app_command() -> list[str]:
    """What starts this same installation's window: the app itself when frozen (the .deb's
    /usr/bin/localsearch links to it), else the installed script, else this Python."""
    if is_frozen():
        return [sys.executable]
    script = shutil.which("localsearch")
    return [script] if script else [sys.executable, "-m", "localsearch"]


def _exec_quote(arg: str) -> str:
    """One argument of a desktop entry's Exec key: double-quoted when it holds a reserved
    character, with \\ " ` $ escaped inside (the Desktop Entry Specification's rules, not
    a shell's), and % doubled."""
    arg = arg.replace("%", "%%")
    if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`"):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'


def entry_text() -> str:
    command = " ".join(_exec_quote(a) for a in [*app_command(), "gui", "--minimized"])
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=localsearch\n"
        "Comment=Keep the search index of your folders up to date\n"
        f"Exec={command}\n"
        f"Icon={paths.APP_ID}\n"
        "Terminal=false\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def set_enabled(enabled: bool) -> None:
    path = entry_path()
    if not enabled:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(entry_text(), encoding="utf-8")
    tmp.replace(path)
