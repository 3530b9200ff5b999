"""Structural variants of the calibrated fusion, measured without searching again.

bench/fusion_tuning.py searched the fusion's constants; this tries changes of shape that a
person might expect to help on a folder of short notes beside long files, each against the
current fusion on the same recorded candidates:

  second    a file's score adds a share of its second-best passage's (evidence from its
            other passages)
  chunks    the meaning signal less gamma x log(the file's passage count): a long file's
            best of many passages is high by chance more often than a note's only one
  length    a passage's keyword evidence shrunk by its length, BM25-style
            ((1 + k) / (1 + k x words / reference), at most 1)
  bm25      the keyword evidence mixed half and half with the passage's BM25 as a share of a
            full match (where the keyword lane found it)
  both      a product term: + c x meaning x keyword evidence
  spread    the meaning signal scaled by how spread the query's candidate cosines are
  rrf       + r x the reciprocal-rank-fusion sum of the file's two lane ranks

Every candidate chunk of a hybrid search (the default settings) is recorded once per set
with its cosine, the query terms it holds, its BM25 where the keyword lane found it and its
length in words, and kept under bench/scratch/quality/<set>-variants.json. Scored: SciFact
train (nDCG@10) and the everyday set, tuning and held-out queries apart (top-1, MRR@10).
The held-out queries were not used to pick anything here; every variant below lost or tied
on the tuning queries, so none was kept.

    python bench/fusion_variants.py [--sets scifact,everyday] [--recollect]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import common
from common import ndcg_at_k, reciprocal_rank
from search_quality import LIMIT, SCRATCH, corpus

# (label, parameters of score_files); the first is the fusion as it is.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("current", {}),
    ("second 0.1", {"second": 0.1}),
    ("second 0.2", {"second": 0.2}),
    ("chunks 0.01", {"gamma": 0.01}),
    ("chunks 0.02", {"gamma": 0.02}),
    ("length k=0.5 ref=100", {"length": 0.5, "reference": 100.0}),
    ("length k=0.5 ref=170", {"length": 0.5, "reference": 170.0}),
    ("length k=1.2 ref=170", {"length": 1.2, "reference": 170.0}),
    ("bm25 half", {"bm25": 0.5}),
    ("both 0.5", {"both": 0.5}),
    ("spread 0.5", {"spread": 0.5}),
    ("rrf 1", {"rrf": 1.0}),
    ("rrf 2", {"rrf": 2.0}),
]


def collect(name: str) -> dict[str, Any]:
    """Every hybrid candidate chunk of every query with the signals the variants read."""
    import localsearch.core.searcher as searcher_module
    from localsearch.core.service import LocalSearch
    from localsearch.core.storage import _FTS_WORD

    c = corpus(name)
    home, docs = SCRATCH / name / "home", SCRATCH / name / "docs"
    os.environ["LOCALSEARCH_HOME"] = str(home)
    current: dict[str, Any] = {}
    original = searcher_module.Searcher._fill_keyword

    def record(self: Any, candidates: Any, found: Any) -> None:
        candidates = list(candidates)
        original(self, candidates, found)
        texts = {cid: hit.text for f in candidates for cid, (hit, _) in f.chunks.items()}
        held = self.index.terms_held(list(found.idf), texts) if found.idf else {}
        current["idf"] = found.idf
        current["files"] = [
            {
                "path": os.path.relpath(f.best.path, docs),
                "semantic_rank": f.semantic_rank,
                "keyword_rank": f.keyword_rank,
                "chunks": [
                    {
                        "cosine": None if math.isnan(cosine) else cosine,
                        "cover": f.chunk_cover.get(cid, 0.0),
                        "held": sorted(held.get(cid, ())),
                        "bm25": f.chunk_bm25.get(cid),
                        "words": len(_FTS_WORD.findall(hit.text)),
                    }
                    for cid, (hit, cosine) in f.chunks.items()
                ],
            }
            for f in candidates
        ]

    searcher_module.Searcher._fill_keyword = record  # type: ignore[method-assign]
    queries: dict[str, Any] = {}
    try:
        with LocalSearch(keep_vectors=True, for_queries=True) as service:
            rows = service.index.conn.execute(
                "SELECT f.path, COUNT(*) FROM chunks c JOIN files f ON f.id = c.file_id GROUP BY f.id"
            ).fetchall()
            passages = {os.path.relpath(path, docs): int(n) for path, n in rows}
            for number, q in enumerate(c.queries):
                current.clear()
                service.searcher.search(q.text, LIMIT)
                queries[q.id] = dict(current, relevant=sorted(q.relevant), split=q.split)
                if number % 100 == 99:
                    print(f"  {name}: {number + 1} queries", file=sys.stderr, flush=True)
    finally:
        searcher_module.Searcher._fill_keyword = original  # type: ignore[method-assign]
    return {"queries": queries, "passages": passages}


def score_files(
    recorded: dict[str, Any],
    *,
    second: float = 0.0,
    gamma: float = 0.0,
    length: float = 0.0,
    reference: float = 100.0,
    bm25: float = 0.0,
    both: float = 0.0,
    spread: float = 0.0,
    rrf: float = 0.0,
) -> dict[str, list[str]]:
    """Each query's top files under one variant; with no parameters, as
    Searcher._fuse_calibrated ranks them."""
    import localsearch.core.searcher as searcher_module

    calibration = searcher_module.CALIBRATIONS[searcher_module.DEFAULT_CALIBRATION]
    weight, power = searcher_module.MEANING_WEIGHT, searcher_module.KEYWORD_POWER
    ranked: dict[str, list[str]] = {}
    for qid, q in recorded["queries"].items():
        idf: dict[str, float] = q.get("idf") or {}
        full = sum(idf.values())
        files = q.get("files", [])
        best_cosines = [max(ch["cosine"] or 0.0 for ch in f["chunks"]) for f in files]
        top = sorted(best_cosines, reverse=True)[:30]
        scale = (0.05 / max(statistics.pstdev(top), 1e-3)) ** spread if len(top) > 1 else 1.0
        scored = []
        for f in files:
            count = recorded["passages"].get(f["path"], 1)
            chunk_scores = []
            for ch in f["chunks"]:
                words = ch["cover"]
                if length and full > 0:
                    shrink = min(1.0, (1 + length) / (1 + length * ch["words"] / reference))
                    words = min(1.0, sum(idf[t] for t in ch["held"]) * shrink / full)
                if bm25 and ch["bm25"] is not None and full > 0:
                    words = (1 - bm25) * words + bm25 * min(1.0, -ch["bm25"] / full)
                meaning = calibration.relevance(ch["cosine"] or 0.0) - gamma * math.log(count)
                meaning *= scale
                chunk_scores.append(weight * meaning + (1 - weight) * words**power + both * meaning * words)
            chunk_scores.sort(reverse=True)
            total = chunk_scores[0] + (second * chunk_scores[1] if len(chunk_scores) > 1 else 0.0)
            total += rrf * sum(1.0 / (60 + r) for r in (f["semantic_rank"], f["keyword_rank"]) if r)
            scored.append((total, f["path"]))
        ranked[qid] = [path for _, path in sorted(scored, key=lambda pair: -pair[0])[:LIMIT]]
    return ranked


def measure(recorded: dict[str, Any], ranked: dict[str, list[str]], graded: bool) -> dict[str, Any]:
    def block(split: str | None) -> dict[str, float]:
        items = [(qid, q) for qid, q in recorded["queries"].items() if split is None or q["split"] == split]
        n = len(items) or 1
        out = {
            "queries": len(items),
            "top1": sum(bool(ranked[i]) and ranked[i][0] in q["relevant"] for i, q in items) / n,
            "mrr@10": sum(reciprocal_rank(ranked[i], set(q["relevant"])) for i, q in items) / n,
        }
        if graded:
            out["ndcg@10"] = sum(ndcg_at_k(ranked[i], set(q["relevant"])) for i, q in items) / n
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}

    if graded:
        return {"all": block(None)}
    return {"all": block(None), "tune": block("tune"), "heldout": block("heldout")}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sets", default="scifact,everyday")
    parser.add_argument("--recollect", action="store_true", help="search again (after a change to the lanes)")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/fusion_variants.json)")
    args = parser.parse_args()
    names = [n for n in args.sets.split(",") if n]
    recorded: dict[str, dict[str, Any]] = {}
    for name in names:
        cache = SCRATCH / f"{name}-variants.json"
        if cache.is_file() and not args.recollect:
            recorded[name] = json.loads(cache.read_text(encoding="utf-8"))
        else:
            recorded[name] = collect(name)
            cache.write_text(json.dumps(recorded[name]), encoding="utf-8")

    results: dict[str, dict[str, Any]] = {}
    for label, parameters in VARIANTS:
        for name in names:
            ranked = score_files(recorded[name], **parameters)
            results.setdefault(label, {"parameters": parameters})[name] = measure(
                recorded[name], ranked, graded=name == "scifact"
            )
    common.write_result(
        args.output or "fusion_variants",
        {
            "benchmark": "fusion_variants",
            "note": "re-ranks recorded hybrid candidates (default model and settings); SciFact "
            "train and the everyday tuning queries are in-sample for the fusion's constants; "
            "held-out queries reported apart",
            "variants": results,
            "machine": common.machine(),
        },
    )
    header = ["variant"]
    for name in names:
        header += ["scifact nDCG@10"] if name == "scifact" else [f"{name} tune top1", f"{name} held-out top1"]
    rows = []
    for label, by_set in results.items():
        row = [label]
        for name in names:
            if name == "scifact":
                row.append(f"{by_set[name]['all']['ndcg@10']:.4f}")
            else:
                row += [f"{by_set[name]['tune']['top1']:.3f}", f"{by_set[name]['heldout']['top1']:.3f}"]
        rows.append(row)
    common.print_table(header, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
