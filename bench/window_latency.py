"""The window's own latencies: launch to a working window, and keystroke to results on a
100,000-passage index (the synthetic index of bench/search_latency.py, built if missing).

    python bench/window_latency.py [--queries 100] [--launches 3]

Launch: a child process imports the app, builds the main window, shows it (offscreen) and
waits for the index status; the time is from spawning it to that moment. The first launch
after the index is built reads it from the page cache like the rest, so "first" is a
first launch of the program, not a cold disk. Keystroke to results: SciFact train claims
typed into the real window (real model, real search lane); "typed" includes the window's
250 ms pause that waits for typing to stop, "search" starts when that pause ends.
Writes bench/results/window_latency.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SIZE = 100_000


def _index_file() -> Path:
    from bench import search_latency as sl
    from localsearch.core.embedding import LlamaEmbedder
    from localsearch.core.service import resolve_model_path
    from localsearch.settings import Settings

    path = sl.WORK / f"latency-{SIZE}.sqlite3"
    if not path.is_file():
        sl.WORK.mkdir(parents=True, exist_ok=True)
        docs, _ = sl.load_scifact()
        model = resolve_model_path(Settings())
        embedder = LlamaEmbedder(model, name=sl.MODEL_NAME, threads=2, max_tokens=256)
        sl.build_index(path, SIZE, embedder, docs)
        embedder.close()
    return path


def _launch_child() -> int:
    """Runs in the child: window up with its status, then say so and leave."""
    from PySide6.QtWidgets import QApplication

    from localsearch.gui.main_window import MainWindow

    app = QApplication(sys.argv)
    window = MainWindow()
    window.show()
    window.status_shown.connect(lambda: (print("READY", flush=True), app.quit()))
    window.monitor.refresh()
    app.exec()
    window.close()
    return 0


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "max": round(ordered[-1], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--launches", type=int, default=3)
    parser.add_argument("--launch-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.launch_child:
        return _launch_child()

    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    index_file = _index_file()
    home = Path(tempfile.mkdtemp(prefix="localsearch-latency-"))
    os.environ["LOCALSEARCH_HOME"] = str(home)
    from localsearch import paths

    paths.index_db_path().parent.mkdir(parents=True, exist_ok=True)
    os.symlink(index_file, paths.index_db_path())
    # The synthetic index's vectors are keyed by the model alone (no file names embedded):
    # the window must look for that space.
    from localsearch import settings as settings_module

    settings_module.save(settings_module.Settings(file_names=False))

    launches = []
    for _ in range(args.launches):
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, __file__, "--launch-child"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
            timeout=300,
        )
        assert "READY" in child.stdout, child.stderr
        launches.append(round(time.perf_counter() - started, 2))
        print(f"launch to window: {launches[-1]:.2f} s", flush=True)

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from bench.search_latency import load_scifact
    from localsearch.gui.main_window import SEARCH_DELAY_MS, MainWindow

    app = QApplication(sys.argv)
    window = MainWindow()
    window.show()
    shown: list[float] = []
    window.results_shown.connect(lambda n: shown.append(time.perf_counter()))

    def wait_for(count: int, timeout: float = 60) -> None:
        # An event loop that ends on the result (or the timeout); repeated calls of
        # processEvents(flags, ms) crashed PySide6 6.12 here (a refcount error on None).
        if len(shown) >= count:
            return
        end = time.perf_counter() + timeout
        loop = QEventLoop()
        window.results_shown.connect(loop.quit)
        QTimer.singleShot(int(timeout * 1000), loop.quit)
        while len(shown) < count:
            loop.exec()
            if len(shown) < count and time.perf_counter() > end:
                raise SystemExit("timed out waiting for results")
        window.results_shown.disconnect(loop.quit)

    _, queries = load_scifact()
    queries = queries[: args.queries]
    window.search_box.setText("warm up: load the vectors and the model")
    wait_for(1, timeout=300)
    typed, searched = [], []
    for query in queries:
        before = len(shown)
        started = time.perf_counter()
        window.search_box.setText(query)  # as the last keystroke lands
        wait_for(before + 1)
        typed.append((shown[-1] - started) * 1000)
        # The same search started at once (the pause over): the search itself.
        before = len(shown)
        window.search_box.setText(query + " ")
        started = time.perf_counter()
        window._run_search()
        wait_for(before + 1)
        searched.append((shown[-1] - started) * 1000)
    window.close()
    del app

    report = {
        "benchmark": "window_latency",
        "index_chunks": SIZE,
        "queries": len(queries),
        "debounce_ms": SEARCH_DELAY_MS,
        "launch_to_window_seconds": {"first": launches[0], "repeats": launches[1:]},
        "keystroke_to_results_ms": _percentiles(typed),
        "search_after_pause_ms": _percentiles(searched),
        "machine": common.machine(),
    }
    common.write_result("window_latency", report)
    print(f"\n{'measure':<34} {'p50':>8} {'p95':>8} {'max':>8}")
    for name in ("keystroke_to_results_ms", "search_after_pause_ms"):
        figures = report[name]
        assert isinstance(figures, dict)
        print(f"{name:<34} {figures['p50']:>8} {figures['p95']:>8} {figures['max']:>8}")
    print(f"launch to window: first {launches[0]} s, then {launches[1:]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
