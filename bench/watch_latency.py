"""Edit-to-searchable: how long after a file is saved in a watched folder does search find it?

Runs `localsearch watch FOLDER` (the real command, real default model, its long-lived
indexing lane and document engine) in a child process, then repeatedly saves a real
document (a SciFact abstract with a new unique word; alternating new files and edits of
existing ones) and polls every 20 ms, as the window's search lane does: one long-lived
service with the index's vectors kept in memory (LocalSearch(keep_vectors=True,
for_queries=True), as gui/main_window.py opens it). A save is searchable once both lanes
find it: the default (hybrid) search for its unique word ranks it first, and the meaning
lane alone (semantic mode) returns it among the top 5 for its title, i.e. its vectors were
embedded, stored and reached the search lane's copy.

    python bench/watch_latency.py            # 30 saves, writes bench/results/watch_latency.json
    python bench/watch_latency.py --saves 10
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import common

RESULTS_PATH = common.RESULTS_DIR / "watch_latency.json"
POLL = 0.02
TIMEOUT = 30.0


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    position = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[position]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--saves", type=int, default=30, help="how many saves to time (default 30)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="JSON results file")
    args = parser.parse_args(argv)

    model_path = common.resolve_model()
    run_start = common.start()
    work = Path(tempfile.mkdtemp(prefix="localsearch-watch-"))
    folder, home = work / "docs", work / "home"
    folder.mkdir()
    (folder / "seed.txt").write_text("A first note so the index is not empty.\n")
    log = open(work / "watch.log", "w+")  # noqa: SIM115 - closed below
    watcher = subprocess.Popen(
        common.cli("watch", str(folder)), env=common.child_env(home), stdout=log, stderr=log, text=True
    )
    latencies: list[float] = []
    try:
        deadline = time.monotonic() + 120
        while "watching" not in (work / "watch.log").read_text():
            if watcher.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("localsearch watch did not start:\n" + (work / "watch.log").read_text())
            time.sleep(0.1)
        os.environ["LOCALSEARCH_HOME"] = str(home)
        from localsearch.core.service import LocalSearch

        documents = common.read_scifact(args.saves).documents
        with LocalSearch(keep_vectors=True, for_queries=True) as service:
            service.search("warm up", 1)
            for i in range(args.saves):
                word = f"zqx{i:03d}marker"
                target = folder / (f"new{i:03d}.txt" if i % 2 == 0 else "edited.txt")
                document = documents[i % len(documents)]
                time.sleep(0.3)  # apart from the previous save, as a person's saves are
                saved = time.perf_counter()
                target.write_text(f"{document.text}\n\nIt mentions {word} once.\n")
                found_word = found_meaning = False
                while True:
                    if not found_word:
                        hits = service.search(word, 1)
                        found_word = bool(hits) and hits[0].path == str(target)
                    if found_word and not found_meaning:
                        hits = service.search(document.title, 5, mode="semantic")
                        found_meaning = str(target) in [hit.path for hit in hits]
                    if found_word and found_meaning:
                        break
                    if time.perf_counter() - saved > TIMEOUT:
                        raise SystemExit(f"{word} not searchable after {TIMEOUT} s")
                    time.sleep(POLL)
                latencies.append(time.perf_counter() - saved)
    finally:
        watcher.terminate()
        watcher.wait(10)
        log.close()
        shutil.rmtree(work, ignore_errors=True)

    results: dict[str, Any] = {
        "benchmark": "watch_latency",
        "saves": len(latencies),
        "poll_seconds": POLL,
        "watch_quiet_seconds": 0.5,
        "search_path": "LocalSearch(keep_vectors=True, for_queries=True), as the window's search lane: "
        "hybrid search for the save's unique word ranks it first and semantic search for its title "
        "returns it in the top 5",
        "saved_documents": "SciFact abstracts (title + text) with a unique word appended",
        "p50_seconds": round(statistics.median(latencies), 3),
        "p95_seconds": round(percentile(latencies, 0.95), 3),
        "max_seconds": round(max(latencies), 3),
        "latencies": [round(x, 3) for x in latencies],
        "machine": common.machine(model_path, run_start),
    }
    common.write_result(args.output, results)
    common.print_rows(
        [
            ("saves", str(len(latencies))),
            ("edit to searchable p50", f"{results['p50_seconds']:.2f} s"),
            ("edit to searchable p95", f"{results['p95_seconds']:.2f} s (target <= 2)"),
            ("max", f"{results['max_seconds']:.2f} s"),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
