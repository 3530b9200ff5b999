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
                                   [--no-file-names] [--late-chunking]
                                   [--model NAME [--dimensions N]]

--no-file-names indexes with the setting file_names off (passages embedded without their
file's name words, as before that setting) into bench/scratch/quality-no-file-names/.
--late-chunking indexes with late chunking on (which leaves file names out) into
bench/scratch/quality-late/.
--model indexes and searches with another model of the catalog (its files found as the
app finds them, e.g. after `localsearch models build nomic-embed-text-v1.5`), at its
native size or --dimensions, into bench/scratch/quality-<model>[-<dimensions>]/. A model
without a cosine calibration of its own is read on the default model's (see
searcher.CALIBRATIONS), which the result notes.
"""

from __future__ import annotations

import argparse
import json
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
from common import cli, ndcg_at_k, reciprocal_rank

EVERYDAY = common.BENCH_DIR / "everyday"
SCRATCH = common.SCRATCH_DIR / "quality"
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
LATE_CHUNKING = False  # the setting late_chunking (see --late-chunking)
MODEL: str | None = None  # another model than the default (see --model)
DIMENSIONS = 0  # its Matryoshka cut; 0: native


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


def scifact_documents() -> dict[str, str]:
    return {f"{d.id}.txt": d.text for d in common.read_scifact().documents}


def scifact_corpus() -> Corpus:
    data = common.read_scifact()
    files: dict[str, Path | str] = {f"{d.id}.txt": d.text for d in data.documents}
    queries = [Query(q.id, q.text, frozenset(f"{d}.txt" for d in data.qrels[q.id])) for q in data.queries]
    return Corpus("scifact", files, queries, graded=True)


def everyday_files() -> dict[str, Path | str]:
    files: dict[str, Path | str] = {
        str(p.relative_to(EVERYDAY / "docs")): p
        for p in sorted((EVERYDAY / "docs").rglob("*"))
        if p.is_file()
    }
    for line in (EVERYDAY / "pdfs.txt").read_text(encoding="utf-8").splitlines():
        name = line.strip()
        if name and not name.startswith("#"):
            files[f"pdf/{name}"] = common.evaldata_dir() / "pdfs" / name
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
    lines = [] if FILE_NAMES else ["file_names = false"]
    if LATE_CHUNKING:
        lines.append("late_chunking = true")
    if MODEL:
        lines += [f"model = {json.dumps(MODEL)}", f"dimensions = {DIMENSIONS}"]
    if lines and not (home / "config" / "settings.toml").is_file():
        (home / "config").mkdir(parents=True, exist_ok=True)
        (home / "config" / "settings.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
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
            out["ndcg@10"] = sum(ndcg_at_k(rankings[q.id], q.relevant) for q in queries) / n
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
    parser.add_argument("--late-chunking", action="store_true", help="index with late chunking on")
    parser.add_argument("--model", help="another model of the catalog than the default")
    parser.add_argument("--dimensions", type=int, default=0, help="with --model: its Matryoshka cut")
    args = parser.parse_args(argv)
    global FILE_NAMES, SCRATCH, MODEL, DIMENSIONS, LATE_CHUNKING
    if args.no_file_names:
        FILE_NAMES, SCRATCH = False, SCRATCH.with_name("quality-no-file-names")
    if args.late_chunking:
        LATE_CHUNKING, SCRATCH = True, SCRATCH.with_name(f"{SCRATCH.name}-late")
    if args.model:
        MODEL, DIMENSIONS = args.model, args.dimensions
        suffix = f"-{args.dimensions}" if args.dimensions else ""
        SCRATCH = SCRATCH.with_name(f"{SCRATCH.name}-{args.model}{suffix}")
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

    calibrated = MODEL is None or searcher.calibration_for(MODEL) is not searcher.CALIBRATIONS[
        searcher.DEFAULT_CALIBRATION
    ]
    output = {
        "benchmark": "search_quality",
        "model": MODEL or "all-minilm-l6-v2 (default)",
        "dimensions": DIMENSIONS or "native",
        "calibration": "the model's own" if calibrated else "the default model's (none measured for it)",
        "file_names": FILE_NAMES and not LATE_CHUNKING,
        "late_chunking": LATE_CHUNKING,
        "limit": LIMIT,
        "fusion": {
            "meaning_weight": searcher.MEANING_WEIGHT,
            "relevance_floor": searcher.RELEVANCE_FLOOR,
            "calibration": list(searcher.CALIBRATIONS[searcher.DEFAULT_CALIBRATION].quantiles),
        },
        "sets": results,
        "machine": common.machine(),
        "date": common.now(),
    }
    common.write_result(args.output or "search_quality", output)
    show(results)
    return 0


def show(results: dict[str, Any]) -> None:
    columns: list[tuple[str, str, str]] = []  # (header, set, metric)
    for name, data in results.items():
        first = next(iter(data["modes"].values()))
        metrics = ["ndcg@10", "mrr@10"] if "ndcg@10" in first["all"] else ["top1", "mrr@10"]
        columns += [(f"{name} {m}", name, m) for m in metrics]
        if "heldout" in first:
            columns.append((f"{name} held-out top1", name, "heldout"))
    rows = []
    for label, _, _ in MODES:
        row = [label]
        for _, name, metric in columns:
            modes = results[name]["modes"]
            value = modes[label]["heldout"]["top1"] if metric == "heldout" else modes[label]["all"][metric]
            row.append(f"{value:.3f}")
        rows.append(row)
    common.print_table(["mode", *(h for h, _, _ in columns)], rows)


if __name__ == "__main__":
    raise SystemExit(main())
