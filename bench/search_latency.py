"""Search latency at scale: synthetic indexes of 100,000 and 1,000,000 chunks.

The chunks are generated, but shaped like a real index: their 384-dimension vectors
scatter around real all-MiniLM-L6-v2 embeddings of SciFact documents (cosine about 0.8
to their document), and their text is a window of that document's words, so both the
meaning lane and the keyword lane have real work. The queries are SciFact train claims,
embedded by the real model inside each timed search.

Each search is timed whole, in one process, as the window's search lane runs it
(`Searcher` with its in-memory binary codes): query embedding, both retrieval lanes,
two-stage rescoring, fusion and snippets. Reported: p50 and p95 per mode, recall@10 of
the two-stage semantic results against an exact scan of every full vector (files,
as the results list shows them), and the index's bytes per chunk on disk.

    python bench/search_latency.py [--sizes 100000 1000000] [--queries 200] [--peer] [--output F]

--peer also times hybrid with the fusion's keyword evidence read the way it was before
(a scratch full-text table of the candidate passages, Index._terms_held_by_table), query
by query interleaved with today's, and counts the queries whose results differ.

Indexes are kept under bench/scratch/ (git-ignored) and reused by later runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import common  # noqa: E402
from synthetic_index import CHUNKS_PER_FILE, kept, load_scifact, write_index  # noqa: E402

from localsearch.core.embedding import LlamaEmbedder  # noqa: E402
from localsearch.core.searcher import Searcher  # noqa: E402
from localsearch.core.service import resolve_model_path  # noqa: E402
from localsearch.core.storage import Filters, Index  # noqa: E402
from localsearch.settings import Settings  # noqa: E402

WORK = common.SCRATCH_DIR
MODEL_NAME = "all-minilm-l6-v2"
def build_index(path: Path, size: int, embedder: LlamaEmbedder, docs: list[str]) -> None:
    """A synthetic index of `size` chunks whose vectors scatter around real embeddings."""
    print(f"embedding {len(docs)} SciFact documents as the index's centres…", flush=True)
    bases = embedder.embed_texts(docs)

    def vectors_for(rng: np.random.Generator, doc: int) -> np.ndarray:
        # Around its document, pulled a little towards another one, plus noise (cosine
        # about 0.8 to its document): no two chunks alike, as in real text.
        other = bases[rng.integers(len(docs), size=CHUNKS_PER_FILE)]
        pull = rng.uniform(0.0, 0.5, size=(CHUNKS_PER_FILE, 1)).astype(np.float32)
        noise = rng.standard_normal((CHUNKS_PER_FILE, embedder.dimensions)).astype(np.float32)
        vectors = bases[doc] + pull * other + 0.03 * noise
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    write_index(path, size, docs, MODEL_NAME, embedder.dimensions, vectors_for)


def exact_files(
    index: Index, ids: np.ndarray, matrix: np.ndarray, query: np.ndarray, k: int = 10
) -> list[str]:
    """The k files with the best chunk cosines, by scanning every full vector. A file has
    CHUNKS_PER_FILE chunks, so the best k files are among the best k x that many chunks."""
    best = [int(ids[row]) for row in np.argsort(-(matrix @ query))[: k * CHUNKS_PER_FILE]]
    hits = index.chunk_hits(best)
    files: list[str] = []
    for chunk_id in best:
        if hits[chunk_id].path not in files:
            files.append(hits[chunk_id].path)
            if len(files) == k:
                break
    return files


def measure(
    size: int, queries: list[str], embedder: LlamaEmbedder, docs: list[str], peer: bool = False
) -> dict[str, object]:
    path = kept(WORK / f"latency-{size}.sqlite3", lambda p: build_index(p, size, embedder, docs))
    index = Index.open(path)
    space = index.find_space(MODEL_NAME)
    assert space is not None
    searcher = Searcher(index, embedder, space, keep_vectors=True, cache_size=0)
    started = time.perf_counter()
    searcher.search("warm up the code cache", 10, mode="semantic")
    load_seconds = time.perf_counter() - started

    # Exact reference: every full vector in memory, one result per file.
    ids, matrix = index.all_vectors(space)

    modes = ["hybrid", "semantic", "keyword"] + (["hybrid_table_peer"] if peer else [])
    latencies: dict[str, list[float]] = {mode: [] for mode in modes}
    semantic_files: list[set[str]] = []
    differ = 0
    for number, query in enumerate(queries):
        answers = {}
        # The peer alternates first and second, so neither always finds the caches warm.
        order = modes if number % 2 == 0 else [modes[-1], *modes[:-1]]
        for mode in order:
            searcher._cache.clear()  # every search embeds its query, as a new query would
            table = mode == "hybrid_table_peer"
            if table:
                index.terms_held = index._terms_held_by_table  # type: ignore[method-assign]
            started = time.perf_counter()
            hits = searcher.search(query, 10, mode="hybrid" if table else mode)
            latencies[mode].append((time.perf_counter() - started) * 1000)
            if table:
                del index.terms_held
            answers[mode] = [(h.path, h.chunk, h.score) for h in hits]
            if mode == "semantic":
                semantic_files.append({h.path for h in hits})
        if peer and answers["hybrid"] != answers["hybrid_table_peer"]:
            differ += 1
        if number % 50 == 49:
            print(f"  {number + 1} queries…", flush=True)

    # Recall against the exact scan, after the timing: scanning every full vector between
    # searches would push the codes and the database pages out of the CPU's caches.
    recall_hits = recall_total = 0
    for query, got in zip(queries, semantic_files, strict=True):
        expected = set(exact_files(index, ids, matrix, searcher.embed_query(query)))
        recall_hits += len(expected & got)
        recall_total += len(expected)
    del matrix

    # The one-shot command line has no code cache: its first stage scans the codes in SQL.
    one_shot = Searcher(index, embedder, space, keep_vectors=False, cache_size=0)
    one_shot_ms = []
    for query in queries[:50]:
        started = time.perf_counter()
        one_shot.search(query, 10, mode="semantic", filters=Filters())
        one_shot_ms.append((time.perf_counter() - started) * 1000)

    peer_ms = latencies.get("hybrid_table_peer", [])
    ratios = [a / b for a, b in zip(latencies["hybrid"], peer_ms, strict=False)]
    sizes = index.storage_bytes()
    chunks = index.counts()["chunks"]
    disk = path.stat().st_size
    index.close()

    def pct(values: list[float], q: float) -> float:
        return round(float(np.percentile(values, q)), 2)

    return {
        "chunks": chunks,
        "queries": len(queries),
        "latency_ms": {
            mode: {"p50": pct(v, 50), "p95": pct(v, 95), "mean": round(statistics.fmean(v), 2)}
            for mode, v in latencies.items()
        },
        **(
            {
                "queries_whose_hybrid_results_differ_from_peer": differ,
                # Per query, hybrid's time over the peer's in the same round: the spread of
                # a comparison that a loaded machine's drift does not bias.
                "hybrid_over_peer_per_query": {
                    q: round(float(np.percentile(ratios, q)), 3) for q in (5, 25, 50, 75, 95)
                },
            }
            if peer
            else {}
        ),
        "one_shot_semantic_ms": {"p50": pct(one_shot_ms, 50), "p95": pct(one_shot_ms, 95)},
        "code_cache_load_seconds": round(load_seconds, 2),
        "recall@10_two_stage_vs_exact": round(recall_hits / recall_total, 4),
        "bytes_per_chunk_on_disk": round(disk / chunks),
        "vector_bytes_per_chunk": space.bytes_per_vector,
        "bytes_by_table": sizes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--peer", action="store_true", help="time the table-based keyword evidence too")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/search_latency.json)")
    parser.add_argument("--index-dir", type=Path, help="folder of the synthetic indexes (bench/scratch)")
    args = parser.parse_args()
    global WORK
    WORK = args.index_dir or WORK

    docs, all_queries = load_scifact()
    queries = all_queries[: args.queries]
    # The window's query lane: the file the app resolves the default model to (BF16 where
    # the CPU runs it natively, else Q8_0), one thread, a context the size of a chunk.
    model_file = resolve_model_path(Settings())
    embedder = LlamaEmbedder(model_file, name=MODEL_NAME, threads=1, max_tokens=256)
    results = {str(size): measure(size, queries, embedder, docs, args.peer) for size in args.sizes}
    embedder.close()

    targets = {"100000": 30.0, "1000000": 100.0}
    report = {
        "benchmark": "search_latency",
        "model": MODEL_NAME,
        "model_file": model_file.name,
        "dimensions": 384,
        "targets_p95_ms": targets,
        "results": results,
        "machine": common.machine(),
    }
    out = common.write_result(args.output or "search_latency", report)

    print(f"\n{'chunks':>10} {'mode':<9} {'p50 ms':>8} {'p95 ms':>8} {'target':>8}")
    for size, result in results.items():
        latency = result["latency_ms"]
        assert isinstance(latency, dict)
        for mode, figures in latency.items():
            target = targets.get(size)
            print(
                f"{int(size):>10,} {mode:<9} {figures['p50']:>8.1f} {figures['p95']:>8.1f} {target or '':>8}"
            )
    print(f"\n{'chunks':>10} {'recall@10':>10} {'bytes/chunk':>12} {'one-shot p95':>13}")
    for size, result in results.items():
        one_shot = result["one_shot_semantic_ms"]
        assert isinstance(one_shot, dict)
        print(
            f"{int(size):>10,} {result['recall@10_two_stage_vs_exact']:>10.4f} "
            f"{result['bytes_per_chunk_on_disk']:>12,} {one_shot['p95']:>12.1f}"
        )
    print(f"written to {common.shown(out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
