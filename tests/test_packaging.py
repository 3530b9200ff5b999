"""The packaging files agree with each other and with the app: one application id for the
desktop entry's file name, the AppStream <id>, the icon and the window's desktop file name;
the entry's StartupWMClass is the window's WM_CLASS; both files pass their validators."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from localsearch.paths import APP_ID

REPO = Path(__file__).resolve().parents[1]
LINUX = REPO / "packaging" / "linux"
DESKTOP = LINUX / f"{APP_ID}.desktop"
METAINFO = LINUX / f"{APP_ID}.metainfo.xml"


def _entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DESKTOP, encoding="utf-8")
    return parser["Desktop Entry"]


def test_one_application_id_everywhere() -> None:
    entry = _entry()
    assert entry["Icon"] == APP_ID
    root = ET.parse(METAINFO).getroot()
    assert root.findtext("id") == APP_ID
    assert root.find("launchable").text == f"{APP_ID}.desktop"  # type: ignore[union-attr]
    assert root.findtext("icon") == APP_ID
    app_source = (REPO / "localsearch" / "gui" / "app.py").read_text()
    assert "setDesktopFileName(paths.APP_ID)" in app_source
    spec = (REPO / "packaging" / "localsearch.spec").read_text()
    assert "bundle_identifier=APP_ID" in spec


def test_the_desktop_entry_starts_the_app_and_matches_its_window() -> None:
    entry = _entry()
    assert entry["Exec"] == "localsearch" and entry["Terminal"] == "false"
    assert entry["Categories"].split(";")[0] == "Utility"
    for key in ("Name", "GenericName", "Comment", "Keywords"):
        assert entry[key]
    # Qt's xcb platform sets WM_CLASS to (argv[0]'s name, the application name).
    app_source = (REPO / "localsearch" / "gui" / "app.py").read_text()
    assert f'setApplicationName("{entry["StartupWMClass"]}")' in app_source


def test_every_rendered_icon_exists() -> None:
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        assert (REPO / "localsearch" / "gui" / "icons" / f"localsearch-{size}.png").is_file()
    assert (REPO / "assets" / "icons" / "localsearch.ico").read_bytes()[:4] == b"\0\0\1\0"
    assert (REPO / "assets" / "icons" / "localsearch.icns").read_bytes()[:4] == b"icns"


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils not installed")
def test_the_desktop_entry_validates() -> None:
    done = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstream not installed")
def test_the_metainfo_validates() -> None:
    done = subprocess.run(
        ["appstreamcli", "validate", "--no-net", str(METAINFO)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
