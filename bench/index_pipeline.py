"""The indexing pipeline against the raw engine, on the SciFact corpus as 5,183 files.

1. `localsearch index` indexes the corpus in a child process: wall time, tokens/s, peak
   RSS of the whole process tree (the CLI and its embedding child), sampled every 50 ms.
2. The same command again over the unchanged corpus: the re-scan time.
3. In this process, the engine embeds exactly the chunk texts the pipeline stored (read
   back from the index), in the same run, as a bare in-process LlamaEmbedder with the
   app's context size: the raw engine speed the pipeline is held to. With --app-engine,
   also as the app builds its document engine (`default_embedder_factory`, which may run
   the model in a child process); the pipeline is then held to the faster of the two.

--model NAME indexes with another model (nomic-embed-text-v1.5) and --threads N sets the
engine's cores (data parallel: N single-thread contexts, as many as its memory budget
holds), written to the run's settings: the peak RSS of CLI plus engine for that model and
that many contexts.

With --compare-workers N, first indexes the first N documents with extract_workers = 0
and 1 (the setting) and reports both, to check that parallel extraction pays on this machine.

    python bench/index_pipeline.py                       # writes bench/results/index_pipeline.json
    python bench/index_pipeline.py --limit-docs 500      # quick check (bench/scratch/)

Shared helpers (corpus loading, the CLI runner, machine facts) come from common.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import common

RESULTS_PATH = common.RESULTS_DIR / "index_pipeline.json"


class TreePeak:
    """Peak RSS of a process and all its descendants, summed, sampled."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        import psutil

        self.peak = 0
        self._root = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self._root, *self._root.children(recursive=True)]
                total = 0
                for proc in procs:
                    try:
                        total += int(proc.memory_info().rss)
                    except psutil.Error:
                        continue
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            self._stop.wait(self._interval)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / (1024 * 1024)


def index_once(folder: Path, home: Path) -> dict[str, Any]:
    started = time.perf_counter()
    child = subprocess.Popen(
        common.cli("index", str(folder), "--json"),
        env=common.child_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    sampler = TreePeak(child.pid)
    stdout, _ = child.communicate()
    wall = time.perf_counter() - started
    peak = sampler.stop()
    if child.returncode != 0:
        raise SystemExit(f"localsearch index exited with {child.returncode}")
    summary: dict[str, Any] = json.loads(stdout)
    return {"wall_seconds": round(wall, 3), "peak_rss_mb": round(peak, 1), "summary": summary}


def write_settings(home: Path, **values: object) -> None:
    import tomli_w

    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "settings.toml").write_text(tomli_w.dumps(values), encoding="utf-8")


def chunk_texts(home: Path) -> tuple[list[str], int]:
    os.environ["LOCALSEARCH_HOME"] = str(home)
    from localsearch.core.storage import Index

    index = Index.open(home / "data" / "index.sqlite3")
    try:
        rows = index.conn.execute("SELECT text, n_tokens FROM chunks ORDER BY file_id, ordinal").fetchall()
    finally:
        index.close()
    return [str(r[0]) for r in rows], sum(int(r[1]) for r in rows)


def engine_rate(texts: Sequence[str], tokens: int, kind: str) -> dict[str, Any]:
    from localsearch.core.service import default_embedder_factory, resolve_model_path
    from localsearch.settings import load as load_settings

    settings = load_settings()  # the run's own (--model, --threads)
    if kind == "app":
        embedder: Any = default_embedder_factory(settings, False)
    else:
        from localsearch.core.embedding import LlamaEmbedder

        embedder = LlamaEmbedder(resolve_model_path(settings), max_tokens=settings.chunk_tokens)
    try:
        embedder.embed_texts(list(texts[:8]))  # warm-up, outside the timing
        started = time.perf_counter()
        embedder.embed_texts(list(texts))
        seconds = time.perf_counter() - started
    finally:
        embedder.close()
    return {"seconds": round(seconds, 3), "tokens_per_second": round(tokens / seconds, 1)}


def compare_workers(docs: Sequence[common.Document], work: Path, rounds: int = 2) -> dict[str, Any]:
    """Index the same files with extract_workers 0 and 1, alternating (0, 1, 0, 1, ...) so
    that a change in the machine's load hits both alike; the median of each is reported."""
    folder = work / "subset"
    common.write_documents(docs, folder)
    walls: dict[int, list[float]] = {0: [], 1: []}
    tokens = 0
    for round_number in range(rounds):
        for workers in (0, 1):
            home = work / f"home-workers-{workers}-{round_number}"
            write_settings(home, extract_workers=workers)
            run = index_once(folder, home)
            tokens = int(run["summary"]["tokens_embedded"])
            walls[workers].append(run["wall_seconds"])
    out: dict[str, Any] = {"documents": len(docs), "rounds": rounds, "tokens": tokens}
    for workers, values in walls.items():
        median = statistics.median(values)
        out[f"extract_workers_{workers}"] = {
            "wall_seconds": round(median, 3),
            "runs": values,
            "tokens_per_second": round(tokens / median, 1),
        }
    return out


def compare_only(documents: Sequence[common.Document], output: Path | None) -> int:
    model_path = common.resolve_model()
    run_start = common.start()
    work = Path(tempfile.mkdtemp(prefix="localsearch-workers-"))
    try:
        result = compare_workers(documents, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["machine"] = common.machine(model_path, run_start)
    common.write_result(output or "extract_workers", {"benchmark": "extract_workers", **result})
    common.print_rows(
        [
            (
                key,
                f"{result[key]['wall_seconds']:.1f} s median, "
                f"{result[key]['tokens_per_second']:,.0f} tokens/s",
            )
            for key in ("extract_workers_0", "extract_workers_1")
        ]
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit-docs", type=int, metavar="N", help="only the first N documents")
    parser.add_argument("--compare-workers", type=int, metavar="N", default=0, help="see above")
    parser.add_argument(
        "--compare-only",
        action="store_true",
        help="only the extract_workers comparison (--compare-workers N)",
    )
    parser.add_argument("--app-engine", action="store_true", help="also time the app's document engine")
    parser.add_argument("--model", help="index with this model (a name from `localsearch models list`)")
    parser.add_argument("--threads", type=int, help="the engine's cores (the threads setting)")
    parser.add_argument("--output", type=Path, help="JSON results file")
    args = parser.parse_args(argv)
    output = args.output or (
        common.SCRATCH_DIR / f"index_pipeline-{args.limit_docs}docs.json" if args.limit_docs else RESULTS_PATH
    )
    dataset = common.read_scifact(args.limit_docs)
    documents = dataset.documents
    if args.compare_only:
        if not args.compare_workers:
            parser.error("--compare-only needs --compare-workers N")
        return compare_only(documents[: args.compare_workers], args.output)
    model_path = common.resolve_model()
    chosen = {k: v for k, v in (("model", args.model), ("threads", args.threads)) if v is not None}
    run_start = common.start()
    work = Path(tempfile.mkdtemp(prefix="localsearch-pipeline-"))
    try:
        workers = compare_workers(documents[: args.compare_workers], work) if args.compare_workers else None
        folder, home = work / "docs", work / "home"
        if chosen:
            write_settings(home, **chosen)
        common.write_documents(documents, folder)
        print(f"indexing {len(documents)} files", file=sys.stderr)
        first = index_once(folder, home)
        print("re-scanning the unchanged corpus", file=sys.stderr)
        rescan = index_once(folder, home)
        texts, tokens = chunk_texts(home)
        print(f"embedding the same {len(texts)} chunk texts with the engine", file=sys.stderr)
        bare_engine = engine_rate(texts, tokens, "bare")
        app_engine = engine_rate(texts, tokens, "app") if args.app_engine else None
    finally:
        shutil.rmtree(work, ignore_errors=True)

    summary = first["summary"]
    pipeline_rate = int(summary["tokens_embedded"]) / first["wall_seconds"]
    best_engine = max(e["tokens_per_second"] for e in (app_engine, bare_engine) if e is not None)
    results: dict[str, Any] = {
        "benchmark": "index_pipeline",
        "documents": len(documents),
        "settings": chosen or "defaults (all-minilm-l6-v2, every core)",
        "pipeline": {
            "wall_seconds": first["wall_seconds"],
            "tokens_embedded": int(summary["tokens_embedded"]),
            "chunks": int(summary["chunks_added"]),
            "tokens_per_second": round(pipeline_rate, 1),
            "peak_rss_mb_process_tree": first["peak_rss_mb"],
            "files_indexed": summary["files_indexed"],
            "files_failed": summary["files_failed"],
        },
        "rescan": {
            "wall_seconds": rescan["wall_seconds"],
            "cli_elapsed_seconds": round(float(rescan["summary"]["elapsed"]), 3),
            "files_unchanged": rescan["summary"]["files_unchanged"],
            "files_indexed": rescan["summary"]["files_indexed"],
        },
        "engine_same_chunks": {"texts": len(texts), "tokens": tokens, "app": app_engine, "bare": bare_engine},
        "pipeline_vs_engine": round(pipeline_rate / best_engine, 3),
        "extract_workers": workers,
        "machine": common.machine(model_path, run_start),
    }
    common.write_result(output, results)
    p, r = results["pipeline"], results["rescan"]
    rows = [
        ("documents", str(len(documents))),
        (
            "index wall",
            f"{p['wall_seconds']:.1f} s, {p['tokens_per_second']:,.0f} tokens/s ({p['chunks']} chunks)",
        ),
        ("engine, bare", f"{bare_engine['tokens_per_second']:,.0f} tokens/s on the same chunks"),
        ("pipeline / engine", f"{results['pipeline_vs_engine']:.3f}x (target >= 0.85)"),
        ("peak RSS", f"{p['peak_rss_mb_process_tree']:.0f} MB, CLI + engine child (target <= 400)"),
        (
            "re-scan",
            f"{r['wall_seconds']:.2f} s wall, {r['cli_elapsed_seconds']:.2f} s in the indexer (target <= 2)",
        ),
    ]
    if app_engine is not None:
        rows.insert(
            3, ("engine, app's", f"{app_engine['tokens_per_second']:,.0f} tokens/s on the same chunks")
        )
    if workers:
        for key in ("extract_workers_0", "extract_workers_1"):
            rows.append(
                (key, f"{workers[key]['wall_seconds']:.1f} s, {workers[key]['tokens_per_second']:,.0f} tok/s")
            )
    common.print_rows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
