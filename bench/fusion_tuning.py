"""How the calibrated fusion's constants were chosen: hybrid quality over a grid of them.

For each meaning weight (and keyword-share exponent), hybrid search over SciFact train
(nDCG@10) and over the tuning part of the everyday set (top-1, MRR@10). The everyday set's
held-out queries are never read here. Uses the indexes bench/search_quality.py builds
(bench/scratch/quality); run it first. Every figure here is in-sample for the constants
it picks.

    python bench/fusion_tuning.py [--weights 0.4 0.5 0.6] [--sets scifact,everyday]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_quality import LIMIT, RESULTS, SCRATCH, corpus, ndcg_at_10, reciprocal_rank


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.7, 0.8])
    parser.add_argument("--sets", default="scifact,everyday")
    args = parser.parse_args()
    import localsearch.core.searcher as searcher_module
    from localsearch.core.service import LocalSearch

    rows: dict[str, dict[str, Any]] = {}
    for name in args.sets.split(","):
        c = corpus(name)
        queries = [q for q in c.queries if q.split != "heldout"]  # never tune on held-out queries
        home, docs = SCRATCH / name / "home", SCRATCH / name / "docs"
        os.environ["LOCALSEARCH_HOME"] = str(home)
        with LocalSearch(keep_vectors=True, for_queries=True) as service:
            s = service.searcher
            for weight in args.weights:
                searcher_module.MEANING_WEIGHT = weight
                ranked = {
                    q.id: [os.path.relpath(h.path, docs) for h in s.search(q.text, LIMIT)]
                    for q in queries
                }
                n = len(queries)
                row = rows.setdefault(f"{weight:.2f}", {})
                row[name] = {
                    "queries": n,
                    "top1": round(
                        sum(bool(ranked[q.id]) and ranked[q.id][0] in q.relevant for q in queries) / n, 4
                    ),
                    "mrr@10": round(sum(reciprocal_rank(ranked[q.id], q.relevant) for q in queries) / n, 4),
                }
                if c.graded:
                    row[name]["ndcg@10"] = round(
                        sum(ndcg_at_10(ranked[q.id], q.relevant) for q in queries) / n, 4
                    )
                print(f"weight {weight:.2f} {name}: {row[name]}", file=sys.stderr, flush=True)
    out = {
        "benchmark": "fusion_tuning",
        "note": "in-sample: SciFact train and the everyday set's tuning queries (held-out ones not used)",
        "grid": rows,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = RESULTS / "fusion_tuning.json"
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"{'weight':>6}" + "".join(f"{n:>22}" for n in args.sets.split(",")))
    for weight, row in rows.items():
        cells = []
        for name in args.sets.split(","):
            r = row.get(name, {})
            main_metric = r.get("ndcg@10", r.get("top1", 0.0))
            cells.append(f"{main_metric:>12.4f} {r.get('mrr@10', 0.0):>9.4f}")
        print(f"{weight:>6}" + "".join(cells))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
