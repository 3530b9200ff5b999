"""Search quality on the SciFact train split through the public batch command.

Writes each SciFact document as a .txt file, indexes the folder with `localsearch index`,
runs `localsearch search --batch` once per mode (keyword, semantic, hybrid) and reports
nDCG@10 and recall@100 from the hits mapped back to document ids (file stem = id).

    python bench/search_quality.py [--home DIR] [--limit-docs N]

--home reuses an index already built by an earlier run (it is kept when given).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVALDATA = Path(os.environ.get("LOCALSEARCH_EVALDATA", ROOT.parent / "shared" / "evaldata"))
RESULTS = ROOT / "bench" / "results"
MODES = ("keyword", "semantic", "hybrid")


def load_scifact(limit_docs: int | None) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    folder = EVALDATA / "scifact"
    docs: dict[str, str] = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            docs[item["_id"]] = f"{item['title']}\n\n{item['text']}"
            if limit_docs and len(docs) >= limit_docs:
                break
    qrels: dict[str, set[str]] = {}
    with open(folder / "qrels_train.tsv", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            query_id, doc_id, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels.setdefault(query_id, set()).add(doc_id)
    # On a subset, keep only queries whose relevant documents are all in it.
    qrels = {q: rel for q, rel in qrels.items() if rel <= docs.keys()}
    queries: dict[str, str] = {}
    with open(folder / "queries_train.jsonl", encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            if item["_id"] in qrels:
                queries[item["_id"]] = item["text"]
    return docs, queries, qrels


def ndcg_at_10(ranked: list[str], relevant: set[str]) -> float:
    dcg = sum(1.0 / math.log2(rank + 2) for rank, doc in enumerate(ranked[:10]) if doc in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(10, len(relevant))))
    return dcg / ideal if ideal else 0.0


def run(command: list[str], env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, text=True, check=True, **kwargs)  # type: ignore[call-overload]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--home", type=Path, help="reuse (or build and keep) the index in this LOCALSEARCH_HOME"
    )
    parser.add_argument("--limit-docs", type=int, help="only the first N documents (a quick check)")
    args = parser.parse_args()

    docs, queries, qrels = load_scifact(args.limit_docs)
    scratch = tempfile.TemporaryDirectory(prefix="localsearch-quality-")
    home = args.home or Path(scratch.name) / "home"
    corpus_dir = home.parent / f"{home.name}-scifact-docs"
    env = {**os.environ, "LOCALSEARCH_HOME": str(home)}
    cli = [sys.executable, "-m", "localsearch"]

    index_seconds = None
    if not (home / "data" / "index.sqlite3").is_file():
        corpus_dir.mkdir(parents=True, exist_ok=True)
        for doc_id, text in docs.items():
            (corpus_dir / f"{doc_id}.txt").write_text(text, encoding="utf-8")
        started = time.perf_counter()
        run([*cli, "index", str(corpus_dir)], env, stdout=subprocess.DEVNULL)
        index_seconds = time.perf_counter() - started

    query_file = home.parent / f"{home.name}-queries.jsonl"
    query_file.write_text(
        "".join(json.dumps({"id": q, "text": t}) + "\n" for q, t in queries.items()), encoding="utf-8"
    )
    scores: dict[str, dict[str, float]] = {}
    for mode in MODES:
        started = time.perf_counter()
        out = run(
            [*cli, "search", "--batch", str(query_file), "--limit", "100", "--json", "--mode", mode],
            env,
            capture_output=True,
        ).stdout
        seconds = time.perf_counter() - started
        ndcg = recall = 0.0
        for line in out.splitlines():
            answer = json.loads(line)
            ranked = [Path(hit["path"]).stem for hit in answer["hits"]]
            relevant = qrels[answer["id"]]
            ndcg += ndcg_at_10(ranked, relevant)
            recall += len(relevant & set(ranked)) / len(relevant)
        n = len(queries)
        scores[mode] = {
            "ndcg@10": round(ndcg / n, 4),
            "recall@100": round(recall / n, 4),
            "seconds": round(seconds, 2),
            "queries_per_second": round(n / seconds, 1),
        }

    result = {
        "benchmark": "search_quality",
        "dataset": "SciFact train split",
        "documents": len(docs),
        "queries": len(queries),
        "index_seconds": round(index_seconds, 1) if index_seconds else None,
        "modes": scores,
        "hybrid_beats_both": scores["hybrid"]["ndcg@10"]
        > max(scores["keyword"]["ndcg@10"], scores["semantic"]["ndcg@10"]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "search_quality.json" if not args.limit_docs else f"search_quality-{args.limit_docs}docs.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(f"SciFact train: {len(docs)} documents, {len(queries)} queries (batch command, limit 100)")
    print(f"{'mode':<10} {'nDCG@10':>8} {'recall@100':>11} {'queries/s':>10}")
    for mode in MODES:
        s = scores[mode]
        print(f"{mode:<10} {s['ndcg@10']:>8.4f} {s['recall@100']:>11.4f} {s['queries_per_second']:>10.1f}")
    print(f"hybrid beats both single modes: {result['hybrid_beats_both']}")
    print(f"written to {RESULTS / name}")
    if not args.home:
        scratch.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
