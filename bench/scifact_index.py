"""Indexing throughput and retrieval quality of localsearch on SciFact (train split).

Each SciFact abstract becomes one `<_id>.txt` file in a scratch folder, which is indexed
through the real command line in a child process (wall time, peak RSS). Quality is
nDCG@10 over the train queries, with hits mapped back to document ids by file stem.
The baseline embeds each whole document as one vector (cut to the model's 256 tokens)
with the same model file and ranks by brute-force cosine in NumPy: it tells whether
chunking helps, and its tokens/s is the raw engine speed the pipeline can be held to.
Like with like: the baseline runs the very engine the command line indexes with
(service.default_embedder_factory: the same child process, contexts, threads and way of
waiting), given all documents in one call, its best case; the queries go through the
query engine the command line searches with.

    python bench/scifact_index.py                  # full run, writes bench/results/scifact_index.json
    python bench/scifact_index.py --limit-docs 300 # quick check on the first 300 documents

The data folder is ../shared/evaldata next to the project, or $LOCALSEARCH_EVALDATA.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common
import numpy as np
from common import Document, K, Query, child_env, cli

RESULTS_PATH = common.RESULTS_DIR / "scifact_index.json"
CLI_CHECK_QUERIES = 5


def run_status(home: Path) -> dict[str, Any]:
    result = subprocess.run(
        cli("status", "--json"), env=child_env(home), capture_output=True, text=True, check=True
    )
    status: dict[str, Any] = json.loads(result.stdout)
    return status


def cli_search(home: Path, query: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        cli("search", "--limit", str(K), "--json", "--", query),
        env=child_env(home),
        capture_output=True,
        text=True,
        check=True,
    )
    hits: list[dict[str, Any]] = json.loads(result.stdout)
    return hits


def pipeline_search(
    home: Path, queries: Sequence[Query]
) -> tuple[dict[str, list[str]], float, dict[str, dict[str, list[str]]], list[str]]:
    """Rankings from the same service object the CLI uses, in this process (one model load):
    the default search, then each search mode the service offers, if it offers modes."""
    os.environ["LOCALSEARCH_HOME"] = str(home)
    from localsearch.core import searcher
    from localsearch.core.service import LocalSearch

    modes: tuple[str, ...] = tuple(getattr(searcher, "MODES", ()))
    # Opened as `localsearch search --batch` opens it (a query engine, vectors in memory)
    # where this version has those options, so the latency is the one many queries get.
    accepted = inspect.signature(LocalSearch).parameters
    options: dict[str, Any] = {name: True for name in ("for_queries", "keep_vectors") if name in accepted}
    rankings: dict[str, list[str]] = {}
    by_mode: dict[str, dict[str, list[str]]] = {}
    with LocalSearch(**options) as service:
        service.search("warm-up", limit=K)  # loads the model outside the timed loop
        started = time.perf_counter()
        for query in queries:
            rankings[query.id] = [hit.path for hit in service.search(query.text, limit=K)]
        seconds = time.perf_counter() - started
        for mode in modes:
            by_mode[mode] = {
                q.id: [hit.path for hit in service.search(q.text, limit=K, mode=mode)] for q in queries
            }
    return rankings, seconds, by_mode, sorted(options)


def check_cli_matches(
    home: Path, queries: Sequence[Query], rankings: dict[str, list[str]]
) -> tuple[list[str], list[float]]:
    """The command line's rankings equal the in-process ones; and what a command-line user
    waits for each: the whole `localsearch search` run, process start and model load in."""
    checked = []
    waits = []
    for query in queries:
        started = time.perf_counter()
        hits = cli_search(home, query.text)
        waits.append(time.perf_counter() - started)
        paths = [str(hit["path"]) for hit in hits]
        if paths != rankings[query.id]:
            raise SystemExit(
                f"CLI and in-process search disagree on query {query.id} ({query.text!r}):\n"
                f"  cli:        {[Path(p).stem for p in paths]}\n"
                f"  in-process: {[Path(p).stem for p in rankings[query.id]]}"
            )
        checked.append(query.id)
    return checked, waits


@dataclass
class Baseline:
    rankings: dict[str, list[str]]
    seconds: float  # tokenizing and embedding the documents
    cpu_seconds: float  # this process's CPU time over the same span, all threads
    tokens: int
    docs_truncated: int
    query_seconds: float


def run_baseline(home: Path, documents: Sequence[Document], queries: Sequence[Query]) -> Baseline:
    os.environ["LOCALSEARCH_HOME"] = str(home)
    from localsearch.core.service import default_embedder_factory
    from localsearch.settings import load as load_settings

    settings = load_settings()
    embedder: Any = default_embedder_factory(settings, False)
    searcher: Any = default_embedder_factory(settings, True)
    try:
        texts = [d.text for d in documents]
        embedder.embed_texts(texts[:4])  # warm-up: the child's first pass maps the weights in
        started, cpu_started = time.perf_counter(), _cpu_seconds(embedder)
        doc_vectors = embedder.embed_texts(texts)
        seconds, cpu_seconds = time.perf_counter() - started, _cpu_seconds(embedder) - cpu_started
        # Tokenized again outside the timing, only to count what the engine actually saw.
        lengths = [len(embedder.tokenize(t)) + embedder.special_tokens for t in texts]
        tokens = sum(min(n, embedder.max_tokens) for n in lengths)
        truncated = sum(n > embedder.max_tokens for n in lengths)

        started = time.perf_counter()
        query_vectors = searcher.embed_tokens([searcher.tokenize(q.text) for q in queries], role="query")
        scores = query_vectors @ doc_vectors.T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
        query_seconds = time.perf_counter() - started
    finally:
        embedder.close()
        searcher.close()
    ids = [d.id for d in documents]
    rankings = {q.id: [ids[j] for j in row] for q, row in zip(queries, top, strict=True)}
    return Baseline(rankings, seconds, cpu_seconds, tokens, truncated, query_seconds)


def _cpu_seconds(engine: Any) -> float:
    """CPU time of this process and, for the app's process engine, of its child (Linux's
    /proc; elsewhere this process's only)."""
    total = time.process_time()
    pid = getattr(engine, "pid", None)
    if pid is not None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return common.parse_corpus_arguments(
        common.corpus_arguments(__doc__ or "", RESULTS_PATH, "documents and index"), argv
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.output is None:
        subset = args.limit_docs is not None
        args.output = (
            common.SCRATCH_DIR / f"scifact_index-{args.limit_docs}docs.json" if subset else RESULTS_PATH
        )

    dataset = common.read_scifact(args.limit_docs)
    if not dataset.queries:
        raise SystemExit("No query has all its relevant documents in the subset; raise --limit-docs")
    n_docs = len(dataset.documents)

    # Built or found before timing, so the index run never includes a model build.
    model_path = common.resolve_model()
    run_start = common.start()

    work = Path(tempfile.mkdtemp(prefix="localsearch-scifact-"))
    docs_dir, home = work / "docs", work / "home"
    try:
        common.write_documents(dataset.documents, docs_dir)
        print(f"indexing {n_docs} documents from {docs_dir}", file=sys.stderr)
        run = common.run_index(docs_dir, home)
        status = run_status(home)

        print(f"searching {len(dataset.queries)} queries in-process", file=sys.stderr)
        rankings, search_seconds, by_mode, service_options = pipeline_search(home, dataset.queries)
        checked, cli_waits = check_cli_matches(home, dataset.queries[:CLI_CHECK_QUERIES], rankings)
        pipeline_ids = common.stems(rankings)

        print("embedding whole documents for the baseline", file=sys.stderr)
        baseline = run_baseline(home, dataset.documents, dataset.queries)
    finally:
        if args.keep:
            print(f"kept the work folder {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    pipeline_metrics = common.mean_metrics(pipeline_ids, dataset)
    mode_metrics = {mode: common.mean_metrics(common.stems(r), dataset) for mode, r in by_mode.items()}
    baseline_metrics = common.mean_metrics(baseline.rankings, dataset)
    summary, wall, peak_mb = run.summary, run.wall, run.peak_rss_mb
    tokens = int(summary["tokens_embedded"])
    # Cores busy on average: well under the core count means other work took the CPU
    # (llama.cpp's threads degrade badly when they must share cores), so speeds are low.
    index_cores = None if run.cpu_seconds is None else run.cpu_seconds / wall
    baseline_cores = baseline.cpu_seconds / baseline.seconds
    n_queries = len(dataset.queries)
    subset_note = (
        None
        if args.limit_docs is None
        else f"subset of the first {n_docs} documents: nDCG over the {n_queries} of "
        f"{dataset.queries_total} train queries whose relevant documents are all in it"
    )
    results: dict[str, Any] = {
        "benchmark": "scifact_index",
        "split": "train",
        "documents": n_docs,
        "queries_scored": n_queries,
        "queries_total": dataset.queries_total,
        "limit_docs": args.limit_docs,
        "note": subset_note,
        "pipeline": {
            "wall_seconds": round(wall, 3),
            "cli_elapsed_seconds": round(float(summary["elapsed"]), 3),
            "docs_per_second": round(n_docs / wall, 2),
            "tokens_embedded": tokens,
            "tokens_per_second": round(tokens / wall, 1),
            "peak_rss_mb": None if peak_mb is None else round(peak_mb, 1),
            "cpu_seconds": None if run.cpu_seconds is None else round(run.cpu_seconds, 1),
            "cores_busy": None if index_cores is None else round(index_cores, 2),
            "chunks": int(summary["chunks_added"]),
            "chunks_per_doc": round(int(summary["chunks_added"]) / n_docs, 3),
            "files_indexed": int(summary["files_indexed"]),
            "files_failed": int(summary.get("files_failed", 0)),
            "status_files": status.get("files"),
            "status_chunks": status.get("chunks"),
            "status_failed": len(status.get("failed") or []),
            "search_ms_per_query": round(1000 * search_seconds / n_queries, 2),
            "search_service_options": service_options,
            "cli_checked_queries": checked,
            # A one-shot `localsearch search` as a user runs it: process start, model load,
            # index open and the search (hybrid), wall clock per query.
            "cli_one_shot_search_ms": [round(1000 * w) for w in cli_waits],
            "cli_one_shot_search_ms_median": round(1000 * statistics.median(cli_waits)),
            "by_mode": {m: {k: round(v, 4) for k, v in mm.items()} for m, mm in mode_metrics.items()},
            "index_summary": summary,
            **{k: round(v, 4) for k, v in pipeline_metrics.items()},
        },
        "baseline_whole_doc": {
            "engine": "the command line's document engine (service.default_embedder_factory), one call",
            "embed_seconds": round(baseline.seconds, 3),
            "docs_per_second": round(n_docs / baseline.seconds, 2),
            "tokens": baseline.tokens,
            "tokens_per_second": round(baseline.tokens / baseline.seconds, 1),
            "docs_truncated": baseline.docs_truncated,
            "cpu_seconds": round(baseline.cpu_seconds, 1),
            "cores_busy": round(baseline_cores, 2),
            "query_ms_per_query": round(1000 * baseline.query_seconds / n_queries, 2),
            **{k: round(v, 4) for k, v in baseline_metrics.items()},
        },
        "pipeline_vs_engine_tokens_per_second": round(
            (tokens / wall) / (baseline.tokens / baseline.seconds), 3
        ),
        "machine": common.machine(model_path, run_start),
    }
    common.write_result(args.output, results)

    p, b = results["pipeline"], results["baseline_whole_doc"]
    rss = "n/a" if p["peak_rss_mb"] is None else f"{p['peak_rss_mb']:.0f} MB"
    common.print_rows(
        [
            ("documents", f"{n_docs}"),
            ("queries scored", f"{n_queries} of {dataset.queries_total} (train)"),
            ("index wall time", f"{wall:.1f} s (CLI's own elapsed {p['cli_elapsed_seconds']:.1f} s)"),
            ("index documents/s", f"{p['docs_per_second']:.1f}"),
            ("index tokens/s", f"{p['tokens_per_second']:,.0f} ({tokens:,} tokens, {p['chunks']} chunks)"),
            ("index peak RSS", rss),
            ("index cores busy", "n/a" if index_cores is None else f"{index_cores:.2f} of {os.cpu_count()}"),
            (f"pipeline nDCG@{K}", f"{p[f'ndcg@{K}']:.4f} (recall@{K} {p[f'recall@{K}']:.4f})"),
            *[
                (f"  mode {mode}", f"{mm[f'ndcg@{K}']:.4f} (recall@{K} {mm[f'recall@{K}']:.4f})")
                for mode, mm in mode_metrics.items()
            ],
            ("pipeline search", f"{p['search_ms_per_query']:.1f} ms/query in-process"),
            ("CLI = in-process", f"top {K} identical on {len(checked)} queries"),
            ("CLI one-shot search", f"{p['cli_one_shot_search_ms_median']} ms median (start, load, search)"),
            (f"whole-doc nDCG@{K}", f"{b[f'ndcg@{K}']:.4f} (recall@{K} {b[f'recall@{K}']:.4f})"),
            ("whole-doc embedding", f"{b['embed_seconds']:.1f} s, {b['docs_per_second']:.1f} docs/s"),
            (
                "engine tokens/s",
                f"{b['tokens_per_second']:,.0f} ({b['tokens']:,} tokens, "
                f"{b['docs_truncated']} docs cut at 256)",
            ),
            ("engine cores busy", f"{baseline_cores:.2f} of {os.cpu_count()}"),
            ("pipeline / engine", f"{results['pipeline_vs_engine_tokens_per_second']:.2f}x tokens/s"),
            ("model", results["machine"]["model_file"]),
            ("machine", common.machine_line(results["machine"])),
        ]
    )
    if subset_note:
        print(f"NOTE: {subset_note}")
    if moved := common.moved_note(results["machine"]):
        print(moved)
    return 0


if __name__ == "__main__":
    sys.exit(main())
