"""Recall of the keyword lane's pruning at 100,000 and 1,000,000 chunks.

The keyword lane lets only a query's rarer terms, up to Searcher.KEYWORD_POSTINGS chunks
between them, decide which chunks match (every matching chunk costs a BM25 rank). This
measures what that pruning loses: the top 10 files of the pruned lane against the top 10
of the same lane with no pruning (every term may match), for SciFact train claims, with
the time each takes.

The index is synthetic, shaped as bench/search_latency.py shapes it: files of 10 chunks,
each chunk a 60-word window of one of 2,000 SciFact abstracts, so words and their
frequencies are real. Vectors are random (the keyword lane never reads them), so no model
is needed. Indexes are kept under bench/scratch/ and reused.

    python bench/keyword_pruning.py [--sizes 100000 1000000] [--queries 300] [--output FILE]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import common
import numpy as np
from common import percentile_ms

sys.path.insert(0, str(common.PROJECT_DIR))

from synthetic_index import CHUNKS_PER_FILE, arguments, kept, load_scifact, write_index

from localsearch.core.query import parse_query
from localsearch.core.searcher import Searcher
from localsearch.core.storage import NO_FILTERS, Index

WORK = common.SCRATCH_DIR
DIMENSIONS = 8  # the keyword lane never reads vectors: keep them small


def build_index(path: Path, size: int, docs: list[str]) -> None:
    def vectors_for(rng: np.random.Generator, doc: int) -> np.ndarray:
        vectors = rng.standard_normal((CHUNKS_PER_FILE, DIMENSIONS)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    write_index(path, size, docs, "random", DIMENSIONS, vectors_for)


class _Unpruned(Searcher):
    KEYWORD_POSTINGS = 1 << 62  # every term decides which chunks match


def top_files(searcher: Searcher, query: str, k: int = 10) -> tuple[list[str], float]:
    started = time.perf_counter()
    found = searcher._keyword(parse_query(query), k * 3, NO_FILTERS)
    seconds = time.perf_counter() - started
    files: list[str] = []
    for hit in found.hits:
        if hit.path not in files:
            files.append(hit.path)
    return files[:k], seconds


def measure(size: int, queries: list[str], docs: list[str]) -> dict[str, object]:
    path = kept(WORK / f"keyword-{size}.sqlite3", lambda p: build_index(p, size, docs))
    index = Index.open(path)
    space = index.find_space("random")
    assert space is not None
    pruned = Searcher(index, None, space)  # type: ignore[arg-type]  # no embedding needed
    exact = _Unpruned(index, None, space)  # type: ignore[arg-type]
    overlap = total = 0
    first_hits = 0
    pruned_ms: list[float] = []
    exact_ms: list[float] = []
    pruned_queries = 0
    for query in queries:
        parsed = parse_query(query)
        counts = index.term_counts(parsed.terms)
        if sum(counts.values()) > Searcher.KEYWORD_POSTINGS:
            pruned_queries += 1
        # Interleaved so both see the same cache state and the same machine load.
        got, seconds = top_files(pruned, query)
        pruned_ms.append(seconds * 1000)
        want, seconds = top_files(exact, query)
        exact_ms.append(seconds * 1000)
        overlap += len(set(got) & set(want))
        total += len(want)
        first_hits += bool(got) and bool(want) and got[0] == want[0]
    chunks = index.counts()["chunks"]
    index.close()
    pct = percentile_ms
    return {
        "chunks": chunks,
        "queries": len(queries),
        "queries_pruned": pruned_queries,
        "keyword_postings": Searcher.KEYWORD_POSTINGS,
        "recall@10_files_vs_unpruned": round(overlap / total, 4) if total else None,
        "same_first_file": round(first_hits / len(queries), 4),
        "pruned_ms": {"p50": pct(pruned_ms, 50), "p95": pct(pruned_ms, 95)},
        "unpruned_ms": {"p50": pct(exact_ms, 50), "p95": pct(exact_ms, 95)},
    }


def main() -> int:
    args = arguments(__doc__.splitlines()[0], 300, "keyword_pruning")
    docs, all_queries = load_scifact()
    queries = all_queries[: args.queries]
    results = {str(size): measure(size, queries, docs) for size in args.sizes}
    report = {
        "benchmark": "keyword_pruning",
        "results": results,
        "machine": common.machine(),
    }
    common.write_result(args.output or "keyword_pruning", report)
    rows = []
    for size, r in results.items():
        p, u = r["pruned_ms"], r["unpruned_ms"]
        assert isinstance(p, dict) and isinstance(u, dict)
        rows.append(
            (
                f"{int(size):,}",
                r["queries_pruned"],
                r["recall@10_files_vs_unpruned"],
                r["same_first_file"],
                f"{p['p50']:.1f} / {p['p95']:.1f}",
                f"{u['p50']:.1f} / {u['p95']:.1f}",
            )
        )
    header = ("chunks", "pruned q", "recall@10", "same #1", "pruned p50/p95 ms", "unpruned p50/p95 ms")
    common.print_table(header, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
