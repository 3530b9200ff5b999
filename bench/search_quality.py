"""Search quality per mode on SciFact train and on the everyday set, in one table.

Corpora (each indexed once through `localsearch index` into bench/scratch/quality/<name>,
git-ignored, and reused by later runs; --rebuild starts afresh):
  scifact      the 5,183 SciFact abstracts, 809 train queries: nDCG@10 and MRR@10
  everyday     bench/everyday: notes, recipes, code, mail, minutes and a few long real PDFs
               (read from ../shared/evaldata/pdfs), 70 paraphrased queries: top-1 and MRR@10,
               with the held-out third (never used for tuning) reported apart
  short        the everyday set's short notes alone (notes/), and the queries that want them
  distractors  the everyday set added to the SciFact index: its 70 queries among 5,236 files,
               5,183 of them scientific abstracts full of common words

Modes: hybrid (calibrated fusion, the default), semantic, keyword, and the two fusions
hybrid was measured against: rrf (reciprocal rank fusion) and minmax (each lane scaled over
the files it found; the fusion before calibration). Searches run in this process through
the same service the CLI uses, the default model, 10 results a query.

    python bench/search_quality.py [--sets everyday,short] [--rebuild] [--output FILE]
                                   [--no-file-names]

--no-file-names indexes with the setting file_names off (passages embedded without their
file's name words, as before that setting) into bench/scratch/quality-no-file-names/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVALDATA = Path(os.environ.get("LOCALSEARCH_EVALDATA", ROOT.parent / "shared" / "evaldata"))
EVERYDAY = ROOT / "bench" / "everyday"
SCRATCH = ROOT / "bench" / "scratch" / "quality"
RESULTS = ROOT / "bench" / "results"
SETS = ("scifact", "everyday", "short", "distractors")
# (label, search mode, fusion)
MODES = (
    ("hybrid", "hybrid", "calibrated"),
    ("semantic", "semantic", "calibrated"),
    ("keyword", "keyword", "calibrated"),
    ("rrf", "hybrid", "rrf"),
    ("minmax", "hybrid", "minmax"),
)
LIMIT = 10
FILE_NAMES = True  # the setting file_names (see --no-file-names)


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    relevant: frozenset[str]  # paths relative to the corpus folder (SciFact: "<id>.txt")
    split: str = "all"  # everyday: "tune" or "heldout"
    kind: str = ""


@dataclass
class Corpus:
    name: str
    files: dict[str, Path | str]  # relative path -> source file to copy, or text to write
    queries: list[Query]
    graded: bool = False  # SciFact: several relevant documents, scored by nDCG


def scifact_documents(limit: int | None = None) -> dict[str, str]:
    docs: dict[str, str] = {}
    with open(EVALDATA / "scifact" / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            docs[f"{item['_id']}.txt"] = f"{item['title']}\n\n{item['text']}"
            if limit and len(docs) >= limit:
                break
    return docs


def scifact_corpus() -> Corpus:
    folder = EVALDATA / "scifact"
    qrels: dict[str, set[str]] = {}
    with open(folder / "qrels_train.tsv", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            query_id, doc_id, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels.setdefault(query_id, set()).add(f"{doc_id}.txt")
    queries = []
    with open(folder / "queries_train.jsonl", encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            if item["_id"] in qrels:
                queries.append(Query(item["_id"], item["text"], frozenset(qrels[item["_id"]])))
    return Corpus("scifact", dict(scifact_documents()), queries, graded=True)


def everyday_files() -> dict[str, Path | str]:
    files: dict[str, Path | str] = {
        str(p.relative_to(EVERYDAY / "docs")): p
        for p in sorted((EVERYDAY / "docs").rglob("*"))
        if p.is_file()
    }
    for line in (EVERYDAY / "pdfs.txt").read_text(encoding="utf-8").splitlines():
        name = line.strip()
        if name and not name.startswith("#"):
            files[f"pdf/{name}"] = EVALDATA / "pdfs" / name
    return files


def everyday_queries() -> list[Query]:
    queries = []
    for line in (EVERYDAY / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        wanted = [item["expect"], *item.get("also", [])]
        relevant = frozenset(w.replace("pdf:", "pdf/", 1) for w in wanted)
        queries.append(Query(item["id"], item["query"], relevant, item["split"], item["kind"]))
    return queries


def corpus(name: str) -> Corpus:
    if name == "scifact":
        return scifact_corpus()
    files, queries = everyday_files(), everyday_queries()
    if name == "short":
        files = {k: v for k, v in files.items() if k.startswith("notes/")}
        queries = [q for q in queries if q.relevant <= files.keys()]
    elif name == "distractors":
        files.update({f"scifact/{k}": v for k, v in scifact_documents().items()})
    return Corpus(name, files, queries)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "localsearch", *args]


def build(c: Corpus, rebuild: bool) -> tuple[Path, Path, float | None]:
    return _build(c, rebuild, SCRATCH)


def _build(c: Corpus, rebuild: bool, scratch: Path) -> tuple[Path, Path, float | None]:
    """The corpus written to scratch and indexed through the CLI, unless already there.
    The distractors set starts from a copy of the SciFact index (so the abstracts are
    embedded once) and indexes the everyday files into it."""
    base = scratch / c.name
    home, docs = base / "home", base / "docs"
    if rebuild and base.exists():
        shutil.rmtree(base)
    if (home / "data" / "index.sqlite3").is_file():
        return home, docs, None
    started = time.perf_counter()
    env = {**os.environ, "LOCALSEARCH_HOME": str(home)}
    if not FILE_NAMES and not (home / "config" / "settings.toml").is_file():
        (home / "config").mkdir(parents=True, exist_ok=True)
        (home / "config" / "settings.toml").write_text("file_names = false\n", encoding="utf-8")
    if c.name == "distractors":
        scifact_home, _, _ = _build(scifact_corpus(), False, scratch)
        shutil.copytree(scifact_home, home)
        c = Corpus(c.name, {k: v for k, v in c.files.items() if not k.startswith("scifact/")}, c.queries)
    for relative, source in c.files.items():
        target = docs / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, Path):
            shutil.copyfile(source, target)
        else:
            target.write_bytes(source.encode("utf-8"))
    subprocess.run(cli("index", str(docs)), env=env, check=True, stdout=subprocess.DEVNULL)
    return home, docs, time.perf_counter() - started


def ndcg_at_10(ranked: Sequence[str], relevant: frozenset[str]) -> float:
    dcg = sum(1.0 / math.log2(rank + 2) for rank, doc in enumerate(ranked[:10]) if doc in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(10, len(relevant))))
    return dcg / ideal if ideal else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: frozenset[str]) -> float:
    return next((1.0 / (rank + 1) for rank, doc in enumerate(ranked) if doc in relevant), 0.0)


def evaluate(c: Corpus, home: Path, docs: Path, dump: Path | None) -> dict[str, Any]:
    os.environ["LOCALSEARCH_HOME"] = str(home)
    from localsearch.core.service import LocalSearch

    scores: dict[str, Any] = {}
    dumped: dict[str, Any] = {}
    with LocalSearch(keep_vectors=True, for_queries=True) as service:
        searcher = service.searcher
        searcher.search("warm-up", LIMIT)
        for label, mode, fusion in MODES:
            rankings: dict[str, list[str]] = {}
            started = time.perf_counter()
            for q in c.queries:
                hits = searcher.search(q.text, LIMIT, mode=mode, fusion=fusion)
                rankings[q.id] = [os.path.relpath(h.path, docs) for h in hits]
                if dump is not None and label == "hybrid":
                    wide = searcher.search(q.text, 100, mode=mode, fusion=fusion)
                    dumped[q.id] = [
                        {
                            "path": os.path.relpath(h.path, docs),
                            "cosine": h.cosine,
                            "bm25": h.bm25,
                            "keyword": h.keyword,
                            "score": h.score,
                        }
                        for h in wide
                    ]
            seconds = time.perf_counter() - started
            scores[label] = summarize(c, rankings) | {
                "ms_per_query": round(1000 * seconds / len(c.queries), 1)
            }
            if c.name == "everyday" and label == "hybrid":
                scores[label]["misses"] = {
                    q.id: {"query": q.text, "wanted": sorted(q.relevant), "got": rankings[q.id][:3]}
                    for q in c.queries
                    if not rankings[q.id] or rankings[q.id][0] not in q.relevant
                }
    if dump is not None:
        dump.parent.mkdir(parents=True, exist_ok=True)
        dump.write_text(json.dumps(dumped), encoding="utf-8")
    return scores


def summarize(c: Corpus, rankings: dict[str, list[str]]) -> dict[str, Any]:
    def block(queries: list[Query]) -> dict[str, float]:
        n = len(queries) or 1
        out = {
            "queries": len(queries),
            "top1": sum(bool(rankings[q.id]) and rankings[q.id][0] in q.relevant for q in queries) / n,
            "mrr@10": sum(reciprocal_rank(rankings[q.id], q.relevant) for q in queries) / n,
        }
        if c.graded:
            out["ndcg@10"] = sum(ndcg_at_10(rankings[q.id], q.relevant) for q in queries) / n
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}

    result: dict[str, Any] = {"all": block(c.queries)}
    splits = sorted({q.split for q in c.queries} - {"all"})
    for split in splits:
        result[split] = block([q for q in c.queries if q.split == split])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of {', '.join(SETS)}")
    parser.add_argument("--rebuild", action="store_true", help="index the corpora afresh")
    parser.add_argument("--dump", action="store_true", help="write each query's top 100 with both signals")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/search_quality.json)")
    parser.add_argument("--no-file-names", action="store_true", help="index without the file names' words")
    args = parser.parse_args(argv)
    global FILE_NAMES, SCRATCH
    if args.no_file_names:
        FILE_NAMES, SCRATCH = False, SCRATCH.with_name("quality-no-file-names")
    names = [n for n in args.sets.split(",") if n]
    if unknown := set(names) - set(SETS):
        parser.error(f"unknown sets: {', '.join(sorted(unknown))}")

    results: dict[str, Any] = {}
    for name in names:
        c = corpus(name)
        home, docs, seconds = build(c, args.rebuild)
        print(f"{name}: {len(c.files)} files, {len(c.queries)} queries", file=sys.stderr)
        dump = SCRATCH / f"{name}-candidates.json" if args.dump else None
        results[name] = {
            "files": len(c.files),
            "queries": len(c.queries),
            "index_seconds": None if seconds is None else round(seconds, 1),
            "modes": evaluate(c, home, docs, dump),
        }

    import localsearch.core.searcher as searcher

    output = {
        "benchmark": "search_quality",
        "model": "all-minilm-l6-v2 (default)",
        "file_names": FILE_NAMES,
        "limit": LIMIT,
        "fusion": {
            "meaning_weight": searcher.MEANING_WEIGHT,
            "relevance_floor": searcher.RELEVANCE_FLOOR,
            "calibration": list(searcher.CALIBRATIONS[searcher.DEFAULT_CALIBRATION].quantiles),
        },
        "sets": results,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = args.output or RESULTS / "search_quality.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(output, indent=2) + "\n", encoding="utf-8")
    print_table(results)
    print(f"written to {path}")
    return 0


def print_table(results: dict[str, Any]) -> None:
    columns: list[tuple[str, str, str]] = []  # (header, set, metric)
    for name, data in results.items():
        first = next(iter(data["modes"].values()))
        metrics = ["ndcg@10", "mrr@10"] if "ndcg@10" in first["all"] else ["top1", "mrr@10"]
        columns += [(f"{name} {m}", name, m) for m in metrics]
        if "heldout" in first:
            columns.append((f"{name} held-out top1", name, "heldout"))
    header = f"{'mode':<9}" + "".join(f"{h:>{max(len(h), 7) + 2}}" for h, _, _ in columns)
    print(header)
    for label, _, _ in MODES:
        row = f"{label:<9}"
        for h, name, metric in columns:
            modes = results[name]["modes"]
            value = modes[label]["heldout"]["top1"] if metric == "heldout" else modes[label]["all"][metric]
            row += f"{value:>{max(len(h), 7) + 2}.3f}"
        print(row)


if __name__ == "__main__":
    raise SystemExit(main())
