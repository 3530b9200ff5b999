"""The window finds the index damaged at start: it says so, keeps the folders and
rebuilds the index from the files in its indexing child."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from localsearch.core.service import LocalSearch
from localsearch.gui.main_window import MainWindow
from localsearch.settings import Settings
from tests.fakes import FakeEmbedder

REPO = Path(__file__).resolve().parents[2]


def test_the_window_tells_and_rebuilds_a_damaged_index(
    qtbot: QtBot, tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALSEARCH_TEST_EMBEDDER", "tests.fakes:FakeEmbedder")
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"note{i}.txt").write_text(f"note {i} about the harbour and its lighthouse " * 20)
        os.utime(docs / f"note{i}.txt", (1_700_000_000, 1_700_000_000))
    with LocalSearch(Settings(), embedder_factory=lambda s, q=False: FakeEmbedder()) as service:
        list(service.index_paths([docs]))
        db = service.db_path
    with open(db, "r+b") as handle:
        handle.truncate(db.stat().st_size // 2 + 100)

    window = MainWindow()
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.index_lane.finished, timeout=120_000) as finished:
        window.search_lane.refresh_status()
        qtbot.waitUntil(lambda: window.notice_box is not None, timeout=30_000)
        assert window.notice_box is not None
        assert "damaged" in window.notice_box.text() and "kept aside" in window.notice_box.text()
        assert window.index_lane.running  # rebuilding from the files
        assert window.folder_list.count() == 1  # the folder is kept
    assert finished.args == [True, "Indexed 6 new or changed files."]
    assert [p for p in db.parent.iterdir() if ".damaged-" in p.name]  # the damaged file kept aside
    window.search_lane.stop()
    window.watch_lane.stop()
