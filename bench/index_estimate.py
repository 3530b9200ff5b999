"""Tokens per byte of real folders, and the welcome view's time estimate against the time
indexing really took.

    python bench/index_estimate.py

Folders: bench/everyday/docs (notes, mail, recipes: text) and ../shared/evaldata/pdfs (23
real PDFs: packed). Each is indexed by `localsearch index --json` with the default model in
a fresh LOCALSEARCH_HOME. tokens_per_byte is tokens embedded over the bytes of the files
(gui/index_estimate.py takes its TOKENS_PER_BYTE from here); "estimated" is what the welcome
view would have said with the figures in gui/index_estimate.py. Writes
bench/results/index_estimate.json. Timings on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
EVALDATA = Path(os.environ.get("LOCALSEARCH_EVALDATA", ROOT.parent / "shared" / "evaldata"))
FOLDERS = {"text": ROOT / "bench" / "everyday" / "docs", "packed": EVALDATA / "pdfs"}


def _index(folder: Path) -> tuple[float, dict]:
    """Index folder in a fresh home with the CLI: wall seconds and its JSON summary."""
    home = tempfile.mkdtemp(prefix="localsearch-estimate-")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "localsearch", "index", "--json", str(folder)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LOCALSEARCH_HOME": home, "PYTHONPATH": str(ROOT)},
    )
    return time.perf_counter() - started, json.loads(done.stdout)


def main() -> int:
    from localsearch.gui.index_estimate import MINILM_TOKENS_PER_SECOND, estimate_seconds, scan_folder

    empty = Path(tempfile.mkdtemp(prefix="localsearch-empty-"))
    (empty / "one.txt").write_text("One short note, so that the model is loaded.", encoding="utf-8")
    startup, _ = _index(empty)
    print(f"startup (CLI, model loaded, one tiny file): {startup:.1f} s")
    rows = []
    for kind, folder in FOLDERS.items():
        scan = scan_folder(folder)
        wall, summary = _index(folder)
        tokens = int(summary["tokens_embedded"])
        # What reading the files costs beyond embedding their tokens (extraction, chunking,
        # storing), per text file and per byte of packed file.
        beyond = max(0.0, wall - startup - tokens / MINILM_TOKENS_PER_SECOND)
        rows.append(
            {
                "kind": kind,
                "folder": os.path.relpath(folder, ROOT),
                "files": scan.files,
                "bytes": scan.bytes_by_kind[kind],
                "tokens_embedded": tokens,
                "tokens_per_byte": round(tokens / scan.bytes_by_kind[kind], 4),
                "wall_seconds": round(wall, 1),
                "overhead_seconds_per_file": round(beyond / scan.files, 4),
                "overhead_seconds_per_megabyte": round(beyond / (scan.bytes_by_kind[kind] / 1e6), 2),
                "estimated_seconds": round(estimate_seconds(scan, "all-minilm-l6-v2"), 1),
            }
        )
        print(
            f"{kind:7s} {scan.files:4d} files {scan.bytes_by_kind[kind]:>10,} bytes {tokens:>8,} tokens "
            f"{rows[-1]['tokens_per_byte']:.4f} tokens/byte  took {wall:5.1f} s, "
            f"estimated {rows[-1]['estimated_seconds']:5.1f} s"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "index_estimate.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "index_estimate",
                "model": "all-minilm-l6-v2 (default)",
                "startup_seconds": round(startup, 1),
                "folders": rows,
                "machine": {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "cpu_count": os.cpu_count(),
                    "platform": platform.platform(),
                    "load_average": os.getloadavg(),
                    "note": "2 cores shared with other work: timings are noisy",
                },
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
