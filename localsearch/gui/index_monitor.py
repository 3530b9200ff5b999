"""The window follows the index, whoever writes it.

A lane of its own (a QThread with its own read-write connection, no embedder) that
- probes SQLite's `PRAGMA data_version` once a second: it changes whenever another
  connection commits (the window's indexing child, a `localsearch index` in a terminal), and
  only then is the status (folders, counts, failures) read again and sent to the window;
- removes folders from the index, off the UI thread (a big folder's DELETE takes seconds);
- reads the passages the preview pane shows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from localsearch.core.searcher import ChunkMatch, SearchHit, make_snippet
from localsearch.core.service import LocalSearch

log = logging.getLogger(__name__)

PROBE_MS = 1000
# While another process commits every file, status is read at most this often.
MIN_STATUS_SECONDS = 1.5


@dataclass(frozen=True)
class Passage:
    """One matching chunk of a file, flattened, with the query's words to mark."""

    chunk: int
    page: int | None
    heading: str | None
    score: float
    text: str
    highlights: list[tuple[int, int]] = field(default_factory=list)


# A passage whose cosine to the query is below this is about something else: the preview
# leaves it out (the search scores every chunk of a file it lists).
RELATED_COSINE = 0.2


def relevant_matches(hit: SearchHit) -> list[ChunkMatch]:
    """The file's other matching passages worth showing: those about the query (the
    search lists every chunk it scored, unrelated ones included), best first."""
    others = [m for m in hit.matches if m.chunk != hit.chunk and m.score >= RELATED_COSINE]
    return sorted(others, key=lambda m: m.score, reverse=True)


class _MonitorWorker(QObject):
    status = Signal(dict)
    removed = Signal(list)  # folders removed
    passages = Signal(int, object, list)  # request number, hit, passages
    failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self._service: LocalSearch | None = None
        self._version: int | None = None
        self._status_at = 0.0
        self._stale = False

    def _get(self) -> LocalSearch:
        if self._service is None:
            self._service = LocalSearch()  # opens the database only; no model is loaded
        return self._service

    def _emit_status(self) -> None:
        self._status_at = time.monotonic()
        self._stale = False
        self.status.emit(self._get().status(storage=False))

    @Slot()
    def probe(self) -> None:
        """Send the status when another connection committed since the last look."""
        try:
            version = self._get().data_version()
            if version != self._version:
                self._version = version
                self._stale = True
            if self._stale and time.monotonic() - self._status_at >= MIN_STATUS_SECONDS:
                self._emit_status()
        except Exception:  # a locked or vanished database: try again at the next probe
            log.exception("index probe failed")

    @Slot()
    def refresh(self) -> None:
        try:
            self._version = self._get().data_version()
            self._emit_status()
        except Exception:
            log.exception("status failed")

    @Slot(list)
    def remove(self, folders: list[str]) -> None:
        try:
            removed = self._get().remove_paths(folders)
        except Exception as exc:
            log.exception("removing %s failed", folders)
            self.failed.emit(f"Could not remove {', '.join(folders)}: {exc}")
            removed = []
        self.removed.emit(removed)
        self.refresh()

    @Slot(int, object, str)
    def read_passages(self, number: int, hit: SearchHit, query: str) -> None:
        others = relevant_matches(hit)
        chunk_ids = [hit.chunk] + [m.chunk for m in others]
        scores = {m.chunk: m.score for m in others}
        scores[hit.chunk] = hit.score
        out: list[Passage] = []
        try:
            index = self._get().index
            ids = index.file_chunk_ids(hit.path)  # a hit names chunks by their place in the file
            for ordinal in chunk_ids:
                chunk = index.chunk_hit(ids[ordinal]) if 0 <= ordinal < len(ids) else None
                if chunk is None:  # re-indexed since the search: the chunk is gone
                    continue
                text, spans = make_snippet(chunk.text, query, width=len(chunk.text) + 1)
                out.append(Passage(ordinal, chunk.page, chunk.heading, scores[ordinal], text, spans))
        except Exception:
            log.exception("reading passages of %s failed", hit.path)
        self.passages.emit(number, hit, out)

    @Slot()
    def reload(self) -> None:
        """Settings changed (the model names the status): open afresh at the next request."""
        self.shutdown()

    @Slot()
    def shutdown(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None
        self._version = None


class IndexMonitor(QObject):
    status = Signal(dict)
    removed = Signal(list)
    passages = Signal(object, list)  # hit, passages (only the newest request's)
    failed = Signal(str)
    _probe = Signal()
    _refresh = Signal()
    _remove = Signal(list)
    _read = Signal(int, object, str)
    _reload = Signal()
    _shutdown = Signal()

    def __init__(self, parent: QObject | None = None, probe_ms: int = PROBE_MS) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("index-monitor")
        self._worker = _MonitorWorker()
        self._worker.moveToThread(self._thread)
        self._probe.connect(self._worker.probe)
        self._refresh.connect(self._worker.refresh)
        self._remove.connect(self._worker.remove)
        self._read.connect(self._worker.read_passages)
        self._reload.connect(self._worker.reload)
        self._shutdown.connect(self._worker.shutdown)
        self._worker.status.connect(self.status)
        self._worker.removed.connect(self.removed)
        self._worker.failed.connect(self.failed)
        self._worker.passages.connect(self._on_passages)
        self._request = 0
        self._timer = QTimer(self)
        self._timer.setInterval(probe_ms)
        self._timer.timeout.connect(self._probe)
        self._thread.start()

    def start_probing(self) -> None:
        self._timer.start()

    def refresh(self) -> None:
        self._refresh.emit()

    def remove(self, folders: list[str]) -> None:
        self._remove.emit(list(folders))

    def read_passages(self, hit: SearchHit, query: str) -> None:
        self._request += 1
        self._read.emit(self._request, hit, query)

    def _on_passages(self, number: int, hit: SearchHit, passages: list[Passage]) -> None:
        if number == self._request:
            self.passages.emit(hit, passages)

    def reload(self) -> None:
        self._reload.emit()

    def stop(self) -> None:
        self._timer.stop()
        self._shutdown.emit()
        self._thread.quit()
        self._thread.wait(10_000)
