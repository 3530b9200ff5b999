"""What the benchmarks share: where things are, the machine a figure came from, the SciFact
corpus, the command line as a child process, ranking metrics, and writing a result file.

Imports only the standard library at module level: bench/portable_build.py runs itself
under other Pythons (a portable build's) that have nothing else installed.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
SCRATCH_DIR = BENCH_DIR / "scratch"  # git-ignored: corpora, indexes and quick runs
EVALDATA_ENV = "LOCALSEARCH_EVALDATA"
K = 10


# -- where things are ------------------------------------------------------------------
def shared_dir() -> Path:
    """../shared next to the project, or $LOCALSEARCH_SHARED."""
    override = os.environ.get("LOCALSEARCH_SHARED")
    return Path(override).expanduser() if override else PROJECT_DIR.parent / "shared"


def evaldata_dir() -> Path:
    """The evaluation data (scifact/, pdfs/): $LOCALSEARCH_EVALDATA, else shared/evaldata."""
    override = os.environ.get(EVALDATA_ENV)
    return Path(override).expanduser() if override else shared_dir() / "evaldata"


def shown(path: Path) -> str:
    """A path as the checkout names it when it lies inside it."""
    path = Path(os.path.abspath(path))
    return str(path.relative_to(PROJECT_DIR)) if path.is_relative_to(PROJECT_DIR) else str(path)


# -- the machine a figure came from ----------------------------------------------------
def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the system has none): on a shared
    machine, how busy the cores were while a timing ran."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Start:
    """What is noted as a run begins, so its result can say whether either changed."""

    commit: str | None
    load_average: list[float] | None


def start() -> Start:
    return Start(git_commit(), load_average())


def _version(module: str) -> str | None:
    try:
        return str(__import__(module).__version__)
    except Exception:  # not installed, or a build that cannot load here
        return None


def machine(model: Path | None = None, started: Start | None = None, **extra: Any) -> dict[str, Any]:
    """The `machine` block of every result: the date, CPUs, platform, versions and commit,
    the load average now (and at the start), and the model file with its hash if given."""
    block: dict[str, Any] = {
        "date": now(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "localsearch": _version("localsearch"),
        "llama_cpp_python": _version("llama_cpp"),
        "git_commit": git_commit(),
        "load_average": load_average(),
    }
    if started is not None:
        block["git_commit_at_start"] = started.commit
        block["load_average_at_start"] = started.load_average
    if model is not None:
        block["model_file"] = model.name
        block["model_bytes"] = model.stat().st_size
        block["model_sha256"] = sha256_of(model)
    return block | extra


def moved_note(block: dict[str, Any]) -> str | None:
    """A warning when the checkout changed between a run's start and its result."""
    if "git_commit_at_start" in block and block["git_commit"] != block["git_commit_at_start"]:
        return (
            f"NOTE: the checkout moved from {block['git_commit_at_start']} to {block['git_commit']} "
            "during the run"
        )
    return None


def machine_line(block: dict[str, Any]) -> str:
    """The machine block in one line, for a table's last row."""
    return f"{block['cpu_count']} CPUs, {block['platform']}, Python {block['python']}"


# -- result files and tables -----------------------------------------------------------
def result_path(name_or_path: str | Path) -> Path:
    """A bare name ("search_latency") is bench/results/<name>.json; a path is itself."""
    if isinstance(name_or_path, str) and os.sep not in name_or_path and "/" not in name_or_path:
        return RESULTS_DIR / (name_or_path if name_or_path.endswith(".json") else f"{name_or_path}.json")
    return Path(name_or_path)


def write_result(name_or_path: str | Path, data: dict[str, Any], *, quiet: bool = False) -> Path:
    """Write JSON through a temporary file renamed into place, so a run cut short never
    leaves half a result; say where it went unless `quiet` (a file rewritten as rows finish)."""
    path = result_path(name_or_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    if not quiet:
        print(f"results: {shown(path)}")
    return path


def print_rows(rows: Sequence[tuple[str, str]]) -> None:
    """A two-column table: label, value."""
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Columns sized to their widest cell: the first left-aligned (labels), the rest
    right-aligned (figures, formatted by the caller)."""
    cells = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print(
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )


def percentile_ms(values: Sequence[float], q: float) -> float:
    """The q-th percentile of millisecond timings, rounded as results show them."""
    import numpy as np

    return round(float(np.percentile(values, q)), 2)


# -- SciFact ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Document:
    id: str
    title: str
    abstract: str

    @property
    def text(self) -> str:
        """Title, blank line, abstract: what a document's file holds."""
        return f"{self.title}\n\n{self.abstract}"


@dataclass(frozen=True)
class Query:
    id: str
    text: str


@dataclass(frozen=True)
class SciFact:
    documents: list[Document]
    queries: list[Query]  # train queries whose relevant documents are all in `documents`
    qrels: dict[str, set[str]]  # train query id -> relevant document ids
    all_queries: list[Query]  # every train query, judged or not

    @property
    def queries_total(self) -> int:
        return len(self.all_queries)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_scifact(limit: int | None = None) -> SciFact:
    """SciFact's corpus (the first `limit` documents when given) with the train queries.
    On a subset, a query whose relevant documents are partly missing would be scored
    against an ideal ranking it can never reach, so `queries` holds only covered ones."""
    folder = evaldata_dir() / "scifact"
    if not (folder / "corpus.jsonl").is_file():
        raise SystemExit(f"SciFact not found in {folder} (set {EVALDATA_ENV} to the evaldata folder)")
    rows = _jsonl(folder / "corpus.jsonl")
    if limit:
        rows = rows[:limit]
    documents = [Document(str(r["_id"]), str(r["title"]), str(r["text"])) for r in rows]
    qrels: dict[str, set[str]] = {}
    with open(folder / "qrels_train.tsv", encoding="utf-8") as handle:
        next(handle)  # header
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3 and int(parts[2]) > 0:
                qrels.setdefault(parts[0], set()).add(parts[1])
    all_queries = [Query(str(r["_id"]), str(r["text"])) for r in _jsonl(folder / "queries_train.jsonl")]
    present = {d.id for d in documents}
    queries = [q for q in all_queries if q.id in qrels and qrels[q.id] <= present]
    return SciFact(documents, queries, qrels, all_queries)


def scifact_texts(limit: int) -> list[str]:
    """The first `limit` documents as title, space, abstract: what the engine benchmarks
    embed directly (no files, no chunking)."""
    return [f"{d.title} {d.abstract}".strip() for d in read_scifact(limit).documents]


def write_documents(documents: Sequence[Document], folder: Path) -> None:
    """One <id>.txt file per document."""
    folder.mkdir(parents=True, exist_ok=True)
    for doc in documents:
        # Bytes, not text mode: the file must hold exactly the text an engine is given
        # directly (text mode would turn "\n" into "\r\n" on Windows).
        (folder / f"{doc.id}.txt").write_bytes(doc.text.encode("utf-8"))


# -- ranking metrics -------------------------------------------------------------------
def ndcg_at_k(ranked: Sequence[str], relevant: set[str] | frozenset[str], k: int = K) -> float:
    dcg = sum(1.0 / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]) if doc in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def recall_at_k(ranked: Sequence[str], relevant: set[str], k: int = K) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: set[str] | frozenset[str]) -> float:
    return next((1.0 / (rank + 1) for rank, doc in enumerate(ranked) if doc in relevant), 0.0)


def mean_metrics(rankings: dict[str, list[str]], dataset: SciFact) -> dict[str, float]:
    """nDCG@K and recall@K over the dataset's scored queries that have a ranking."""
    queries = [q for q in dataset.queries if q.id in rankings]
    n = len(queries) or 1
    return {
        f"ndcg@{K}": sum(ndcg_at_k(rankings[q.id], dataset.qrels[q.id]) for q in queries) / n,
        f"recall@{K}": sum(recall_at_k(rankings[q.id], dataset.qrels[q.id]) for q in queries) / n,
    }


def stems(rankings: dict[str, list[str]]) -> dict[str, list[str]]:
    """Result paths as SciFact document ids (each file is named <_id>.txt)."""
    return {qid: [Path(p).stem for p in paths] for qid, paths in rankings.items()}


# -- the command line in a child process -----------------------------------------------
def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "localsearch", *args]


def child_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["LOCALSEARCH_HOME"] = str(home)
    return env


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
    """`localsearch index FOLDER --json` in a child process: its summary, wall time, peak
    RSS and CPU time."""
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


# -- options of the benchmarks that index the corpus -----------------------------------
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
