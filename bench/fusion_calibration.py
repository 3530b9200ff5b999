"""What a cosine means for the default model: the distribution of its relevant pairs.

For every SciFact train query, the cosine between the query and the best chunk of each of
its relevant documents (the relevant pairs), and the cosine of the best non-relevant file
the meaning lane ranks first (the pairs a search must push down). Hybrid search reads a
cosine as the share of relevant pairs that score no higher (searcher.CALIBRATIONS); this
prints the quantiles to put there and writes them with both distributions to
bench/results/fusion_calibration.json.

Uses the SciFact index bench/search_quality.py builds (bench/scratch/quality/scifact);
run that first with --sets scifact.

    python bench/fusion_calibration.py [--points 21] [--scratch DIR]

--scratch reads the SciFact index of another run of bench/search_quality.py, e.g. the
folder `--model nomic-embed-text-v1.5` indexes into (bench/scratch/quality-<model>/), to
measure that model's calibration: the model is the one that index's settings name.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import common
import numpy as np
from search_quality import SCRATCH, scifact_corpus


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--points", type=int, default=21, help="quantiles to report (evenly spaced, 0 and 1 included)"
    )
    parser.add_argument(
        "--output", type=Path, help="JSON file (default bench/results/fusion_calibration.json)"
    )
    parser.add_argument(
        "--scratch", type=Path, default=SCRATCH, help="where search_quality.py put the scifact/ index"
    )
    args = parser.parse_args()
    home, docs = args.scratch / "scifact" / "home", args.scratch / "scifact" / "docs"
    if not (home / "data" / "index.sqlite3").is_file():
        raise SystemExit("no SciFact index: run bench/search_quality.py --sets scifact first")
    os.environ["LOCALSEARCH_HOME"] = str(home)
    from localsearch.core.service import LocalSearch

    corpus = scifact_corpus()
    relevant: list[float] = []
    best_other: list[float] = []
    with LocalSearch(keep_vectors=True, for_queries=True) as service:
        searcher, index = service.searcher, service.index
        for q in corpus.queries:
            vector = searcher.embed_query(q.text)
            for name in q.relevant:
                ids = index.file_chunk_ids(str(docs / name))
                vectors = index.chunk_vectors(service.space, ids)
                if vectors:
                    relevant.append(max(float(v @ vector) for v in vectors.values()))
            hits = searcher.search(q.text, 10, mode="semantic")
            others = [h.cosine for h in hits if Path(h.path).name not in q.relevant]
            if others:
                best_other.append(others[0])
    shares = np.linspace(0.0, 1.0, args.points)
    quantiles = [round(float(c), 4) for c in np.quantile(relevant, shares)]
    other_quantiles = [round(float(c), 4) for c in np.quantile(best_other, shares)]
    result = {
        "benchmark": "fusion_calibration",
        "model": service.space.model,
        "dataset": "SciFact train (in-sample for the calibration it produces)",
        "relevant_pairs": len(relevant),
        "queries": len(corpus.queries),
        "shares": [round(float(s), 4) for s in shares],
        "relevant_cosine_quantiles": quantiles,
        "best_nonrelevant_cosine_quantiles": other_quantiles,
        "date": common.now(),
    }
    common.write_result(args.output or "fusion_calibration", result)
    print(f"{len(relevant)} relevant pairs over {len(corpus.queries)} queries")
    common.print_table(
        ("share", "relevant", "best other"),
        [
            (f"{s:.2f}", f"{a:.4f}", f"{b:.4f}")
            for s, a, b in zip(shares, quantiles, other_quantiles, strict=True)
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
