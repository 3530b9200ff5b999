"""The window and the command line on one index at once, with the real default model.

Two directions, each over SciFact documents (train-split queries, cycled to --searches):

  window-indexes   the window's indexing child (`localsearch index --protocol`) indexes
                   while `localsearch search --batch -` (one long-lived process, as a
                   script would use it) answers the searches one at a time;
  cli-indexes      `localsearch index` from a terminal indexes while the window (the real
                   MainWindow, offscreen in this process, watching the same folder) answers
                   them; each is timed from the search's start to its results on screen.

Each search is timed from question to answer. Counted as errors: a search that raised, an
error line, and any "database is locked" in any output. The same searches with nothing
indexing (after the run) give the idle latency to compare with. An index of the first
--seed-docs documents exists before each direction starts, so searches have something to
find; the remaining documents are indexed during the searches.

    python bench/concurrent_access.py                     # all 5,183 documents, 1,000 searches
    python bench/concurrent_access.py --docs 400 --searches 100   # a quick check

Timing on a shared 2-core machine is noisy: read the spread (p50, p95, max), not one figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import common
import numpy as np
from common import PROJECT_DIR

RESULTS_PATH = common.RESULTS_DIR / "concurrent_access.json"
LOCKED = "database is locked"


def _env(home: Path) -> dict[str, str]:
    env = common.child_env(home)
    env["PYTHONPATH"] = str(PROJECT_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _seed(docs: Path, home: Path) -> None:
    done = subprocess.run(
        common.cli("index", str(docs)), env=_env(home), capture_output=True, text=True, cwd=PROJECT_DIR
    )
    if done.returncode != 0:
        raise SystemExit(f"seeding the index failed:\n{done.stderr}")


def _stats(seconds: Sequence[float]) -> dict[str, float | int | None]:
    if not seconds:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
    ms = np.array(seconds) * 1000
    return {
        "count": len(seconds),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(float(ms.max()), 1),
    }


class _BatchSearcher:
    """`localsearch search --batch -`: one query line in, one answer line out."""

    def __init__(self, home: Path) -> None:
        self.process = subprocess.Popen(
            common.cli("search", "--batch", "-", "--limit", "10"),
            env=_env(home),
            cwd=PROJECT_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __call__(self, number: int, text: str) -> str | None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"id": number, "text": text}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            return "the search process ended"
        answer = json.loads(line)
        return str(answer["error"]) if "error" in answer else None

    def close(self) -> str:
        assert self.process.stdin is not None and self.process.stderr is not None
        self.process.stdin.close()
        errors = self.process.stderr.read()
        self.process.wait(60)
        return errors


class _WindowSearcher:
    """The window itself (offscreen, in this process): each query is put in its search box
    and searched at once (the typing pause skipped), timed until its results are on screen.
    Its own index monitor, status refresh, watcher and indexing lane run as they would."""

    def __init__(self, home: Path) -> None:
        os.environ["LOCALSEARCH_HOME"] = str(home)
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtWidgets import QApplication

        from localsearch.gui.main_window import MainWindow

        self.app = QApplication.instance() or QApplication([])
        self.window = MainWindow()
        self.window.show()
        self.shown = 0
        self.failures: list[str] = []
        self.window.results_shown.connect(self._on_shown)
        self.window.search_lane.failed.connect(self.failures.append)

    def _on_shown(self, _count: int) -> None:
        self.shown += 1

    def __call__(self, number: int, text: str) -> str | None:
        from PySide6.QtCore import QEventLoop, QTimer

        before, failed = self.shown, len(self.failures)
        self.window.search_box.setText(text if number % 2 else text + " ")  # never the same text twice
        self.window._run_search()
        loop = QEventLoop()
        self.window.results_shown.connect(loop.quit)
        self.window.search_lane.failed.connect(loop.quit)
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(loop.quit)
        timer.start(120_000)
        while self.shown == before and len(self.failures) == failed and timer.isActive():
            loop.exec()
        self.window.results_shown.disconnect(loop.quit)
        self.window.search_lane.failed.disconnect(loop.quit)
        if len(self.failures) > failed:
            return self.failures[-1]
        return None if self.shown > before else "no results on screen within 120 s"

    def close(self) -> str:
        shown = "\n".join(self.failures)
        status = self.window.statusBar().currentMessage()
        self.window.close()
        return shown + "\n" + status


def _run_searches(
    search: Callable[[int, str], str | None], queries: Sequence[str], count: int, busy: Callable[[], bool]
) -> tuple[list[float], list[float], list[str]]:
    """(seconds of searches while indexing ran, seconds of the others, error texts)."""
    during: list[float] = []
    after: list[float] = []
    errors: list[str] = []
    for number in range(count):
        running = busy()
        started = time.perf_counter()
        error = search(number, queries[number % len(queries)])
        elapsed = time.perf_counter() - started
        if error is not None:
            errors.append(error)
        (during if running and busy() else after).append(elapsed)
    return during, after, errors


def _direction(
    name: str, docs: Path, rest: Path, home: Path, queries: Sequence[str], count: int
) -> dict[str, Any]:
    _seed(docs, home)
    for path in rest.iterdir():  # the rest joins the indexed folder while searches run
        shutil.move(str(path), docs / path.name)
    searcher: _BatchSearcher | _WindowSearcher
    if name == "window-indexes":
        searcher = _BatchSearcher(home)
        command = common.cli("index", "--protocol", str(docs))
    else:
        searcher = _WindowSearcher(home)
        command = common.cli("index", "--json", str(docs))
    searcher(-1, "warm up the model")  # loaded before the clock starts
    indexer = subprocess.Popen(
        command,
        env=_env(home),
        cwd=PROJECT_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    outputs: dict[str, bytes] = {}

    def drain() -> None:
        out, err = indexer.communicate()
        outputs["out"], outputs["err"] = out, err

    reader = threading.Thread(target=drain)
    reader.start()
    started = time.perf_counter()
    during, after, errors = _run_searches(searcher, queries, count, lambda: indexer.poll() is None)
    reader.join()
    index_seconds = time.perf_counter() - started
    idle, _, idle_errors = _run_searches(searcher, queries, count, lambda: True)
    search_stderr = searcher.close()
    everything = (
        outputs["out"].decode(errors="replace") + outputs["err"].decode(errors="replace") + search_stderr
    )
    return {
        "direction": name,
        "indexer_exit": indexer.returncode,
        "indexing_seconds_or_more": round(index_seconds, 1),
        "searches_while_indexing": _stats(during),
        "searches_after_indexing_ended": _stats(after),
        "searches_idle": _stats(idle),
        "errors": len(errors) + len(idle_errors),
        "error_samples": (errors + idle_errors)[:5],
        "database_is_locked_seen": everything.count(LOCKED) + sum(LOCKED in e for e in errors + idle_errors),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--docs", type=int, default=None, help="SciFact documents in all (default: the whole corpus)"
    )
    parser.add_argument(
        "--seed-docs", type=int, default=200, help="of them, indexed before the searches start"
    )
    parser.add_argument("--searches", type=int, default=1000, help="searches per direction (default 1,000)")
    parser.add_argument("--direction", choices=["window-indexes", "cli-indexes", "both"], default="both")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)

    model = common.resolve_model()
    dataset = common.read_scifact(args.docs)
    queries = [q.text for q in dataset.queries] or ["protein folding"]
    run_start = common.start()
    results: list[dict[str, Any]] = []
    directions = ["window-indexes", "cli-indexes"] if args.direction == "both" else [args.direction]
    with tempfile.TemporaryDirectory(prefix="concurrent-") as scratch:
        for name in directions:
            base = Path(scratch) / name
            docs, rest = base / "docs", base / "rest"
            common.write_documents(dataset.documents[: args.seed_docs], docs)
            common.write_documents(dataset.documents[args.seed_docs :], rest)
            print(f"{name}: {len(dataset.documents)} documents, {args.searches} searches…", file=sys.stderr)
            results.append(_direction(name, docs, rest, base / "home", queries, args.searches))
    data = {
        "machine": common.machine(model, run_start),
        "documents": len(dataset.documents),
        "seed_documents": args.seed_docs,
        "searches_per_direction": args.searches,
        "queries": "SciFact train-split queries, cycled",
        "results": results,
    }
    common.write_result(args.output, data)
    rows = [("direction", "while indexing p50 / p95 / max ms (n)   idle p95 ms   errors   locked")]
    for r in results:
        w, i = r["searches_while_indexing"], r["searches_idle"]
        rows.append(
            (
                r["direction"],
                f"{w['p50_ms']} / {w['p95_ms']} / {w['max_ms']} ({w['count']})   {i['p95_ms']}   "
                f"{r['errors']}   {r['database_is_locked_seen']}",
            )
        )
    common.print_rows(rows)
    return (
        0
        if all(
            r["errors"] == 0 and r["database_is_locked_seen"] == 0 and r["indexer_exit"] == 0 for r in results
        )
        else 1
    )


if __name__ == "__main__":
    raise SystemExit(main())
