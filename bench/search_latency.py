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

The service-level path follows: what the command line and the window call,
`LocalSearch.search` (emptiness probe included), in a process holding the window's search
lane, while the window's index monitor reads the status at its cadence on a thread and
connection of its own (bench/search_service_worker.py). Hybrid at the command line's
limit (10) and the window's (50), semantic and keyword at 10. With --peer-rev, the same
worker runs that revision's code in a second process, block by block interleaved with
this checkout's (the order alternating), and the queries whose result lists differ
between the two are counted. Each of --rounds passes over the queries gives a p50 and
p95 per side; reported are their medians with the spread, the load average, and the mean
CPU time a search costs (the process's, both lanes; and the searching thread's), which a
busy machine inflates less than the clock.

    python bench/search_latency.py [--sizes 100000 1000000] [--queries 200] [--peer]
        [--peer-rev REV] [--rounds 3] [--service-queries 100] [--no-searcher] [--output F]

--peer also times hybrid with the fusion's keyword evidence read the way it was before
(a scratch full-text table of the candidate passages, Index._terms_held_by_table), query
by query interleaved with today's, and counts the queries whose results differ.

Indexes are kept under bench/scratch/ (git-ignored) and reused by later runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

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
# The service-level configurations: (mode, limit). 10 is the command line's default, 50
# the window's (SearchRequest.limit).
SERVICE_RUNS = [("hybrid", 10), ("hybrid", 50), ("semantic", 10), ("keyword", 10)]
SERVICE_BLOCK = 10  # queries a side runs before the other takes its turn


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
    terms_held = Index.terms_held
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
            # On the class: the keyword lane's own connection reads held terms too.
            if table:
                Index.terms_held = Index._terms_held_by_table  # type: ignore[method-assign]
            started = time.perf_counter()
            try:
                hits = searcher.search(query, 10, mode="hybrid" if table else mode)
            finally:
                Index.terms_held = terms_held  # type: ignore[method-assign]
            latencies[mode].append((time.perf_counter() - started) * 1000)
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


# -- the service-level path -----------------------------------------------------------
class ServiceSide:
    """A bench/search_service_worker.py process importing `localsearch` from `tree`."""

    def __init__(self, name: str, tree: Path, db: Path, status_seconds: float) -> None:
        self.name = name
        env = dict(os.environ, PYTHONPATH=str(tree))
        worker = Path(__file__).with_name("search_service_worker.py")
        self.process = subprocess.Popen(
            [sys.executable, str(worker), str(db), str(status_seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(tree),
        )
        ready = self._answer()
        print(f"  {name}: localsearch from {ready['package']}", flush=True)

    def _answer(self) -> dict[str, Any]:
        out: IO[str] = self.process.stdout  # type: ignore[assignment]
        line = out.readline()
        if not line:
            raise RuntimeError(f"the {self.name} worker stopped (status {self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        stdin: IO[str] = self.process.stdin  # type: ignore[assignment]
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        return self._answer()

    def stop(self) -> list[float]:
        durations: list[float] = self.ask({"stop": True})["status_ms"]
        self.process.wait(60)
        return durations


def peer_tree(revision: str) -> Path:
    """`revision`'s localsearch package, unpacked once under bench/scratch/ (the model
    files are this checkout's, so both sides embed with the same one)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tree = common.SCRATCH_DIR / f"peer-{commit[:12]}"
    if not (tree / "localsearch").is_dir():
        partial = tree.with_name(tree.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", commit, "localsearch", "pyproject.toml"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive, check=True)
        (partial / "gguf").symlink_to(ROOT / "gguf")
        partial.rename(tree)
    return tree


def _percentiles(values: list[float]) -> dict[str, float]:
    return {f"p{q}": round(float(np.percentile(values, q)), 2) for q in (50, 95)}


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def measure_service(
    path: Path, queries: list[str], rounds: int, peer: Path | None, status_seconds: float
) -> dict[str, object]:
    """p50 and p95 of LocalSearch.search per configuration and side, round by round."""
    sides = [ServiceSide("this checkout", ROOT, path, status_seconds)]
    if peer is not None:
        sides.append(ServiceSide("peer", peer, path, status_seconds))
    names = ["new", "peer"][: len(sides)]
    # ms[config][side][round] -> the round's per-query times; cpu: the mean CPU time per
    # search of the process (both lanes) and of the searching thread, per config and side
    ms: dict[str, dict[str, list[list[float]]]] = {}
    cpu: dict[str, dict[str, dict[str, list[float]]]] = {}
    differ: dict[str, set[int]] = {}
    loads: list[float] = []
    turn = 0
    for round_number in range(rounds):
        for config in SERVICE_RUNS:
            key = f"{config[0]}@{config[1]}"
            for side in names:
                ms.setdefault(key, {}).setdefault(side, []).append([])
            differ.setdefault(key, set())
        for start in range(0, len(queries), SERVICE_BLOCK):
            block = queries[start : start + SERVICE_BLOCK]
            for mode, limit in SERVICE_RUNS:
                key = f"{mode}@{limit}"
                turn += 1
                # The sides take turns going first, so neither always finds the caches warm.
                order = list(range(len(sides))) if turn % 2 else list(reversed(range(len(sides))))
                answers = {}
                for i in order:
                    answer = sides[i].ask({"mode": mode, "limit": limit, "queries": block})
                    ms[key][names[i]][round_number].extend(answer["ms"])
                    spent = cpu.setdefault(key, {}).setdefault(names[i], {"process": [], "thread": []})
                    spent["process"].extend(answer["cpu_ms"])
                    spent["thread"].extend(answer["thread_cpu_ms"])
                    answers[names[i]] = answer["hits"]
                    loads.append(answer["load"])
                if "peer" in answers:
                    for offset, (a, b) in enumerate(zip(answers["new"], answers["peer"], strict=True)):
                        if a != b:
                            differ[key].add(start + offset)
        print(f"  round {round_number + 1} of {rounds} done (load {loads[-1]:.1f})", flush=True)
    status_ms = {name: side.stop() for name, side in zip(names, sides, strict=True)}

    configs: dict[str, object] = {}
    for key, by_side in ms.items():
        entry: dict[str, object] = {}
        for side, per_round in by_side.items():
            figures = [_percentiles(times) for times in per_round]
            entry[side] = {
                "p50_by_round": [f["p50"] for f in figures],
                "p95_by_round": [f["p95"] for f in figures],
                "p50": _spread([f["p50"] for f in figures]),
                "p95": _spread([f["p95"] for f in figures]),
                "pooled": _percentiles([t for times in per_round for t in times]),
                "cpu_ms_mean": {
                    part: round(statistics.fmean(values), 2) for part, values in cpu[key][side].items()
                },
            }
        if "peer" in by_side:
            ratios = [
                float(np.percentile(a, 95) / np.percentile(b, 95))
                for a, b in zip(by_side["new"], by_side["peer"], strict=True)
            ]
            entry["p95_new_over_peer_by_round"] = [round(r, 3) for r in ratios]
            entry["queries_whose_results_differ_from_peer"] = len(differ[key])
        configs[key] = entry
    return {
        "queries": len(queries),
        "rounds": rounds,
        "block": SERVICE_BLOCK,
        "configs": configs,
        "status_refresh": {
            "interval_seconds": status_seconds or "index_monitor.MIN_STATUS_SECONDS",
            **{f"{side}_ms": _percentiles(d) | {"count": len(d)} for side, d in status_ms.items() if d},
        },
        "load_average_1min": _spread(loads),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--peer", action="store_true", help="time the table-based keyword evidence too")
    parser.add_argument("--peer-rev", help="git revision whose service path runs beside this checkout's")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the queries (service path)")
    parser.add_argument("--service-queries", type=int, default=100, help="queries of the service path")
    parser.add_argument(
        "--status-seconds", type=float, default=0.0, help="status refresh period (0: the monitor's)"
    )
    parser.add_argument("--no-searcher", action="store_true", help="time the service-level path only")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/search_latency.json)")
    parser.add_argument("--index-dir", type=Path, help="folder of the synthetic indexes (bench/scratch)")
    args = parser.parse_args()
    global WORK
    WORK = args.index_dir or WORK

    docs, all_queries = load_scifact()
    queries = all_queries[: args.queries]
    peer = peer_tree(args.peer_rev) if args.peer_rev else None
    # The window's query lane: the file the app resolves the default model to (BF16 where
    # the CPU runs it natively, else Q8_0), one thread, a context the size of a chunk.
    model_file = resolve_model_path(Settings())
    embedder = LlamaEmbedder(model_file, name=MODEL_NAME, threads=1, max_tokens=256)
    results: dict[str, dict[str, object]] = {}
    for size in args.sizes:
        path = kept(WORK / f"latency-{size}.sqlite3", lambda p, n=size: build_index(p, n, embedder, docs))
        results[str(size)] = {} if args.no_searcher else measure(size, queries, embedder, docs, args.peer)
        print(f"{size:,} chunks: the service-level path", flush=True)
        results[str(size)]["service"] = measure_service(
            path, queries[: args.service_queries], args.rounds, peer, args.status_seconds
        )
    embedder.close()

    targets = {"100000": 30.0, "1000000": 100.0}
    report = {
        "benchmark": "search_latency",
        "model": MODEL_NAME,
        "model_file": model_file.name,
        "dimensions": 384,
        "targets_p95_ms": targets,
        "peer_revision": args.peer_rev,
        "results": results,
        "machine": common.machine(),
    }
    out = common.write_result(args.output or "search_latency", report)

    if not args.no_searcher:
        rows = []
        for size, result in results.items():
            latency = result["latency_ms"]
            assert isinstance(latency, dict)
            for mode, figures in latency.items():
                rows.append([f"{int(size):,}", mode, f"{figures['p50']:.1f}", f"{figures['p95']:.1f}"])
        print("\nSearcher.search alone")
        common.print_table(["chunks", "mode", "p50 ms", "p95 ms"], rows)
        rows = [
            [
                f"{int(size):,}",
                f"{result['recall@10_two_stage_vs_exact']:.4f}",
                f"{result['bytes_per_chunk_on_disk']:,}",
                f"{result['one_shot_semantic_ms']['p95']:.1f}",  # type: ignore[index]
            ]
            for size, result in results.items()
        ]
        common.print_table(["chunks", "recall@10", "bytes/chunk", "one-shot p95"], rows)

    print("\nLocalSearch.search with the status refresh beside it: medians of rounds [min-max]")
    rows = []
    for size, result in results.items():
        service = result["service"]
        assert isinstance(service, dict)
        for key, entry in service["configs"].items():
            for side in ("new", "peer"):
                if side not in entry:
                    continue
                p50, p95, spent = entry[side]["p50"], entry[side]["p95"], entry[side]["cpu_ms_mean"]
                rows.append(
                    [
                        f"{int(size):,}",
                        key,
                        side,
                        f"{p50['median']:.1f} [{p50['min']:.0f}-{p50['max']:.0f}]",
                        f"{p95['median']:.1f} [{p95['min']:.0f}-{p95['max']:.0f}]",
                        f"{spent['process']:.1f}",
                        f"{spent['thread']:.1f}",
                        targets.get(size, ""),
                        entry.get("queries_whose_results_differ_from_peer", "") if side == "new" else "",
                    ]
                )
        load = service["load_average_1min"]
        rows.append(
            [
                f"{int(size):,}",
                "load (1 min)",
                "",
                "",
                f"{load['median']} [{load['min']}-{load['max']}]",
                *[""] * 4,
            ]
        )
    header = ["chunks", "search", "side", "p50 ms", "p95 ms", "cpu ms", "thread cpu", "target", "differ"]
    common.print_table(header, rows)
    print(f"written to {common.shown(out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
