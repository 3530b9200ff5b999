"""Run each fault and defect test of RELIABILITY.md several times and record how each run
ended, for the table's "how many times" and "outcome" columns.

    python bench/fault_repeats.py              # 5 runs of each, bench/results/fault_repeats.json
    python bench/fault_repeats.py --runs 2 -k disk

Each run is a fresh pytest process (`-p no:cacheprovider`), so no state carries over.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import common
from common import PROJECT_DIR

RESULTS_PATH = common.RESULTS_DIR / "fault_repeats.json"

TESTS = [
    "tests/core/test_codes.py::test_code_cache_follows_a_rewritten_file_whose_chunk_ids_were_the_highest",
    "tests/test_settings.py::test_settings_this_version_does_not_know_survive_a_save",
    "tests/core/test_service.py::test_status_reports_the_space_the_settings_choose_after_384_256_384",
    "tests/gui/test_index_lane.py::test_no_log_text_reaches_the_window",
    "tests/core/test_jina_v3.py::test_a_failure_between_renames_leaves_all_files_or_none",
    "tests/core/test_faults.py::test_a_full_disk_pauses_indexing_and_it_goes_on_when_space_returns",
    "tests/core/test_faults.py::test_cancel_while_the_disk_is_full_keeps_what_was_done",
    "tests/test_faults.py::test_a_real_full_disk_pauses_the_indexing_child_and_it_resumes_when_space_returns",
    "tests/test_faults.py::test_the_window_says_disk_full_in_words",
    "tests/core/test_faults.py::test_a_damaged_index_is_set_aside_and_rebuilt_with_folders_and_settings_kept",
    "tests/core/test_faults.py::test_a_write_ahead_log_deleted_mid_transaction_loses_nothing_of_the_files",
    "tests/core/test_storage.py::test_database_from_a_newer_version_is_refused",
    "tests/core/test_faults.py::test_an_index_from_a_newer_version_is_refused_and_left_as_it_was",
    "tests/core/test_faults.py::test_the_command_line_says_the_index_was_rebuilt",
    "tests/core/test_faults.py::test_the_writer_lock_is_held_across_processes_and_freed_when_its_holder_dies",
    "tests/core/test_faults.py::test_an_indexing_run_waits_for_the_one_holding_the_lock",
    "tests/test_faults.py::test_the_window_child_and_the_command_line_index_one_after_the_other",
    "tests/core/test_embedding_process.py::test_a_file_that_kills_the_engine_is_recorded_and_indexing_goes_on",
    "tests/test_faults.py::test_an_engine_abort_in_the_window_child_costs_one_file",
    "tests/test_crash_safety.py::test_killing_the_real_engine_child_and_the_command_loses_nothing",
]


def run_once(test: str) -> dict[str, object]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", test],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    outcome = (
        "passed"
        if done.returncode == 0 and "skipped" not in tail
        else "skipped"
        if "skipped" in tail
        else "failed"
    )
    return {"outcome": outcome, "seconds": round(time.perf_counter() - started, 1), "summary": tail}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="runs of each test (default 5)")
    parser.add_argument("-k", dest="keyword", default="", help="only tests whose id holds this text")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    results = []
    for test in TESTS:
        if args.keyword not in test:
            continue
        runs = [run_once(test) for _ in range(args.runs)]
        counts = {kind: sum(r["outcome"] == kind for r in runs) for kind in ("passed", "failed", "skipped")}
        results.append({"test": test, "runs": len(runs), **counts, "each": runs})
        print(f"{counts['passed']}/{len(runs)} passed  {test}", flush=True)
    machine = common.machine()
    data = {
        "date": machine["date"],
        "platform": machine["platform"],
        "python": machine["python"],
        "euid": os.geteuid() if hasattr(os, "geteuid") else None,
        "machine": machine,
        "results": results,
    }
    common.write_result(args.output, data)
    return 0 if all(r["failed"] == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
