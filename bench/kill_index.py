"""SIGKILL at random moments, 20 times over one indexing run of 1,000 SciFact files, with
the real model through the real command line (the command and its engine child killed
together, as a power cut or the OOM killer would). Every restart must open the index and
go on; the final index is compared with a clean run's: files, chunks and vectors.

    nice -n 10 python bench/kill_index.py               # writes bench/results/kill_index.json
    python bench/kill_index.py --files 100 --kills 5    # a quick look
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import common

REPO = common.PROJECT_DIR
sys.path.insert(0, str(REPO))

from tests import killing  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--output", type=Path, default=common.RESULTS_DIR / "kill_index.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kill-index-") as scratch:
        work = Path(scratch)
        docs = work / "docs"
        written = killing.write_scifact(docs, args.files)
        clean_summary, clean_seconds = killing.run_to_end(docs, work / "clean")
        print(f"clean run: {written} files in {clean_seconds:.1f} s")
        rng = random.Random(args.seed)
        started = time.monotonic()
        record = killing.kill_repeatedly(docs, work / "killed", args.kills, rng, written)
        killed_seconds = time.monotonic() - started
        final, final_seconds = killing.run_to_end(docs, work / "killed")
        again, _ = killing.run_to_end(docs, work / "killed")
        comparison = killing.compare(
            killing.content(work / "killed" / "data" / "index.sqlite3"),
            killing.content(work / "clean" / "data" / "index.sqlite3"),
        )
    equal = bool(
        comparison["files_equal"]
        and comparison["chunks_equal"]
        and comparison["vector_keys_equal"]
        and comparison["integrity"] == "ok"
        and not any(comparison["orphans"].values())  # type: ignore[attr-defined]
    )
    result = {
        "benchmark": "kill_index",
        "files": written,
        "kills_requested": args.kills,
        "kills": [asdict(k) for k in record.kills],
        "runs_finished_before_their_kill": record.finished_early,
        "clean_seconds": round(clean_seconds, 1),
        "clean_summary": clean_summary,
        "killed_phase_seconds": round(killed_seconds, 1),
        "final_run": {"seconds": round(final_seconds, 1), **final},
        "rerun_after_final": {k: again[k] for k in ("files_indexed", "files_reused", "tokens_embedded")},
        "comparison": comparison,
        "equal_to_clean_run": equal,
        "machine": common.machine(),
    }
    common.write_result(args.output, result)
    common.print_table(
        ("kill", "after s", "files done in run", "files in index"),
        [(n, k.after_seconds, k.files_done_before, k.committed_total) for n, k in enumerate(record.kills, 1)],
    )
    print(
        f"final run: {final.get('files_indexed')} indexed in {final_seconds:.1f} s; equal to clean: {equal}"
    )
    print({k: v for k, v in comparison.items() if k != "orphans"}, comparison["orphans"])


if __name__ == "__main__":
    main()
