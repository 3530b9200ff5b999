"""Single instance: a second launch raises the running window and exits without one (so
never a second index writer); a lock whose owner is gone is taken over."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from pytestqt.qtbot import QtBot

from localsearch.gui.single_instance import SingleInstance

REPO = Path(__file__).resolve().parents[2]


def test_the_second_instance_asks_the_first_to_come_forward(qtbot: QtBot) -> None:
    first = SingleInstance()
    assert first.acquire()
    second = SingleInstance()
    with qtbot.waitSignal(first.activated, timeout=5_000):
        assert not second.acquire()
    first.release()
    third = SingleInstance()
    assert third.acquire()  # released: the next launch is the first again
    third.release()


def test_a_second_app_launch_exits_at_once_and_raises_the_window(qtbot: QtBot, isolated_home: Path) -> None:
    first = SingleInstance()
    assert first.acquire()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LOCALSEARCH_HOME=str(isolated_home))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    started = time.monotonic()
    with qtbot.waitSignal(first.activated, timeout=30_000):
        launch = subprocess.Popen([sys.executable, "-m", "localsearch", "gui"], env=env)
    assert launch.wait(timeout=30) == 0
    assert time.monotonic() - started < 30
    # It made no index: it never got as far as a window and its lanes.
    assert not (isolated_home / "data" / "index.sqlite3").exists()
    first.release()


def test_a_lock_left_by_a_dead_process_is_taken_over(qtbot: QtBot, isolated_home: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LOCALSEARCH_HOME=str(isolated_home))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    # A process takes the lock and dies without releasing it (as a crash would).
    code = (
        "import os; from PySide6.QtCore import QCoreApplication; app = QCoreApplication([]);"
        "from localsearch.gui.single_instance import SingleInstance; s = SingleInstance();"
        "assert s.acquire(); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert (isolated_home / "data" / "window.lock").exists()
    again = SingleInstance()
    assert again.acquire()
    again.release()
