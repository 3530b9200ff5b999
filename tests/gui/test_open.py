"""Opening a result: a PDF at its page where the viewer takes one, never through a shell,
and a visible message with a way out when nothing can open the file."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from localsearch.gui import opener
from localsearch.gui.main_window import MainWindow


def _script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only the launchers a test puts there."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    return folder


def _record_args(bin_dir: Path, name: str, log: Path) -> None:
    # One argument a line, exactly as received.
    _script(bin_dir, name, f'for a in "$@"; do printf "%s\\n" "$a" >> "{log}"; done')


def test_a_pdf_opens_at_the_matching_page(
    qtbot: QtBot, tmp_path: Path, bin_dir: Path, make_window: Callable[[], MainWindow]
) -> None:
    log = tmp_path / "evince.args"
    _script(bin_dir, "xdg-mime", 'echo "org.gnome.Evince.desktop"')
    _record_args(bin_dir, "evince", log)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4\n")
    window = make_window()
    window.open_path(str(pdf), 3)
    qtbot.waitUntil(log.exists, timeout=5_000)
    qtbot.waitUntil(lambda: len(log.read_text().splitlines()) == 2, timeout=5_000)
    assert log.read_text().splitlines() == ["--page-index=3", str(pdf)]
    assert not window.notice.isVisible()


@pytest.mark.parametrize(
    ("viewer", "program", "expected"),
    [
        ("org.kde.okular", "okular", ["-p", "4", "{path}"]),
        ("org.pwmt.zathura", "zathura", ["--page=4", "{path}"]),
    ],
)
def test_other_viewers_get_their_own_page_option(
    tmp_path: Path, bin_dir: Path, viewer: str, program: str, expected: list[str]
) -> None:
    _script(bin_dir, "xdg-mime", f'echo "{viewer}.desktop"')
    _script(bin_dir, program, "exit 0")
    launch = opener.launch_for("/x/a.pdf", 4, platform="linux")
    assert launch is not None and launch.at_page
    assert launch.argv[1:] == [e.replace("{path}", "/x/a.pdf") for e in expected]


def test_platform_launchers() -> None:
    mac = opener.launch_for("/x/a.pdf", 4, platform="darwin")
    assert mac is not None and mac.argv == ["open", "/x/a.pdf"]
    assert opener.reveal_launch("/x/a.pdf", platform="darwin").argv == ["open", "-R", "/x/a.pdf"]  # type: ignore[union-attr]
    assert opener.reveal_launch("C:\\x\\a.pdf", platform="win32").argv == ["explorer", "/select,C:\\x\\a.pdf"]  # type: ignore[union-attr]


def test_names_reach_the_viewer_verbatim_never_through_a_shell(
    qtbot: QtBot, tmp_path: Path, bin_dir: Path, make_window: Callable[[], MainWindow]
) -> None:
    log = tmp_path / "xdg-open.args"
    _record_args(bin_dir, "xdg-open", log)
    nasty = tmp_path / "notes $(touch pwned); `touch pwned2` & 'x'.txt"
    nasty.write_text("hello")
    window = make_window()
    window.open_path(str(nasty))
    qtbot.waitUntil(log.exists, timeout=5_000)
    assert log.read_text().splitlines() == [str(nasty)]
    assert not (tmp_path / "pwned").exists() and not (Path.cwd() / "pwned").exists()
    assert not (Path.cwd() / "pwned2").exists()


def test_a_page_for_a_viewer_without_page_option_falls_back_to_plain_open(
    qtbot: QtBot, tmp_path: Path, bin_dir: Path, make_window: Callable[[], MainWindow]
) -> None:
    log = tmp_path / "xdg-open.args"
    _script(bin_dir, "xdg-mime", 'echo "some-unknown-viewer.desktop"')
    _record_args(bin_dir, "xdg-open", log)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4\n")
    window = make_window()
    window.open_path(str(pdf), 7)
    qtbot.waitUntil(log.exists, timeout=5_000)
    assert log.read_text().splitlines() == [str(pdf)]
    assert "page 7" in window.statusBar().currentMessage()


def test_no_application_for_the_type_says_so_with_a_way_out(
    qtbot: QtBot, tmp_path: Path, bin_dir: Path, make_window: Callable[[], MainWindow]
) -> None:
    # xdg-open's way of saying that no application handles the type.
    _script(bin_dir, "xdg-open", "echo \"xdg-open: no method available for opening '$1'\" >&2; exit 3")
    odd = tmp_path / "data.weird"
    odd.write_text("x")
    window = make_window()
    window.show()
    window.open_path(str(odd))
    qtbot.waitUntil(window.notice.isVisible, timeout=10_000)
    assert "Could not open data.weird" in window.notice.label.text()
    assert "no method available" in window.notice.label.text()
    assert window.notice.button_texts() == ["Copy path", "Open its folder"]
    QGuiApplication.clipboard().clear()
    window.notice.click("Copy path")
    assert QGuiApplication.clipboard().text() == str(odd)


def test_no_launcher_at_all_says_so(
    qtbot: QtBot, tmp_path: Path, bin_dir: Path, make_window: Callable[[], MainWindow]
) -> None:
    odd = tmp_path / "a.txt"
    odd.write_text("x")
    window = make_window()
    window.show()
    window.open_path(str(odd))
    assert window.notice.isVisible() and "Could not open a.txt" in window.notice.label.text()
    window.reveal_path(str(odd))
    assert "Could not show a.txt" in window.notice.label.text()
    assert window.notice.button_texts() == ["Copy path"]
    window.open_path(str(tmp_path / "gone.txt"))
    assert "no longer there" in window.notice.label.text()
