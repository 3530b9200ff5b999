"""First run: a welcome view with one clear action; progress that says what happens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QPalette
from pytestqt.qtbot import QtBot

from localsearch.gui.main_window import MainWindow
from localsearch.gui.widgets import folder_labels, suggested_folders
from tests.gui.conftest import write_notes


def _luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())
    )


def contrast(a: QColor, b: QColor) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_first_run_welcomes_with_suggested_folders(
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_child: dict,
    make_window: Callable[[], MainWindow],
) -> None:
    home = tmp_path / "person"
    documents = write_notes(home / "Documents", {"plan.txt": "Holiday plan for the mountains."})
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    assert suggested_folders() == [documents]  # no Desktop here: not suggested
    window = make_window()
    window.show()
    with qtbot.waitSignal(window.status_shown, timeout=20_000):
        window.start()
    assert window.stack.currentWidget() is window.welcome
    assert not window.reindex_button.isEnabled() and not window.update_action.isEnabled()
    assert not window.remove_button.isEnabled()
    # How much each suggestion holds is counted in the background.
    qtbot.waitUntil(lambda: window.welcome.suggestion_boxes[0].property("count") is not None, timeout=10_000)
    assert [b.text() for b in window.welcome.suggestion_boxes] == [f"Documents  ({documents}) — 1 document"]
    # Typing before any folder keeps the welcome, not "nothing matches".
    window.search_box.setText("mountains")
    qtbot.wait(SEARCH_WAIT)
    assert window.stack.currentWidget() is window.welcome
    # Hint text is readable: WCAG AA contrast against the window.
    palette = window.welcome.intro.palette()
    assert (
        contrast(palette.color(QPalette.ColorRole.WindowText), palette.color(QPalette.ColorRole.Window))
        >= 4.5
    )
    palette = window.placeholder.palette()
    assert (
        contrast(palette.color(window.placeholder.foregroundRole()), palette.color(QPalette.ColorRole.Window))
        >= 4.5
    )

    with qtbot.waitSignal(window.index_lane.finished, timeout=60_000):
        window.welcome.start_button.click()
    assert window.reindex_button.isEnabled()
    qtbot.waitUntil(lambda: window.folder_list.count() == 1, timeout=10_000)
    window.folder_list.setCurrentRow(0)
    assert window.remove_button.isEnabled()
    assert window.stack.currentWidget() is not window.welcome


SEARCH_WAIT = 600


def test_progress_shows_rate_time_left_current_file_and_pause(make_window: Callable[[], MainWindow]) -> None:
    window = make_window()
    window.show()
    window._indexing_started()
    window._show_progress(
        {
            "phase": "indexing",
            "files_total": 200,
            "files_done": 50,
            "elapsed": 10.0,
            "eta_seconds": 150,
            "current": "/home/x/reports/budget 2024.pdf",
            "paused": None,
        }
    )
    assert window.progress_bar.format() == "50 / 200 files · about 2 min left"
    message = window.statusBar().currentMessage()
    assert "budget 2024.pdf" in message and "5.0 files/s" in message
    window._show_progress(
        {"phase": "indexing", "files_total": 200, "files_done": 50, "elapsed": 12.0, "paused": "paused"}
    )
    assert window.progress_bar.format().startswith("Paused")
    assert "paused" in window.statusBar().currentMessage().lower()


def test_the_final_summary_stays_visible(
    qtbot: QtBot, tmp_path: Path, fake_child: dict, make_window: Callable[[], MainWindow]
) -> None:
    docs = write_notes(tmp_path / "notes", {"a.txt": "alpha", "b.txt": "beta"})
    window = make_window()
    window.show()
    with qtbot.waitSignal(window.index_lane.finished, timeout=60_000):
        window.add_folder(str(docs))
    assert window.notice.isVisible() and "Indexed 2 new or changed files" in window.notice.label.text()
    # Later status updates do not wipe it.
    with qtbot.waitSignal(window.status_shown, timeout=10_000):
        window.monitor.refresh()
    assert window.notice.isVisible() and "Indexed 2" in window.notice.label.text()


def test_folders_with_the_same_name_show_enough_of_their_path() -> None:
    labels = folder_labels(["/home/alice/Documents", "/home/bob/Documents", "/data/Music"])
    assert labels[2] == "Music"
    assert labels[0] != labels[1]
    assert "alice" in labels[0] and "bob" in labels[1]
    deep = folder_labels(["/a/x/jobs/Documents", "/b/x/jobs/Documents"])
    assert deep[0] != deep[1]
