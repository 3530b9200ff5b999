"""Start at login: off by default; switching it on writes a valid XDG autostart entry that
opens this installation's window minimized; switching it off removes it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from localsearch import autostart, paths


def test_off_by_default_and_switchable(isolated_home: Path) -> None:
    assert not autostart.is_enabled()
    autostart.set_enabled(True)
    entry = autostart.entry_path()
    assert entry == isolated_home / "autostart" / f"{paths.APP_ID}.desktop"
    text = entry.read_text()
    assert "Exec=" in text and text.rstrip().splitlines()[0] == "[Desktop Entry]"
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    assert exec_line.endswith(" gui --minimized")
    assert f"Icon={paths.APP_ID}" in text
    assert autostart.is_enabled()
    autostart.set_enabled(False)
    assert not entry.exists() and not autostart.is_enabled()
    autostart.set_enabled(False)  # already off: nothing to do, no error


def test_a_frozen_app_starts_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/local search/localsearch")
    assert autostart.app_command() == ["/opt/local search/localsearch"]
    assert 'Exec="/opt/local search/localsearch" gui --minimized' in autostart.entry_text()


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils not installed")
def test_the_entry_passes_desktop_file_validate() -> None:
    autostart.set_enabled(True)
    done = subprocess.run(
        ["desktop-file-validate", str(autostart.entry_path())], capture_output=True, text=True
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout
