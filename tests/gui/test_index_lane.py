"""The window's indexing lane: a child `localsearch index --control`, paused, resumed
and cancelled through its stdin, its progress arriving as signals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from localsearch.gui.workers import IndexLane

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def paced_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child indexes with the paced fake embedder: slow enough to pause mid-run."""
    monkeypatch.setenv("LOCALSEARCH_TEST_EMBEDDER", "tests.crash_embedder:PacedFakeEmbedder")
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _folder(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(count):
        text = " ".join(f"paragraph {j} of note {i} about topic{i}." for j in range(40))
        (folder / f"note{i:03d}.txt").write_text(text)
    return folder


@pytest.mark.usefixtures("paced_child")
def test_pause_holds_the_child_and_resume_finishes_it(qtbot: QtBot, tmp_path: Path) -> None:
    folder = _folder(tmp_path, 120)
    lane = IndexLane()
    seen: list[dict] = []
    lane.progress.connect(seen.append)
    lane.index([str(folder)])
    qtbot.waitUntil(lambda: any(p.get("files_done", 0) >= 3 for p in seen), timeout=60_000)
    with qtbot.waitSignal(lane.paused_changed, timeout=5_000):
        lane.pause()
    qtbot.waitUntil(lambda: seen[-1].get("paused") == "paused", timeout=10_000)
    held_at = seen[-1]["files_done"]
    assert held_at < 120
    qtbot.wait(600)  # nothing moves while paused
    assert seen[-1]["files_done"] == held_at and lane.running
    with qtbot.waitSignal(lane.finished, timeout=120_000) as finished:
        lane.resume()
    assert finished.args[0] is True
    assert seen[-1]["phase"] == "done" and seen[-1]["files_done"] == 120


@pytest.mark.usefixtures("paced_child")
def test_cancel_stops_the_child_and_keeps_its_work(qtbot: QtBot, tmp_path: Path) -> None:
    folder = _folder(tmp_path, 120)
    lane = IndexLane()
    seen: list[dict] = []
    lane.progress.connect(seen.append)
    lane.index([str(folder)])
    qtbot.waitUntil(lambda: any(p.get("files_done", 0) >= 3 for p in seen), timeout=60_000)
    with qtbot.waitSignal(lane.finished, timeout=20_000) as finished:
        lane.cancel()
    assert finished.args == [True, "Indexing paused. What was indexed is kept."]
    assert not lane.running


def test_no_log_text_reaches_the_window(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child logs an exception with its traceback, warnings, and prints to both file
    descriptors; the window shows only what the protocol carries for the user."""
    from localsearch.gui.main_window import MainWindow
    from tests.crash_embedder import NOISE

    monkeypatch.setenv("LOCALSEARCH_TEST_EMBEDDER", "tests.crash_embedder:NoisyFakeEmbedder")
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    folder = _folder(tmp_path, 5)
    window = MainWindow()
    qtbot.addWidget(window)
    shown: list[str] = []
    window.statusBar().messageChanged.connect(shown.append)
    lane = window.index_lane
    lane.message.connect(shown.append)
    with qtbot.waitSignal(lane.finished, timeout=120_000) as finished:
        lane.index([str(folder), str(tmp_path / "gone")])
    shown.append(finished.args[1])
    assert finished.args[0] is True and finished.args[1] == "Indexed 5 new or changed files."
    # A message meant for the user does arrive: the missing folder is named.
    assert any("gone: no such file or folder" in text for text in shown)
    leaked = [t for t in shown if NOISE in t or "Traceback" in t or "WARNING" in t or "test embedder" in t]
    assert leaked == []
    log_text = (Path(os.environ["LOCALSEARCH_HOME"]) / "logs").rglob("*.log")
    assert any(NOISE in p.read_text() for p in log_text)  # the log file has them instead
    window.search_lane.stop()
