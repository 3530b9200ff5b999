"""One side of bench/search_latency.py's service-level timing: a process holding the
window's search lane (LocalSearch with its in-memory codes and query engine) and, on a
thread of its own with its own connection, the window's index monitor reading the status
at its cadence. It imports `localsearch` from PYTHONPATH, so the same script runs this
checkout and an older revision side by side (search_latency.py --peer-rev).

Reads one JSON request a line on stdin and answers one JSON line on stdout:
    {"mode": "hybrid", "limit": 10, "queries": [...]}
        ->  {"ms": [...], "cpu_ms": [...], "thread_cpu_ms": [...], "hits": [...], "load": 1.2}
    {"stop": true}                                       ->  {"status_ms": [...]}
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path


def _settings() -> object:
    from localsearch.settings import Settings

    try:  # the synthetic index's space: the model's passages without file-name words
        return Settings(file_names=False)  # type: ignore[call-arg]
    except TypeError:  # a revision from before that setting
        return Settings()


class StatusRefresh(threading.Thread):
    """The index monitor of the window, as while another process indexes: every probe
    finds a new data version, so the status is read every MIN_STATUS_SECONDS (or
    `interval`), through the monitor's own worker and its own connection."""

    def __init__(self, db: Path, interval: float | None) -> None:
        super().__init__(name="index-monitor", daemon=True)
        from localsearch.core.service import LocalSearch
        from localsearch.gui.index_monitor import MIN_STATUS_SECONDS, _MonitorWorker

        self.interval = interval or MIN_STATUS_SECONDS
        self._db = db
        self._service_class = LocalSearch
        self._worker_class = _MonitorWorker
        self._stopping = threading.Event()
        self.durations: list[float] = []

    def run(self) -> None:
        worker = self._worker_class()
        # What the worker's _get() opens, on the benchmark's index and settings.
        worker._service = self._service_class(_settings(), db_path=self._db)  # type: ignore[arg-type]
        try:
            while not self._stopping.wait(self.interval):
                started = time.perf_counter()
                worker.refresh()
                self.durations.append((time.perf_counter() - started) * 1000)
        finally:
            worker.shutdown()

    def finish(self) -> None:
        self._stopping.set()
        self.join(30)


def main() -> int:
    db = Path(sys.argv[1])
    interval = float(sys.argv[2]) if len(sys.argv) > 2 and float(sys.argv[2]) > 0 else None
    from localsearch.core.service import LocalSearch

    # The window's search lane: MainWindow's service factory on the benchmark's index.
    service = LocalSearch(_settings(), db_path=db, keep_vectors=True, for_queries=True)  # type: ignore[arg-type]
    service.search("warm up the model and the codes", 10, mode="hybrid")
    monitor = StatusRefresh(db, interval)
    monitor.start()
    print(json.dumps({"ready": True, "package": os.path.dirname(sys.modules["localsearch"].__file__ or "")}))
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("stop"):
            monitor.finish()
            print(json.dumps({"status_ms": monitor.durations}), flush=True)
            break
        times, cpu, thread, hits = [], [], [], []
        for query in request["queries"]:
            service.searcher._cache.clear()  # every search embeds its query, as a new one would
            started, process_cpu, thread_cpu = time.perf_counter(), time.process_time(), time.thread_time()
            found = service.search(query, request["limit"], mode=request["mode"])
            times.append((time.perf_counter() - started) * 1000)
            # CPU time, less sensitive to a busy machine than the clock: the whole process's
            # (both lanes, and the monitor's share) and the searching thread's alone.
            cpu.append((time.process_time() - process_cpu) * 1000)
            thread.append((time.thread_time() - thread_cpu) * 1000)
            hits.append([[h.path, h.chunk, round(h.score, 6)] for h in found])
        answer = {
            "ms": times,
            "cpu_ms": cpu,
            "thread_cpu_ms": thread,
            "hits": hits,
            "load": os.getloadavg()[0],
        }
        print(json.dumps(answer), flush=True)
    service.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
