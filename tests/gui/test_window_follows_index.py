"""The window catches up at launch and follows the index whoever writes it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from pytestqt.qtbot import QtBot

from localsearch.gui.main_window import MainWindow
from tests.gui.conftest import REPO, index_with_fake, write_notes


def test_files_added_while_closed_are_indexed_at_launch(
    qtbot: QtBot, tmp_path: Path, fake_child: dict, make_window: Callable[[], MainWindow]
) -> None:
    docs = write_notes(tmp_path / "notes", {"garden.txt": "Water the tomatoes every morning."})
    index_with_fake(docs)
    # Saved while the app was closed: nothing watched the folder.
    (docs / "zebra.txt").write_text("Zebra herds migrate across the savanna.")
    window = make_window()
    window.show()
    with qtbot.waitSignal(window.index_lane.finished, timeout=60_000) as finished:
        window.start()  # no click on "Update index"
    assert finished.args[0] is True
    with qtbot.waitSignal(window.results_shown, timeout=30_000):
        window.search_box.setText("zebra savanna")
    assert window.results_model.hits[0].name == "zebra.txt"


def test_indexing_from_the_command_line_shows_in_an_open_window(
    qtbot: QtBot, tmp_path: Path, fake_child: dict, make_window: Callable[[], MainWindow]
) -> None:
    first = write_notes(tmp_path / "first", {"a.txt": "Notes about the weekly team meeting."})
    index_with_fake(first)
    window = make_window()
    window.show()
    with qtbot.waitSignal(window.index_lane.finished, timeout=60_000):
        window.start()
    qtbot.waitUntil(lambda: window.folder_list.count() == 1, timeout=10_000)
    assert not window.failures_button.isVisible()

    second = write_notes(
        tmp_path / "second",
        {"b.txt": "Recipes for bread.", "c.txt": "Recipes for soup.", "broken.pdf": "not a pdf at all"},
    )
    # Another program writes the index: the window does nothing itself.
    subprocess.run(
        [sys.executable, "-m", "localsearch", "index", str(second)],
        cwd=REPO,
        env=fake_child,
        check=True,
        capture_output=True,
        timeout=120,
    )
    qtbot.waitUntil(lambda: window.folder_list.count() == 2, timeout=10_000)
    qtbot.waitUntil(lambda: window.failures_button.isVisible(), timeout=10_000)
    assert "1 file could not be indexed" in window.failures_button.text()
    qtbot.waitUntil(lambda: "3 files" in window.statusBar().currentMessage(), timeout=10_000)
    assert not window.index_lane.running  # followed, not re-run

    subprocess.run(
        [sys.executable, "-m", "localsearch", "remove", str(second)],
        cwd=REPO,
        env=fake_child,
        check=True,
        capture_output=True,
        timeout=60,
    )
    qtbot.waitUntil(lambda: window.folder_list.count() == 1, timeout=10_000)
    qtbot.waitUntil(lambda: not window.failures_button.isVisible(), timeout=10_000)
