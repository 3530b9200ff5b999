"""How the calibrated fusion's constants were chosen: hybrid quality over a grid of them.

Each query is searched once in hybrid mode, and its candidates are recorded just before
they are mixed: every chunk of every candidate file with its cosine and its keyword
evidence (the share of the query's term weight it holds). The candidates do not depend
on the fusion's constants, so each point of the grid (meaning weight, keyword exponent,
cosine scale) re-mixes them as Searcher._fuse_calibrated does, without searching
again. Scored: SciFact train (nDCG@10) and the tuning part of the everyday set (top-1,
MRR@10); the everyday set's held-out queries are never read. Uses the indexes
bench/search_quality.py builds (bench/scratch/quality); run it first. Every figure here
is in-sample for the constants it picks; bench/search_quality.py gives the real runs.

    python bench/fusion_tuning.py [--weights 0.5 0.7 0.9] [--powers 1 2 3] [--sets scifact,everyday]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_quality import LIMIT, RESULTS, SCRATCH, Query, corpus, ndcg_at_10, reciprocal_rank

# Per query: per candidate file: its path and its chunks as (cosine, keyword evidence).
Candidates = dict[str, list[tuple[str, list[tuple[float, float]]]]]


def collect(name: str, queries: list[Query]) -> Candidates:
    import localsearch.core.searcher as searcher_module
    from localsearch.core.service import LocalSearch

    home, docs = SCRATCH / name / "home", SCRATCH / name / "docs"
    os.environ["LOCALSEARCH_HOME"] = str(home)
    recorded: Candidates = {}
    current: list[tuple[str, list[tuple[float, float]]]] = []
    original = searcher_module.Searcher._fuse_calibrated

    def record(candidates: Any, calibration: Any, found: Any) -> None:
        candidates = list(candidates)
        for f in candidates:
            chunks = []
            for cid, (_, cosine) in f.chunks.items():
                chunks.append((cosine, searcher_module._words_signal(f, cid, found)))
            current.append((os.path.relpath(f.best.path, docs), chunks))
        original(candidates, calibration, found)

    searcher_module.Searcher._fuse_calibrated = staticmethod(record)  # type: ignore[method-assign]
    try:
        with LocalSearch(keep_vectors=True, for_queries=True) as service:
            for number, q in enumerate(queries):
                current.clear()
                service.searcher.search(q.text, LIMIT)
                recorded[q.id] = list(current)
                if number % 100 == 99:
                    print(f"  {name}: {number + 1} queries", file=sys.stderr, flush=True)
    finally:
        searcher_module.Searcher._fuse_calibrated = original  # type: ignore[method-assign]
    return recorded


def rank(candidates: Candidates, weight: float, power: float, scale: str) -> dict[str, list[str]]:
    """Each query's files ordered as Searcher._fuse_calibrated would order them."""
    import localsearch.core.searcher as searcher_module

    searcher_module.MEANING_SCALE = scale
    calibration = searcher_module.CALIBRATIONS[searcher_module.DEFAULT_CALIBRATION]
    out: dict[str, list[str]] = {}
    for qid, files in candidates.items():
        scored = []
        for path, chunks in files:
            best = max(
                weight * calibration.relevance(cosine) + (1 - weight) * words**power
                for cosine, words in chunks
            )
            scored.append((best, path))
        out[qid] = [p for _, p in sorted(scored, key=lambda pair: -pair[0])[:LIMIT]]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    parser.add_argument("--powers", type=float, nargs="+", default=[1.0, 2.0, 3.0], help="keyword exponents")
    parser.add_argument("--scales", nargs="+", default=["quantile", "linear"], help="cosine scales")
    parser.add_argument("--sets", default="scifact,everyday")
    parser.add_argument("--recollect", action="store_true", help="search again (after a change to the lanes)")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/fusion_tuning.json)")
    args = parser.parse_args()

    names = args.sets.split(",")
    data = {}
    for name in names:
        c = corpus(name)
        queries = [q for q in c.queries if q.split != "heldout"]  # never tune on held-out queries
        # Recorded once per index and kept in scratch: the grid can be widened without searching.
        cache = SCRATCH / f"{name}-fusion-candidates.json"
        if cache.is_file() and not args.recollect:
            candidates = json.loads(cache.read_text(encoding="utf-8"))
        else:
            candidates = collect(name, queries)
            cache.write_text(json.dumps(candidates), encoding="utf-8")
        data[name] = (c, queries, candidates)

    rows: dict[str, dict[str, Any]] = {}
    for weight, power, scale in itertools.product(args.weights, args.powers, args.scales):
        label = f"w={weight:.2f} p={power:g} {scale}"
        for name, (c, queries, candidates) in data.items():
            ranked = rank(candidates, weight, power, scale)
            n = len(queries)
            row = {
                "top1": round(
                    sum(bool(ranked[q.id]) and ranked[q.id][0] in q.relevant for q in queries) / n, 4
                ),
                "mrr@10": round(sum(reciprocal_rank(ranked[q.id], q.relevant) for q in queries) / n, 4),
            }
            if c.graded:
                row["ndcg@10"] = round(sum(ndcg_at_10(ranked[q.id], q.relevant) for q in queries) / n, 4)
            rows.setdefault(label, {})[name] = row

    out = {
        "benchmark": "fusion_tuning",
        "note": "in-sample: SciFact train and the everyday set's tuning queries (held-out ones never read); "
        "candidates recorded once, re-mixed per grid point",
        "queries": {name: len(queries) for name, (_, queries, _) in data.items()},
        "grid": rows,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = args.output or RESULTS / "fusion_tuning.json"
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(
        f"{'variant':<32}"
        + "".join(f"{n + (' nDCG' if data[n][0].graded else ' top1'):>16}{'MRR':>8}" for n in names)
    )
    for label, row in rows.items():
        cells = "".join(
            f"{row[n].get('ndcg@10', row[n]['top1']):>16.4f}{row[n]['mrr@10']:>8.4f}" for n in names
        )
        print(f"{label:<32}{cells}")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
