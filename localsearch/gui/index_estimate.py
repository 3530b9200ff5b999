"""How much there is to read in some folders, and about how long indexing it takes with
each model: what the welcome view shows before anything starts.

The figures are measurements committed under bench/results (named beside each), not
guesses; `tests/gui/test_index_estimate.py` checks they still match those files. The time is
an estimate for a person to choose by ("about 4 minutes"), not a promise: the machine, the
load on it and the kind of text all move it."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

COUNT_CAP = 20_000  # files: past this, "20,000+" and an estimate for that many

# Files whose bytes are mostly text, and files whose bytes are packed (compressed streams,
# markup, fonts): a byte of the second kind holds far fewer words.
PACKED_SUFFIXES = frozenset({".pdf", ".docx", ".odt", ".epub"})


@dataclass(frozen=True)
class Throughput:
    tokens_per_second: float
    source: str  # the committed result file and the field the figure comes from


# Indexing throughput of the whole pipeline (extract, chunk, embed, store), 2 threads.
MINILM_TOKENS_PER_SECOND = 8069.4  # bench/results/index_pipeline.json pipeline.tokens_per_second
# nomic-embed-text-v1.5 against all-MiniLM-L6-v2 indexing the same 20 files in the same run
# (bench/results/nomic_matryoshka-indexing-20files.json): median CPU seconds 30.75 against
# 4.7, the figure the model manager's speed table uses too. CPU time, not wall time: that
# run shared the machine with other work.
NOMIC_SLOWDOWN = 30.75 / 4.7

THROUGHPUT: dict[str, Throughput] = {
    "all-minilm-l6-v2": Throughput(
        MINILM_TOKENS_PER_SECOND, "bench/results/index_pipeline.json: pipeline.tokens_per_second"
    ),
    "nomic-embed-text-v1-5": Throughput(
        MINILM_TOKENS_PER_SECOND / NOMIC_SLOWDOWN,
        "index_pipeline.json over the CPU-time ratio in nomic_matryoshka-indexing-20files.json",
    ),
}

# Measured by bench/index_estimate.py on real folders (bench/results/index_estimate.json),
# the default model, a machine at load 12: the estimates lean long.
# Tokens a byte of file holds (folders[].tokens_per_byte).
TOKENS_PER_BYTE = {"text": 0.253, "packed": 0.007}
# Reading packed files (PDF parsing above all) beyond embedding their words, whatever the
# model (folders[kind=packed].overhead_seconds_per_megabyte). Text files: the pipeline's
# tokens/s already holds their reading (5,183 small files in index_pipeline.json).
PACKED_SECONDS_PER_MEGABYTE = 15.01
# Starting the indexing child and loading the model, before the first file (startup_seconds).
STARTUP_SECONDS = 6.0


@dataclass
class FolderScan:
    """Readable files below some folders (hidden folders skipped), and their bytes by kind."""

    files: int = 0
    bytes_by_kind: dict[str, int] = field(default_factory=lambda: {"text": 0, "packed": 0})
    capped: bool = False

    def add(self, other: FolderScan) -> FolderScan:
        kinds = {k: self.bytes_by_kind.get(k, 0) + other.bytes_by_kind.get(k, 0) for k in TOKENS_PER_BYTE}
        return FolderScan(self.files + other.files, kinds, self.capped or other.capped)

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_by_kind.values())

    def tokens(self) -> int:
        return int(sum(TOKENS_PER_BYTE[k] * n for k, n in self.bytes_by_kind.items()))


def scan_folder(folder: Path, cap: int = COUNT_CAP) -> FolderScan:
    """Count the files localsearch can read below folder, up to cap, and their sizes."""
    from localsearch.core.extract import supported

    scan = FolderScan()
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(root, name)
            if name.startswith(".") or not supported(path):
                continue
            try:
                size = path.stat().st_size
            except OSError:
                continue  # gone or unreadable: the indexer will say so
            kind = "packed" if path.suffix.lower() in PACKED_SUFFIXES else "text"
            scan.bytes_by_kind[kind] += size
            scan.files += 1
            if scan.files >= cap:
                scan.capped = True
                return scan
    return scan


def estimate_seconds(scan: FolderScan, model: str) -> float:
    """Seconds to index what scan found with model (its catalog name)."""
    throughput = THROUGHPUT.get(model, THROUGHPUT["all-minilm-l6-v2"])
    reading = scan.bytes_by_kind.get("packed", 0) / 1e6 * PACKED_SECONDS_PER_MEGABYTE
    return STARTUP_SECONDS + reading + scan.tokens() / throughput.tokens_per_second


def say_duration(seconds: float) -> str:
    """A duration the way a person says it: "under a minute", "about 4 minutes", "about 2 hours"."""
    if seconds < 60:
        return "under a minute"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours = seconds / 3600
    if hours < 10:
        return f"about {hours:.1f} hours".replace(".0 hours", " hours")
    return f"about {round(hours)} hours"
