"""Clocks and modification times that cannot be trusted: files dated in the future or the
far past, a system clock set back while watching (after a sleep, a time-zone or NTP
correction). Nothing waits for ever, nothing is missed, nothing is embedded twice."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from localsearch.core import indexer as indexer_module
from localsearch.core.indexer import Indexer, IndexOptions
from localsearch.core.searcher import Searcher
from localsearch.core.storage import Index
from localsearch.core.watch import FolderWatcher
from tests.fakes import FakeEmbedder

# The app's own patience: files saved less than 0.3 s ago wait, for at most 10 s.
APP_OPTIONS = IndexOptions(settle_seconds=0.3, settle_timeout=10.0)

FUTURE = 4_102_444_800.0  # 2100-01-01
PAST = 31_536_000.0  # 1971-01-01


def _run(indexer: Indexer, roots: list[Path]) -> tuple[object, float]:
    started = time.monotonic()
    final = list(indexer.run(roots))[-1]
    return final, time.monotonic() - started


def _names(searcher: Searcher, query: str) -> list[str]:
    return sorted(h.name for h in searcher.search(query, 10, mode="keyword"))


def test_files_dated_in_the_future_or_far_past_are_indexed_at_once(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    dated = {"future.txt": FUTURE, "past.txt": PAST, "epoch.txt": 0.0, "now.txt": time.time() - 60}
    for name, mtime in dated.items():
        (root / name).write_text(f"volcano notes from {name}")
        os.utime(root / name, (mtime, mtime))
    space = index.ensure_space(fake_embedder.name, fake_embedder.dimensions)
    indexer = Indexer(index, fake_embedder, space, APP_OPTIONS)
    final, seconds = _run(indexer, [root])
    assert final.files_indexed == 4  # type: ignore[attr-defined]
    # A future date is not "saved a moment ago": no waiting out the 10 s settle limit.
    assert seconds < 5, seconds
    assert _names(Searcher(index, fake_embedder, space), "volcano") == sorted(dated)

    embedded = fake_embedder.embedded_sequences
    again, _ = _run(indexer, [root])
    assert again.files_unchanged == 4 and fake_embedder.embedded_sequences == embedded  # type: ignore[attr-defined]


def test_an_edit_dated_back_in_time_is_still_seen(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    """A file restored from a backup, or edited by a tool that keeps old dates: same size,
    an older modification time, other words."""
    root = tmp_path / "docs"
    root.mkdir()
    note = root / "note.txt"
    note.write_text("apples and pears")
    os.utime(note, (FUTURE, FUTURE))
    space = index.ensure_space(fake_embedder.name, fake_embedder.dimensions)
    indexer = Indexer(index, fake_embedder, space, APP_OPTIONS)
    _run(indexer, [root])
    note.write_text("ravens and kites")  # same length
    os.utime(note, (PAST, PAST))
    list(indexer.update([note]))
    searcher = Searcher(index, fake_embedder, space)
    assert _names(searcher, "ravens") == ["note.txt"] and _names(searcher, "apples") == []


class _ClockSetBack:
    """time.time() as if the system clock was set back an hour at `at` (monotonic time
    goes on: the watcher and the settle deadline use that)."""

    def __init__(self, back: float = 3600.0) -> None:
        self.back = back
        self.real = time.time

    def __call__(self) -> float:
        return self.real() - self.back


@pytest.mark.parametrize("back", [3600.0, 86_400.0 * 365])
def test_the_clock_set_back_while_watching(
    back: float, tmp_path: Path, index: Index, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text("apples and pears")
    space = index.ensure_space(fake_embedder.name, fake_embedder.dimensions)
    indexer = Indexer(index, fake_embedder, space, APP_OPTIONS)
    _run(indexer, [root])
    searcher = Searcher(index, fake_embedder, space)
    watcher = FolderWatcher([str(root)])
    watcher.start()
    try:
        time.sleep(0.2)
        # The files saved from now on carry the true time; the process's clock is behind.
        monkeypatch.setattr(indexer_module.time, "time", _ClockSetBack(back))
        (root / "b.txt").write_text("boats on the river")
        (root / "a.txt").write_text("apricots now")
        started = time.monotonic()
        seen: set[str] = set()
        while not {str(root / "a.txt"), str(root / "b.txt")} <= seen and time.monotonic() - started < 10:
            seen |= watcher.next_batch(quiet=0.2, timeout=1)
        assert {str(root / "a.txt"), str(root / "b.txt")} <= seen
        final = list(indexer.update(seen))[-1]
        # Saved "in the future" by this process's clock: read at once, not after 10 s.
        assert time.monotonic() - started < 6
        assert final.files_indexed == 2
    finally:
        watcher.stop()
    assert _names(searcher, "boats") == ["b.txt"]
    assert _names(searcher, "apricots") == ["a.txt"] and _names(searcher, "pears") == []
