"""Where a search's time goes: each stage of LocalSearch.search timed, clock and CPU.

The window's search lane (LocalSearch with its in-memory codes and query engine) on a
synthetic index of bench/search_latency.py, its stages wrapped with timers: query
embedding, hamming first stage, asymmetric code shortlist, vector reads (rescoring and
cosines), chunk rows, the keyword lane (term counts, FTS5, and on its thread the
evidence the fusion reads), the fusion's keyword evidence, cosines of keyword-only
chunks, and the results with their snippets. Stages on the keyword lane's thread are
marked "@lane": they overlap the other thread's. Mean per search; CPU is the thread's
own, which a busy machine inflates less than the clock.

    python bench/search_stages.py [--size 100000] [--queries 100] [--runs hybrid:10 hybrid:50 semantic:10]
    LOCALSEARCH_TREE=bench/scratch/peer-<commit> python bench/search_stages.py ...  (an older revision)
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# LOCALSEARCH_TREE: another revision's package to profile (e.g. search_latency's peer tree).
sys.path.insert(0, os.environ.get("LOCALSEARCH_TREE") or str(ROOT))

import common  # noqa: E402
from synthetic_index import load_scifact  # noqa: E402

from localsearch.core import codes, searcher, storage  # noqa: E402
from localsearch.core.service import LocalSearch  # noqa: E402
from localsearch.settings import Settings  # noqa: E402

# (owner, attribute, stage): what is timed. Wrapped on the class or module, so every
# thread's calls are counted, each under its own thread.
STAGES: list[tuple[Any, str, str]] = [
    (searcher.Searcher, "search", "search (whole)"),
    (searcher.Searcher, "embed_query", "query embedding"),
    (codes.CodeCache, "nearest", "hamming first stage"),
    (searcher, "shortlist", "asymmetric code shortlist"),
    (storage.Index, "chunk_vector_matrix", "vector reads"),
    (storage.Index, "chunk_hits", "chunk rows"),
    (searcher.Searcher, "_keyword", "keyword lane"),
    (storage.Index, "term_counts", "term counts"),
    (storage.Index, "keyword_chunks", "FTS5 BM25"),
    (storage.Index, "terms_held", "terms held"),
    (searcher.Searcher, "_fill_keyword", "fusion keyword evidence"),
    (searcher.Searcher, "_fill_cosines", "cosines of keyword-only chunks"),
    (searcher.Searcher, "_result", "result assembly"),
    (searcher, "make_snippet", "snippets"),
    (storage.Index, "is_empty", "emptiness probe"),
]


def wrap(owner: Any, name: str, stage: str, spent: dict[str, list[float]]) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        clock, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            lane = "@lane" if threading.current_thread().name.startswith("keyword-lane") else ""
            entry = spent.setdefault(stage + lane, [0.0, 0.0, 0.0])
            entry[0] += time.perf_counter() - clock
            entry[1] += time.thread_time() - cpu
            entry[2] += 1

    setattr(owner, name, timed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--runs", nargs="+", default=["hybrid:10", "hybrid:50", "semantic:10"])
    parser.add_argument("--index-dir", type=Path, default=common.SCRATCH_DIR)
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/search_stages.json)")
    args = parser.parse_args()
    path = args.index_dir / f"latency-{args.size}.sqlite3"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: bench/search_latency.py --sizes {args.size} builds it")
    _, queries = load_scifact()
    queries = queries[: args.queries]
    spent: dict[str, list[float]] = {}
    for owner, name, stage in STAGES:
        wrap(owner, name, stage, spent)
    # The synthetic index's space: passages without file-name words.
    service = LocalSearch(Settings(file_names=False), db_path=path, keep_vectors=True, for_queries=True)
    service.search("warm up the model and the codes", 10, mode="hybrid")
    results: dict[str, object] = {}
    for run in args.runs:
        mode, limit = run.split(":")
        spent.clear()
        loads = []
        for query in queries:
            service.searcher._cache.clear()  # every search embeds its query
            service.search(query, int(limit), mode=mode)
            loads.append(common.load_average() or [0.0])
        results[run] = {
            stage: {
                "clock_ms": round(clock / len(queries) * 1000, 2),
                "cpu_ms": round(cpu / len(queries) * 1000, 2),
                "calls_per_search": round(calls / len(queries), 2),
            }
            for stage, (clock, cpu, calls) in sorted(spent.items(), key=lambda item: -item[1][1])
        }
        print(f"\n{run} ({len(queries)} searches, load {loads[-1][0]})")
        common.print_table(
            ["stage", "clock ms", "cpu ms", "calls"],
            [
                [stage, f"{v['clock_ms']:.2f}", f"{v['cpu_ms']:.2f}", f"{v['calls_per_search']:.1f}"]
                for stage, v in results[run].items()  # type: ignore[attr-defined]
            ],
        )
    service.close()
    report = {
        "benchmark": "search_stages",
        "package": common.shown(Path(searcher.__file__).parents[2]),
        "chunks": args.size,
        "queries": len(queries),
        "runs": results,
        "machine": common.machine(),
    }
    common.write_result(args.output or "search_stages", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
