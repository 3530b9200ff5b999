"""The shared index on PostgreSQL + pgvector at scale, on this machine, against a local
server (pgserver's PostgreSQL 16 and pgvector 0.6, small settings: the machine is shared).

Parts (--parts, default all):
  load         the synthetic 100,000-passage index of bench/search_latency.py (its SQLite
               file, built by that script if missing) copied into PostgreSQL through the
               storage protocol (core/pg/transfer.py: one transaction a file, vectors
               copied); load time without the HNSW index, then the HNSW build time on the
               first 25k, 50k and all rows (the curve docs/scale-out.md extrapolates), and
               the bytes on disk by table and index.
  search       p50/p95 of hybrid, semantic and keyword searches (SciFact train claims,
               embedded by the real model inside each timed search), PostgreSQL and the
               SQLite index interleaved query by query (the SQLite window lane as peer);
               recall@10 of the semantic files against an exact scan of every vector.
  concurrency  4 writers (each its own machine and folder, new files of 10 passages) and
               8 searchers (hybrid, query vectors embedded beforehand) at once for
               --seconds: files written a second, searches a second, p50/p95, errors.
  quality      SciFact train nDCG@10 (and MRR@10) on both backends: the SciFact index
               that bench/search_quality.py builds, copied into PostgreSQL unchanged (no
               re-embedding), searched by the same service code on each.

    python bench/pg_scale.py [--parts load,search,concurrency,quality] [--queries 200]
                             [--seconds 60] [--output FILE]

Results: bench/results/pg_scale.json (each part rewritten as it finishes). Timings on
a 2-core machine shared with other work: orders of magnitude, with the peer's spread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import common  # noqa: E402
from search_latency import MODEL_NAME, build_index, exact_files  # noqa: E402
from synthetic_index import CHUNKS_PER_FILE, kept, load_scifact  # noqa: E402

from localsearch.core.embedding import LlamaEmbedder  # noqa: E402
from localsearch.core.pg.index import PostgresIndex  # noqa: E402
from localsearch.core.pg.local_server import LocalServer  # noqa: E402
from localsearch.core.pg.transfer import transfer  # noqa: E402
from localsearch.core.searcher import Searcher  # noqa: E402
from localsearch.core.service import resolve_model_path  # noqa: E402
from localsearch.core.storage import ChunkRecord, Filters, Index  # noqa: E402
from localsearch.settings import Settings  # noqa: E402

SIZE = 100_000
CURVE = (25_000, 50_000)
MODES = ("hybrid", "semantic", "keyword")


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


def timed_ms(values: list[float]) -> dict[str, float]:
    return {"p50": pct(values, 50), "p95": pct(values, 95), "mean": round(statistics.fmean(values), 2)}


def sql(store: PostgresIndex, statement: str) -> Any:
    cursor = store.conn.execute(statement)  # type: ignore[arg-type]  # the bench's own SQL
    return cursor.fetchall() if cursor.description else []


def part_load(server: LocalServer, sqlite_path: Path) -> dict[str, Any]:
    server.psql("CREATE DATABASE scale")
    source = Index.open(sqlite_path)
    target = PostgresIndex.open(server.url(database="scale"), host="bench")
    space = source.find_space(MODEL_NAME)
    assert space is not None
    pg_space = target.ensure_space(MODEL_NAME, space.dimensions)
    table = pg_space.table_name
    # Bulk load first, graph after: what a migration of a big index does.
    sql(target, f"DROP INDEX {table}_hnsw")
    started = time.perf_counter()
    done = transfer(
        source, target, MODEL_NAME, report=lambda r: print(f"  {r.chunks:,} passages…", flush=True)
    )
    load_seconds = time.perf_counter() - started
    sql(target, "VACUUM ANALYZE")
    curve = []
    for rows in (*CURVE, done.chunks):
        probe = table if rows == done.chunks else "hnsw_probe"
        if probe != table:
            sql(
                target,
                f"CREATE TABLE hnsw_probe AS SELECT embedding FROM {table} ORDER BY chunk_id LIMIT {rows}",
            )
        started = time.perf_counter()
        sql(target, f"CREATE INDEX {probe}_hnsw ON {probe} USING hnsw (embedding vector_ip_ops)")
        seconds = time.perf_counter() - started
        size = sql(target, f"SELECT pg_relation_size('{probe}_hnsw')")[0][0]
        curve.append({"rows": rows, "build_seconds": round(seconds, 1), "index_bytes": int(size)})
        print(f"  HNSW over {rows:,} vectors: {seconds:.1f} s, {size / 2**20:.0f} MiB", flush=True)
        if probe != table:
            sql(target, "DROP TABLE hnsw_probe")
    sizes = {
        name: int(size)
        for name, size in sql(
            target,
            "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 't') "
            "AND pg_relation_size(c.oid) > 0",
        )
    }
    database = int(sql(target, "SELECT pg_database_size(current_database())")[0][0])
    settings = dict(
        sql(
            target,
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('shared_buffers', 'maintenance_work_mem', 'work_mem', 'server_version')",
        )
    )
    source.close()
    target.close()
    return {
        "passages": done.chunks,
        "files": done.files,
        "load_seconds_without_hnsw": round(load_seconds, 1),
        "load_passages_per_second": round(done.chunks / load_seconds),
        "hnsw": {"m": 16, "ef_construction": 64, "opclass": "vector_ip_ops", "curve": curve},
        "database_bytes": database,
        "bytes_per_passage": round(database / done.chunks),
        "relation_bytes": dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:12]),
        "sqlite_file_bytes": sqlite_path.stat().st_size,
        "server_settings": settings,
    }


def part_search(
    server: LocalServer, sqlite_path: Path, embedder: LlamaEmbedder, queries: list[str]
) -> dict[str, Any]:
    local = Index.open(sqlite_path)
    shared = PostgresIndex.open(server.url(database="scale"), host="bench")
    local_space, shared_space = local.find_space(MODEL_NAME), shared.find_space(MODEL_NAME)
    assert local_space is not None and shared_space is not None
    peers = {
        "postgres": Searcher(shared, embedder, shared_space, cache_size=0),
        "sqlite": Searcher(local, embedder, local_space, keep_vectors=True, cache_size=0),
    }
    for searcher in peers.values():
        for mode in MODES:
            searcher.search("warm up the lanes", 10, mode=mode)
    latencies: dict[str, dict[str, list[float]]] = {b: {m: [] for m in MODES} for b in peers}
    semantic_files: dict[str, list[set[str]]] = {b: [] for b in peers}
    for number, query in enumerate(queries):
        order = list(peers) if number % 2 == 0 else list(reversed(peers))
        for mode in MODES:
            for backend in order:
                searcher = peers[backend]
                searcher._cache.clear()  # every search embeds its query, as a new one would
                started = time.perf_counter()
                hits = searcher.search(query, 10, mode=mode)
                latencies[backend][mode].append((time.perf_counter() - started) * 1000)
                if mode == "semantic":
                    semantic_files[backend].append({h.path for h in hits})
        if number % 50 == 49:
            print(f"  {number + 1} queries…", flush=True)
    ids, matrix = local.all_vectors(local_space)
    recall = {b: 0 for b in peers}
    total = 0
    for number, query in enumerate(queries):
        expected = set(exact_files(local, ids, matrix, peers["sqlite"].embed_query(query)))
        total += len(expected)
        for backend in peers:
            recall[backend] += len(expected & semantic_files[backend][number])
    for searcher in peers.values():
        searcher.close()
    local.close()
    shared.close()
    return {
        "queries": len(queries),
        "latency_ms": {b: {m: timed_ms(v) for m, v in modes.items()} for b, modes in latencies.items()},
        "recall@10_semantic_files_vs_exact": {b: round(recall[b] / total, 4) for b in peers},
        "candidates_per_file": shared.candidates_per_file,  # ef_search = that x 30 wanted files
    }


def part_ann(
    server: LocalServer, sqlite_path: Path, embedder: LlamaEmbedder, queries: list[str]
) -> dict[str, Any]:
    """The HNSW lane alone (query vectors embedded beforehand): recall@10 of the files
    against an exact scan, and time, by how many candidates the graph hands over."""
    local = Index.open(sqlite_path)
    shared = PostgresIndex.open(server.url(database="scale"), host="bench")
    local_space, shared_space = local.find_space(MODEL_NAME), shared.find_space(MODEL_NAME)
    assert local_space is not None and shared_space is not None
    embedding = Searcher(local, embedder, local_space, cache_size=0)
    vectors = [embedding.embed_query(q) for q in queries]
    ids, matrix = local.all_vectors(local_space)
    expected = [set(exact_files(local, ids, matrix, v)) for v in vectors]
    del matrix
    sweep = []
    for per_file in (2, 4, 8, 16, 33):  # 33 x 30 files = 990: pgvector 0.6's ef_search ceiling
        shared.candidates_per_file = per_file
        found, ms = 0, []
        for vector, wanted in zip(vectors, expected, strict=True):
            started = time.perf_counter()
            hits = shared.nearest_chunks(shared_space, vector, 30, Filters())
            ms.append((time.perf_counter() - started) * 1000)
            files: list[str] = []
            for h in hits:
                if h.path not in files:
                    files.append(h.path)
            found += len(wanted & set(files[:10]))
        row = {"candidates_per_file": per_file, "ef_search": max(40, per_file * 30),
               "recall@10": round(found / sum(len(w) for w in expected), 4), "ms": timed_ms(ms)}  # fmt: skip
        sweep.append(row)
        print(f"  {row}", flush=True)
    local.close()
    shared.close()
    return {"queries": len(queries), "wanted_files": 30, "sweep": sweep}


class _KnownVectors:
    """Query vectors embedded beforehand: the concurrency part measures the database, not
    eight copies of the model fighting for two cores."""

    name = MODEL_NAME
    special_tokens = 2

    def __init__(self, vectors: dict[str, np.ndarray], dimensions: int) -> None:
        self.vectors, self.dimensions = vectors, dimensions
        self._texts: list[str] = []

    def tokenize(self, text: str) -> list[int]:
        self._texts.append(text)
        return [len(self._texts) - 1]

    def embed_tokens(self, batches: list[list[int]], role: str = "document") -> np.ndarray:
        return np.stack([self.vectors[self._texts[b[0]]] for b in batches])


def _write_files(number: int, url: str, seconds: float, out: Any) -> None:
    """A writer machine (own process, own connection): new files of 10 passages, each
    near a stored vector, with stored passage text, one transaction a file."""
    rng = np.random.default_rng(number)
    store = PostgresIndex.open(url, host=f"writer-{number}")
    written, errors = 0, []
    try:
        space = store.find_space(MODEL_NAME)
        assert space is not None
        with store.conn.cursor(binary=True) as cur:
            sample = cur.execute(
                f"SELECT embedding FROM {space.table_name} ORDER BY chunk_id LIMIT 5000"
            ).fetchall()
        matrix = np.stack([r[0] for r in sample])
        texts = [str(r[0]) for r in store.conn.execute("SELECT text FROM chunks ORDER BY id LIMIT 5000")]
        folder = store.add_folder(f"/bench/writer-{number}")
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop:
            rows = rng.integers(len(matrix), size=CHUNKS_PER_FILE)
            noisy = matrix[rows] + 0.03 * rng.standard_normal((CHUNKS_PER_FILE, matrix.shape[1]))
            noisy = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)
            chunks = [
                ChunkRecord(i, texts[int(rng.integers(len(texts)))], None, 0, 1, 80)
                for i in range(CHUNKS_PER_FILE)
            ]
            store.replace_file(
                folder_id=folder, path=f"/bench/writer-{number}/{written:07d}.txt", size=1, mtime=time.time(),
                content_hash=f"{number}-{written}", space=space, chunks=chunks, vectors=noisy,
            )  # fmt: skip
            written += 1
    except Exception as exc:  # counted and reported, never hidden
        errors.append(f"writer {number}: {exc!r}")
    finally:
        store.close()
    out.put({"kind": "writer", "files": written, "errors": errors})


def _search(number: int, url: str, seconds: float, vectors: dict[str, np.ndarray], out: Any) -> None:
    """A searching machine (own process, own connection): hybrid searches one after another."""
    rng = np.random.default_rng(100 + number)
    store = PostgresIndex.open(url, host="reader")
    ms: list[float] = []
    errors = []
    try:
        space = store.find_space(MODEL_NAME)
        assert space is not None
        searcher = Searcher(store, _KnownVectors(vectors, space.dimensions), space, cache_size=0)  # type: ignore[arg-type]
        queries = list(vectors)
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop:
            query = queries[int(rng.integers(len(queries)))]
            started = time.perf_counter()
            searcher.search(query, 10, mode="hybrid")
            ms.append((time.perf_counter() - started) * 1000)
    except Exception as exc:
        errors.append(f"searcher {number}: {exc!r}")
    finally:
        store.close()
    out.put({"kind": "searcher", "ms": ms, "errors": errors})


def part_concurrency(
    server: LocalServer,
    embedder: LlamaEmbedder,
    queries: list[str],
    seconds: float,
    writers: int,
    readers: int,
) -> dict[str, Any]:
    """Writers and searchers as separate processes (as separate machines would be), each
    with its own connection, all at once for `seconds`."""
    import multiprocessing

    url = server.url(database="scale")
    vectors = {q: embedder.embed_texts([q], role="query")[0] for q in queries}
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [context.Process(target=_write_files, args=(i, url, seconds, out)) for i in range(writers)]
    workers += [context.Process(target=_search, args=(i, url, seconds, vectors, out)) for i in range(readers)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    reports = [out.get(timeout=seconds + 600) for _ in workers]
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    files = sum(r["files"] for r in reports if r["kind"] == "writer")
    all_ms = [ms for r in reports if r["kind"] == "searcher" for ms in r["ms"]]
    return {
        "writers": writers,
        "searchers": readers,
        "seconds": seconds,
        "seconds_with_start_up": round(elapsed, 1),
        "files_written": files,
        "passages_written_per_second": round(files * CHUNKS_PER_FILE / seconds, 1),
        "searches": len(all_ms),
        "searches_per_second": round(len(all_ms) / seconds, 1),
        "search_ms": timed_ms(all_ms),
        "errors": [e for r in reports for e in r["errors"]],
        "processes": "each writer and searcher its own process and connection",
    }


def part_quality(server: LocalServer, save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    import search_quality

    corpus = search_quality.scifact_corpus()
    home, docs, _ = search_quality.build(corpus, False)
    os.environ["LOCALSEARCH_HOME"] = str(home)
    from localsearch.core.service import LocalSearch

    server.psql("CREATE DATABASE scifact")
    url = server.url(database="scifact")
    with (
        LocalSearch(Settings(), for_queries=True) as local,
        LocalSearch(Settings(index_url=url), for_queries=True) as shared,
    ):
        started = time.perf_counter()
        copied = transfer(local.index, shared.index, local.space_key)
        copy_seconds = time.perf_counter() - started
        scores: dict[str, Any] = {"copied": copied.as_dict(), "copy_seconds": round(copy_seconds, 1)}
        scores["queries"] = len(corpus.queries)
        scores["in_sample"] = "SciFact train is where the fusion was tuned (bench/fusion_tuning.py)"
        for service in (local, shared):
            service.searcher._cache_size = len(corpus.queries) + 10  # each claim embedded once
        for mode in MODES:  # hybrid (the default) first, on both, saved before the next mode
            for backend, service in (("sqlite", local), ("postgres", shared)):
                rankings = {
                    q.id: [
                        os.path.relpath(h.path, docs) for h in service.searcher.search(q.text, 10, mode=mode)
                    ]
                    for q in corpus.queries
                }
                summary = search_quality.summarize(corpus, rankings)["all"]
                scores.setdefault(backend, {})[mode] = {k: summary[k] for k in ("ndcg@10", "mrr@10")}
                print(f"  {backend} {mode}: {scores[backend][mode]}", flush=True)
            save(scores)
    return scores


def _save_part(output: Path, report: dict[str, Any], part: str, done: dict[str, Any]) -> None:
    common.write_result(output, {**report, part: done}, quiet=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="load,ann,search,concurrency,quality")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--searchers", type=int, default=8)
    parser.add_argument("--output", type=Path, default=common.RESULTS_DIR / "pg_scale.json")
    args = parser.parse_args()
    parts = args.parts.split(",")
    started = common.start()
    docs, all_queries = load_scifact()
    queries = all_queries[: args.queries]
    model_file = resolve_model_path(Settings())
    embedder = LlamaEmbedder(model_file, name=MODEL_NAME, threads=1, max_tokens=256)
    sqlite_path = kept(
        common.SCRATCH_DIR / f"latency-{SIZE}.sqlite3", lambda p: build_index(p, SIZE, embedder, docs)
    )
    report: dict[str, Any] = {"benchmark": "pg_scale", "model": MODEL_NAME, "size": SIZE}
    server = LocalServer(shared_buffers="128MB").start()
    try:
        for part in parts:
            print(f"== {part}", flush=True)
            part_started = time.perf_counter()
            if part == "load":
                report["load"] = part_load(server, sqlite_path)
            elif part == "ann":
                report["ann"] = part_ann(server, sqlite_path, embedder, queries)
            elif part == "search":
                report["search"] = part_search(server, sqlite_path, embedder, queries)
            elif part == "concurrency":
                report["concurrency"] = part_concurrency(
                    server, embedder, queries, args.seconds, args.writers, args.searchers
                )
            elif part == "quality":
                report["quality"] = part_quality(
                    server, lambda done: _save_part(args.output, report, "quality", done)
                )
            print(f"   {part}: {time.perf_counter() - part_started:.0f} s", flush=True)
            report["machine"] = common.machine(model_file, started)
            common.write_result(args.output, report, quiet=True)
    finally:
        server.stop()
        embedder.close()
    show(report)
    common.write_result(args.output, report)
    return 0


def show(report: dict[str, Any]) -> None:
    rows: list[tuple[str, str]] = []
    if "load" in report:
        load = report["load"]
        rows.append(
            ("load (no HNSW)", f"{load['load_seconds_without_hnsw']} s, {load['load_passages_per_second']}/s")
        )
        for point in load["hnsw"]["curve"]:
            rows.append(
                (
                    f"HNSW {point['rows']:,}",
                    f"{point['build_seconds']} s, {point['index_bytes'] / 2**20:.0f} MiB",
                )
            )
        rows.append(
            ("database", f"{load['database_bytes'] / 2**20:.0f} MiB, {load['bytes_per_passage']} B/passage")
        )
    if "search" in report:
        for backend, modes in report["search"]["latency_ms"].items():
            for mode, ms in modes.items():
                rows.append((f"{backend} {mode}", f"p50 {ms['p50']} ms, p95 {ms['p95']} ms"))
        rows.append(("recall@10", str(report["search"]["recall@10_semantic_files_vs_exact"])))
    if "concurrency" in report:
        c = report["concurrency"]
        rows.append((
            f"{c['writers']} writers + {c['searchers']} searchers",
            f"{c['passages_written_per_second']} passages/s, {c['searches_per_second']} searches/s, "
            f"p95 {c['search_ms']['p95']} ms, {len(c['errors'])} errors",
        ))  # fmt: skip
    if "quality" in report:
        for backend in ("sqlite", "postgres"):
            for mode, scores in report["quality"].get(backend, {}).items():
                rows.append((f"SciFact {backend} {mode}", f"nDCG@10 {scores.get('ndcg@10')}"))
    common.print_rows(rows)


if __name__ == "__main__":
    sys.exit(main())
