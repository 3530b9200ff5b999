"""Indexing throughput and retrieval quality of localsearch on SciFact (train split).

Each SciFact abstract becomes one `<_id>.txt` file in a scratch folder, which is indexed
through the real command line in a child process (wall time, peak RSS). Quality is
nDCG@10 over the train queries, with hits mapped back to document ids by file stem.
The baseline embeds each whole document as one vector (cut to the model's 256 tokens)
with the same model file and ranks by brute-force cosine in NumPy: it tells whether
chunking helps, and its tokens/s is the raw engine speed the pipeline can be held to.

    python bench/scifact_index.py                  # full run, writes bench/results/scifact_index.json
    python bench/scifact_index.py --limit-docs 300 # quick check on the first 300 documents

The data folder is ../shared/evaldata next to the project, or $LOCALSEARCH_EVALDATA.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import inspect
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "results" / "scifact_index.json"
EVALDATA_ENV = "LOCALSEARCH_EVALDATA"
K = 10
CLI_CHECK_QUERIES = 3


@dataclass(frozen=True)
class Document:
    id: str
    text: str


@dataclass(frozen=True)
class Query:
    id: str
    text: str


@dataclass(frozen=True)
class Dataset:
    documents: list[Document]
    queries: list[Query]  # only those that can be scored against `documents`
    qrels: dict[str, set[str]]  # query id -> relevant document ids
    queries_total: int


def evaldata_dir() -> Path:
    override = os.environ.get(EVALDATA_ENV)
    return Path(override).expanduser() if override else PROJECT_DIR.parent / "shared" / "evaldata"


def load_dataset(folder: Path, limit_docs: int | None) -> Dataset:
    documents = []
    with open(folder / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                documents.append(Document(str(row["_id"]), f"{row['title']}\n\n{row['text']}"))
    if limit_docs is not None:
        documents = documents[:limit_docs]

    qrels: dict[str, set[str]] = {}
    with open(folder / "qrels_train.tsv", encoding="utf-8") as handle:
        next(handle)  # header
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3 and int(parts[2]) > 0:
                qrels.setdefault(parts[0], set()).add(parts[1])

    all_queries = []
    with open(folder / "queries_train.jsonl", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                all_queries.append(Query(str(row["_id"]), str(row["text"])))

    # On a subset, a query whose relevant documents are partly missing would be scored
    # against an ideal ranking it can never reach, so only fully covered queries count.
    present = {d.id for d in documents}
    queries = [q for q in all_queries if q.id in qrels and qrels[q.id] <= present]
    return Dataset(documents, queries, qrels, len(all_queries))


def ndcg_at_k(ranked: Sequence[str], relevant: set[str], k: int = K) -> float:
    dcg = sum(1.0 / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]) if doc in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def recall_at_k(ranked: Sequence[str], relevant: set[str], k: int = K) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def mean_metrics(rankings: dict[str, list[str]], dataset: Dataset) -> dict[str, float]:
    queries = [q for q in dataset.queries if q.id in rankings]
    n = len(queries) or 1
    return {
        f"ndcg@{K}": sum(ndcg_at_k(rankings[q.id], dataset.qrels[q.id]) for q in queries) / n,
        f"recall@{K}": sum(recall_at_k(rankings[q.id], dataset.qrels[q.id]) for q in queries) / n,
    }


def stems(rankings: dict[str, list[str]]) -> dict[str, list[str]]:
    """Result paths as SciFact document ids (each file is named <_id>.txt)."""
    return {qid: [Path(p).stem for p in paths] for qid, paths in rankings.items()}


def write_documents(documents: Sequence[Document], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for doc in documents:
        # Bytes, not text mode: the file must hold exactly what the baseline embeds
        # (text mode would turn "\n" into "\r\n" on Windows).
        (folder / f"{doc.id}.txt").write_bytes(doc.text.encode("utf-8"))


def child_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["LOCALSEARCH_HOME"] = str(home)
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "localsearch", *args]


class _PsutilPeak:
    """Sampled peak RSS of a process, for platforms without os.wait4."""

    def __init__(self, pid: int) -> None:
        self.peak = 0
        self._pid = pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        try:
            import psutil

            process = psutil.Process(self._pid)
            while not self._stop.is_set():
                self.peak = max(self.peak, int(process.memory_info().rss))
                self._stop.wait(0.1)
        except Exception:  # psutil missing or the process already gone
            return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


@dataclass(frozen=True)
class IndexRun:
    summary: dict[str, Any]  # the CLI's JSON summary
    wall: float
    peak_rss_mb: float | None
    cpu_seconds: float | None  # user + system time of the child, all threads


def run_index(folder: Path, home: Path) -> IndexRun:
    started = time.perf_counter()
    process = subprocess.Popen(
        cli("index", str(folder), "--json"),
        env=child_env(home),
        stdout=subprocess.PIPE,
        text=True,  # stderr (progress) passes through to the terminal
    )
    peak_mb: float | None = None
    cpu_seconds: float | None = None
    if hasattr(os, "wait4"):
        # wait4 gives this child's own rusage, unlike RUSAGE_CHILDREN (the largest child
        # ever waited for); reading stdout to EOF first cannot deadlock on a full pipe.
        assert process.stdout is not None
        stdout = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        # ru_maxrss is in kilobytes on Linux and in bytes on macOS.
        peak_mb = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
        cpu_seconds = usage.ru_utime + usage.ru_stime
    else:  # Windows
        sampler = _PsutilPeak(process.pid)
        stdout, _ = process.communicate()
        wall = time.perf_counter() - started
        peak_mb = sampler.stop() / (1024 * 1024) or None
    if process.returncode != 0:
        raise SystemExit(f"localsearch index exited with {process.returncode}")
    return IndexRun(json.loads(stdout), wall, peak_mb, cpu_seconds)


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


def check_cli_matches(home: Path, queries: Sequence[Query], rankings: dict[str, list[str]]) -> list[str]:
    checked = []
    for query in queries:
        hits = cli_search(home, query.text)
        paths = [str(hit["path"]) for hit in hits]
        if paths != rankings[query.id]:
            raise SystemExit(
                f"CLI and in-process search disagree on query {query.id} ({query.text!r}):\n"
                f"  cli:        {[Path(p).stem for p in paths]}\n"
                f"  in-process: {[Path(p).stem for p in rankings[query.id]]}"
            )
        checked.append(query.id)
    return checked


@dataclass
class Baseline:
    rankings: dict[str, list[str]]
    seconds: float  # tokenizing and embedding the documents
    cpu_seconds: float  # this process's CPU time over the same span, all threads
    tokens: int
    docs_truncated: int
    query_seconds: float


def run_baseline(model_path: Path, documents: Sequence[Document], queries: Sequence[Query]) -> Baseline:
    from localsearch.core.embedding import LlamaEmbedder

    embedder = LlamaEmbedder(model_path, max_tokens=256)
    try:
        texts = [d.text for d in documents]
        started, cpu_started = time.perf_counter(), time.process_time()
        doc_vectors = embedder.embed_texts(texts)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        # Tokenized again outside the timing, only to count what the engine actually saw.
        lengths = [len(embedder.tokenize(t)) + embedder.special_tokens for t in texts]
        tokens = sum(min(n, embedder.max_tokens) for n in lengths)
        truncated = sum(n > embedder.max_tokens for n in lengths)

        started = time.perf_counter()
        query_vectors = embedder.embed_texts([q.text for q in queries])
        scores = query_vectors @ doc_vectors.T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
        query_seconds = time.perf_counter() - started
    finally:
        embedder.close()
    ids = [d.id for d in documents]
    rankings = {q.id: [ids[j] for j in row] for q, row in zip(queries, top, strict=True)}
    return Baseline(rankings, seconds, cpu_seconds, tokens, truncated, query_seconds)


def resolve_model() -> Path:
    """The default model file, built now if missing so no timed run includes a build.

    Asked of the CLI rather than imported: the index must be built before this process
    imports localsearch, or an edit to the tree during the run could leave this process
    reading a database with older code than the one that wrote it.
    """
    env = {k: v for k, v in os.environ.items() if k != "LOCALSEARCH_HOME"}
    result = subprocess.run(cli("models", "build"), env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"localsearch models build failed:\n{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def machine_info(model_path: Path, commit_at_start: str | None) -> dict[str, Any]:
    import llama_cpp

    import localsearch

    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "localsearch": localsearch.__version__,
        "llama_cpp_python": llama_cpp.__version__,
        "git_commit_at_start": commit_at_start,
        "git_commit": git_commit(),
        "model_file": model_path.name,
        "model_bytes": model_path.stat().st_size,
        "model_sha256": sha256_of(model_path),
    }


def write_json(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def print_table(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def corpus_arguments(description: str, results: Path, kept: str) -> argparse.ArgumentParser:
    """The options of a benchmark that indexes the corpus: a subset, keeping the scratch
    folder (`kept` says what it holds), and where the JSON goes."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit-docs", type=int, metavar="N", help="index only the first N documents")
    parser.add_argument("--keep", action="store_true", help=f"keep the scratch folder ({kept})")
    parser.add_argument(
        "--output",
        type=Path,
        help=f"JSON results file (default {results.relative_to(PROJECT_DIR)}; "
        "with --limit-docs, bench/scratch/ so a quick check never replaces the full result)",
    )
    return parser


def parse_corpus_arguments(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.limit_docs is not None and args.limit_docs <= 0:
        parser.error("--limit-docs must be positive")
    return args


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return parse_corpus_arguments(corpus_arguments(__doc__ or "", RESULTS_PATH, "documents and index"), argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.output is None:
        subset = args.limit_docs is not None
        args.output = (
            BENCH_DIR / "scratch" / f"scifact_index-{args.limit_docs}docs.json" if subset else RESULTS_PATH
        )

    data_dir = evaldata_dir() / "scifact"
    if not (data_dir / "corpus.jsonl").is_file():
        raise SystemExit(f"SciFact not found in {data_dir} (set {EVALDATA_ENV} to the evaldata folder)")
    dataset = load_dataset(data_dir, args.limit_docs)
    if not dataset.queries:
        raise SystemExit("No query has all its relevant documents in the subset; raise --limit-docs")
    n_docs = len(dataset.documents)

    # Built or found before timing, so the index run never includes a model build.
    model_path = resolve_model()
    commit_at_start = git_commit()

    work = Path(tempfile.mkdtemp(prefix="localsearch-scifact-"))
    docs_dir, home = work / "docs", work / "home"
    try:
        write_documents(dataset.documents, docs_dir)
        print(f"indexing {n_docs} documents from {docs_dir}", file=sys.stderr)
        run = run_index(docs_dir, home)
        status = run_status(home)

        print(f"searching {len(dataset.queries)} queries in-process", file=sys.stderr)
        rankings, search_seconds, by_mode, service_options = pipeline_search(home, dataset.queries)
        checked = check_cli_matches(home, dataset.queries[:CLI_CHECK_QUERIES], rankings)
        pipeline_ids = stems(rankings)

        print("embedding whole documents for the baseline", file=sys.stderr)
        baseline = run_baseline(model_path, dataset.documents, dataset.queries)
    finally:
        if args.keep:
            print(f"kept the work folder {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    pipeline_metrics = mean_metrics(pipeline_ids, dataset)
    mode_metrics = {mode: mean_metrics(stems(r), dataset) for mode, r in by_mode.items()}
    baseline_metrics = mean_metrics(baseline.rankings, dataset)
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
            "by_mode": {m: {k: round(v, 4) for k, v in mm.items()} for m, mm in mode_metrics.items()},
            "index_summary": summary,
            **{k: round(v, 4) for k, v in pipeline_metrics.items()},
        },
        "baseline_whole_doc": {
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
        "machine": machine_info(model_path, commit_at_start),
    }
    write_json(results, args.output)

    p, b = results["pipeline"], results["baseline_whole_doc"]
    rss = "n/a" if p["peak_rss_mb"] is None else f"{p['peak_rss_mb']:.0f} MB"
    print_table(
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
            ("machine", f"{os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}"),
        ]
    )
    if subset_note:
        print(f"NOTE: {subset_note}")
    if results["machine"]["git_commit"] != commit_at_start:
        moved_to = results["machine"]["git_commit"]
        print(f"NOTE: the checkout moved from {commit_at_start} to {moved_to} during the run")
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
