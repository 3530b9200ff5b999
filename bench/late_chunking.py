"""Late chunking against ordinary chunking, on SciFact (train split), for the default model.

For each chunk setting (the app's default, 256 tokens with 32 shared, and small chunks of
64 with 16 shared, where a passage alone knows little of its abstract) the corpus, one
`<_id>.txt` file a document, is indexed twice through the real command line in a child
process, with `late_chunking` off and on (set with `localsearch settings`), each in its
own home under bench/scratch/late_chunking/. Every index is built before any is searched,
so all builds run the same code. Then the train queries are searched in this process,
semantic (the vectors alone) and hybrid (what the app shows), and scored by nDCG@10 with
hits mapped back to document ids by file stem.

    python bench/late_chunking.py                    # writes bench/results/late_chunking.json
    python bench/late_chunking.py --limit-docs 300   # quick check (bench/scratch/)

Shared helpers (corpus loading, the CLI runner, metrics, machine facts) come from
common.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common
from common import K

RESULTS_PATH = common.RESULTS_DIR / "late_chunking.json"
SCRATCH = common.SCRATCH_DIR / "late_chunking"
MODES = ("semantic", "hybrid")


@dataclass(frozen=True)
class Config:
    chunk_tokens: int
    chunk_overlap: int
    late: bool

    @property
    def name(self) -> str:
        return f"chunk{self.chunk_tokens}-overlap{self.chunk_overlap}-{'late' if self.late else 'plain'}"


CHUNKINGS = ((256, 32), (64, 16))


def configure(home: Path, config: Config) -> None:
    """The settings of one run, written by the public command."""
    for key, value in (
        ("chunk_tokens", str(config.chunk_tokens)),
        ("chunk_overlap", str(config.chunk_overlap)),
        ("late_chunking", "true" if config.late else "false"),
    ):
        subprocess.run(
            common.cli("settings", key, value),
            env=common.child_env(home),
            check=True,
            capture_output=True,
        )


def search(home: Path, queries: Sequence[common.Query]) -> tuple[dict[str, dict[str, list[str]]], float, str]:
    """Rankings (file paths) per mode, from the service the CLI uses, opened as `search
    --batch` opens it; the seconds per query over all modes; the model file it ran."""
    os.environ["LOCALSEARCH_HOME"] = str(home)
    from localsearch.core.service import LocalSearch

    rankings: dict[str, dict[str, list[str]]] = {}
    with LocalSearch(for_queries=True, keep_vectors=True) as service:
        service.search("warm-up", limit=K)
        started = time.perf_counter()
        for mode in MODES:
            rankings[mode] = {
                q.id: [h.path for h in service.search(q.text, limit=K, mode=mode)] for q in queries
            }
        seconds = (time.perf_counter() - started) / (len(queries) * len(MODES))
        model_file = Path(str(getattr(service.embedder, "model_path", ""))).name
    return rankings, seconds, model_file


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.corpus_arguments(__doc__ or "", RESULTS_PATH, "documents and indexes")
    return common.parse_corpus_arguments(parser, argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    subset = args.limit_docs is not None
    if args.output is None:
        args.output = SCRATCH.parent / f"late_chunking-{args.limit_docs}docs.json" if subset else RESULTS_PATH

    dataset = common.read_scifact(args.limit_docs)
    if not dataset.queries:
        raise SystemExit("No query has all its relevant documents in the subset; raise --limit-docs")
    model_path = common.resolve_model()
    run_start = common.start()

    configs = [Config(tokens, overlap, late) for tokens, overlap in CHUNKINGS for late in (False, True)]
    shutil.rmtree(SCRATCH, ignore_errors=True)
    docs_dir = SCRATCH / "docs"
    common.write_documents(dataset.documents, docs_dir)
    runs: dict[str, common.IndexRun] = {}
    query_model = ""
    try:
        for config in configs:
            home = SCRATCH / config.name
            configure(home, config)
            print(f"indexing {len(dataset.documents)} documents: {config.name}", file=sys.stderr)
            runs[config.name] = common.run_index(docs_dir, home)
        results_by_config: dict[str, dict[str, Any]] = {}
        for config in configs:
            print(f"searching {len(dataset.queries)} queries: {config.name}", file=sys.stderr)
            rankings, seconds, query_model = search(SCRATCH / config.name, dataset.queries)
            run = runs[config.name]
            summary = run.summary
            tokens = int(summary["tokens_embedded"])
            results_by_config[config.name] = {
                "chunk_tokens": config.chunk_tokens,
                "chunk_overlap": config.chunk_overlap,
                "late_chunking": config.late,
                "files_indexed": int(summary["files_indexed"]),
                "files_failed": int(summary.get("files_failed", 0)),
                "chunks": int(summary["chunks_added"]),
                "tokens_embedded": tokens,
                "index_wall_seconds": round(run.wall, 1),
                "index_tokens_per_second": round(tokens / run.wall, 1),
                "index_cores_busy": None if run.cpu_seconds is None else round(run.cpu_seconds / run.wall, 2),
                "peak_rss_mb": None if run.peak_rss_mb is None else round(run.peak_rss_mb, 1),
                "search_ms_per_query": round(1000 * seconds, 2),
                **{
                    mode: {k: round(v, 4) for k, v in common.mean_metrics(common.stems(r), dataset).items()}
                    for mode, r in rankings.items()
                },
            }
    finally:
        if not args.keep:
            shutil.rmtree(SCRATCH, ignore_errors=True)

    gains = {}
    for tokens, overlap in CHUNKINGS:
        plain = results_by_config[Config(tokens, overlap, False).name]
        late = results_by_config[Config(tokens, overlap, True).name]
        gains[f"chunk{tokens}"] = {
            mode: round(late[mode][f"ndcg@{K}"] - plain[mode][f"ndcg@{K}"], 4) for mode in MODES
        }
    n_queries = len(dataset.queries)
    results = {
        "benchmark": "late_chunking",
        "split": "train",
        "documents": len(dataset.documents),
        "queries_scored": n_queries,
        "queries_total": dataset.queries_total,
        "limit_docs": args.limit_docs,
        "configs": results_by_config,
        "late_minus_plain_ndcg@10": gains,
        "query_model_file": query_model,  # the file the app resolved (may differ from `models build`'s)
        "machine": common.machine(model_path, run_start),
    }
    common.write_result(args.output, results)

    print(
        f"SciFact train: {len(dataset.documents)} documents, {n_queries} queries scored; model {query_model}"
    )
    rows = []
    for config in configs:
        r = results_by_config[config.name]
        rows.append(
            (
                f"{config.chunk_tokens} / {config.chunk_overlap}",
                "on" if config.late else "off",
                r["chunks"],
                f"{r['tokens_embedded']:,}",
                f"{r['index_wall_seconds']:.1f}",
                f"{r['semantic'][f'ndcg@{K}']:.4f}",
                f"{r['hybrid'][f'ndcg@{K}']:.4f}",
            )
        )
    header = ("chunk / overlap", "late", "chunks", "tokens", "index s", "semantic nDCG@10", "hybrid nDCG@10")
    common.print_table(header, rows)
    for chunking, gain in gains.items():
        print(f"late - plain, {chunking}: semantic {gain['semantic']:+.4f}, hybrid {gain['hybrid']:+.4f}")
    common.print_rows([("machine", common.machine_line(results["machine"]))])
    if moved := common.moved_note(results["machine"]):
        print(moved)
    return 0


if __name__ == "__main__":
    sys.exit(main())
