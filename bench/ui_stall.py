"""The longest event-loop stall of the window while it indexes one folder and removes
another, the way the window does it now (cancel by signal and timers, removal on the
monitor lane) against the way it did before (waiting for the child, DELETE on the UI
thread), interleaved.

    python bench/ui_stall.py [--rounds 2] [--output FILE]

The indexing child and the window's search lane use the fake embedder (tests/fakes.py):
the model is not what is measured. Stalls are reported as the clock saw them and without
the time the process's threads waited for a CPU (see tests/gui/test_responsiveness.py).
Writes bench/results/ui_stall.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import common

ROOT = common.PROJECT_DIR
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/ui_stall.json)")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["LOCALSEARCH_TEST_EMBEDDER"] = "tests.fakes:FakeEmbedder"
    os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv)
    runs = []
    for round_ in range(args.rounds):
        for way in ("now", "before"):
            result = _one(way, QEventLoop, QTimer)
            result["round"] = round_
            runs.append(result)
            print(
                f"{way:7s} round {round_}: longest stall {result['longest_ms_ours']:.0f} ms "
                f"({result['longest_ms_clock']:.0f} ms by the clock)",
                flush=True,
            )
    del app
    report = {
        "benchmark": "ui_stall",
        "scenario": "index a folder of 200 notes while removing one of 400 notes (fake embedder)",
        "runs": runs,
        "machine": common.machine(),
    }
    common.write_result(args.output or "ui_stall", report)
    return 0


def _one(way: str, loop_class: type, timer_class: type) -> dict:
    home = Path(tempfile.mkdtemp(prefix="localsearch-stall-"))
    os.environ["LOCALSEARCH_HOME"] = str(home / "state")
    from localsearch.core.service import LocalSearch
    from localsearch.gui.main_window import MainWindow
    from tests.gui.conftest import fake_service, index_with_fake
    from tests.gui.test_responsiveness import GapMeter, _notes

    old = _notes(home / "old", 400)
    index_with_fake(old)
    new = _notes(home / "new", 200)
    window = MainWindow(service_factory=fake_service)
    window.show()

    def wait(test: Callable[[], bool], timeout: float) -> None:
        end = time.perf_counter() + timeout
        while not test():
            if time.perf_counter() > end:
                raise SystemExit("timed out")
            loop = loop_class()
            timer_class.singleShot(20, loop.quit)
            loop.exec()

    progress: list[dict] = []
    window.index_lane.progress.connect(progress.append)
    window.add_folder(str(new))
    wait(lambda: any(p.get("files_done", 0) >= 5 for p in progress), 120)
    meter = GapMeter()
    if way == "now":
        window.remove_folder(str(old))
        wait(lambda: not window._removing, 120)
    else:
        # What _remove_selected_folder did: wait for the child to stop, then DELETE here.
        lane = window.index_lane
        process = lane._process
        if process is not None:
            lane._cancelled = True
            lane._send("cancel")
            process.waitForFinished(3000)
        with LocalSearch() as service:
            service.remove_paths([str(old)])
        wait(lambda: not window.index_lane.running, 60)
    settle = loop_class()  # half a second more of event loop, so the meter ticks after it all
    timer_class.singleShot(500, settle.quit)
    settle.exec()
    meter.stop()
    window.close()
    return {
        "way": way,
        "longest_ms_clock": round(meter.longest * 1000, 1),
        "longest_ms_ours": round(meter.longest_ours * 1000, 1),
    }


if __name__ == "__main__":
    raise SystemExit(main())
