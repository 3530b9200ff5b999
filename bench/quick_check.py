"""What the start-up damage check costs, and what its stamp saves a one-shot search.

Every opener of the index may run SQLite's `PRAGMA quick_check` (storage.damage), which
reads the whole file; a one-shot `localsearch search` runs it only when the file was
written since it last passed (storage.damage_since_checked). This times both on the
synthetic indexes of bench/search_latency.py (built by it; kept under bench/scratch/):
the check itself, cold (the first read) and warm (the file in the page cache), and the
stamp comparison that replaces it when nothing changed.

    python bench/quick_check.py [--sizes 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import common

sys.path.insert(0, str(common.PROJECT_DIR))

from localsearch.core.storage import Index, damage, damage_since_checked


def _timed(check: object, path: Path) -> float:
    assert callable(check)
    started = time.perf_counter()
    problem = check(path)
    elapsed = (time.perf_counter() - started) * 1000
    if problem is not None:
        raise SystemExit(f"{path} is damaged: {problem}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/quick_check.json)")
    args = parser.parse_args()
    started = common.start()
    rows = []
    results = {}
    for size in args.sizes:
        path = common.SCRATCH_DIR / f"latency-{size}.sqlite3"
        if not path.is_file():
            raise SystemExit(f"{path} is missing: run bench/search_latency.py --sizes {size} first")
        first = _timed(damage, path)  # the first read after the file was written or copied
        warm = [_timed(damage, path) for _ in range(args.rounds)]
        Index.open(path, check=True).close()  # passes, and leaves the stamp
        stamped = [_timed(damage_since_checked, path) for _ in range(args.rounds)]
        results[str(size)] = {
            "bytes": path.stat().st_size,
            "quick_check_first_ms": round(first, 1),
            "quick_check_warm_ms": [round(v, 1) for v in warm],
            "stamp_unchanged_ms": [round(v, 3) for v in stamped],
        }
        rows.append(
            (
                f"{size:,}",
                f"{path.stat().st_size / 1e6:,.0f} MB",
                f"{first:,.0f}",
                f"{statistics.median(warm):,.0f}",
                f"{statistics.median(stamped):.3f}",
            )
        )
    report = {
        "benchmark": "quick_check",
        "results": results,
        "machine": common.machine(started=started),
    }
    out = common.write_result(args.output or "quick_check", report)
    common.print_table(["chunks", "file", "first ms", "warm ms (median)", "stamp ms (median)"], rows)
    print(f"written to {common.shown(out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
