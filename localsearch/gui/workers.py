"""Work that must not run on the UI thread, talking to it only through signals.

Searching runs on a QThread that owns its own service (its own database connection and
embedding context). Indexing runs in a child process (`localsearch index --protocol`):
llama.cpp can abort the whole process on an internal assertion, and a child that dies
cannot take the window with it; every file is committed on its own, so the index stays
whole. The child and the window speak core.protocol; the child's stderr goes to the log.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QThread, QTimer, Signal, Slot

from localsearch.core import protocol
from localsearch.core.service import LocalSearch
from localsearch.core.storage import Filters
from localsearch.errors import LocalSearchError
from localsearch.launch import child_command

log = logging.getLogger(__name__)

ServiceFactory = Callable[[], LocalSearch]
# How long a cancelled indexing child may take to stop before it is terminated (then killed).
CANCEL_GRACE_MS = 3000


@dataclass(frozen=True)
class SearchRequest:
    """One search as the window asks for it: a query, or files like `like` (a path)."""

    query: str = ""
    limit: int = 50
    mode: str = "hybrid"
    filters: Filters = field(default_factory=Filters)
    sort: str = "relevance"
    like: str | None = None

    @property
    def label(self) -> str:
        return self.query if self.like is None else f"like {os.path.basename(self.like)}"


class _SearchWorker(QObject):
    results = Signal(int, str, list)  # generation, query, hits
    failed = Signal(int, str)  # generation, message
    status = Signal(dict)

    def __init__(self, factory: ServiceFactory) -> None:
        super().__init__()
        self._factory = factory
        self._service: LocalSearch | None = None
        self.latest = 0  # written by the UI thread; a newer query makes older ones moot

    def _get_service(self) -> LocalSearch:
        if self._service is None:
            self._service = self._factory()
        return self._service

    @Slot(int, object)
    def search(self, generation: int, request: SearchRequest) -> None:
        if generation != self.latest:
            return
        try:
            service = self._get_service()
            if request.like is not None:
                hits = service.more_like(request.like, request.limit, filters=request.filters)
            else:
                hits = service.search(
                    request.query,
                    request.limit,
                    mode=request.mode,
                    filters=request.filters,
                    sort=request.sort,
                )
        except LocalSearchError as exc:
            self.failed.emit(generation, str(exc))
            return
        except Exception as exc:  # never let a bug kill the thread silently
            log.exception("search failed")
            self.failed.emit(generation, f"Search failed: {exc}")
            return
        self.results.emit(generation, request.label, hits)

    @Slot()
    def refresh_status(self) -> None:
        # Without the storage figures, which read every page of the index (dbstat): on the
        # search thread, queries would queue behind that read.
        try:
            self.status.emit(self._get_service().status(storage=False))
        except Exception:
            log.exception("status failed")

    @Slot()
    def shutdown(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None


class SearchLane(QObject):
    """Queries go in with a generation number; only the newest answer comes out."""

    results = Signal(str, list)
    failed = Signal(str)
    status = Signal(dict)
    _request = Signal(int, object)
    _request_status = Signal()
    _shutdown = Signal()

    def __init__(self, factory: ServiceFactory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._generation = 0
        self._thread = QThread()
        self._thread.setObjectName("search-lane")
        self._worker = _SearchWorker(factory)
        self._worker.moveToThread(self._thread)
        self._request.connect(self._worker.search)
        self._request_status.connect(self._worker.refresh_status)
        self._shutdown.connect(self._worker.shutdown)
        self._worker.results.connect(self._on_results)
        self._worker.failed.connect(self._on_failed)
        self._worker.status.connect(self.status)
        self._thread.start()

    def search(self, query: str | SearchRequest, limit: int = 50, mode: str = "hybrid") -> None:
        request = query if isinstance(query, SearchRequest) else SearchRequest(query, limit, mode)
        self._generation += 1
        self._worker.latest = self._generation
        self._request.emit(self._generation, request)

    def refresh_status(self) -> None:
        self._request_status.emit()

    def reload(self) -> None:
        """Drop the lane's service: the next request opens one with the saved settings."""
        self._shutdown.emit()

    def _on_results(self, generation: int, query: str, hits: list) -> None:
        if generation == self._generation:
            self.results.emit(query, hits)

    def _on_failed(self, generation: int, message: str) -> None:
        if generation == self._generation:
            self.failed.emit(message)

    def stop(self) -> None:
        self._worker.latest = -1
        self._shutdown.emit()
        self._thread.quit()
        self._thread.wait(10_000)


class WatchLane(QObject):
    """Watches the indexed folders on a plain thread; reports changed paths as a signal.
    A folder that disappears (an unplugged drive) stops being watched and keeps its
    index; when it comes back it is reported whole, for a reconciling scan."""

    changed = Signal(list)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        from localsearch.core.watch import FolderWatcher

        self._watcher = FolderWatcher([])
        self._watcher.start()
        self._folders: list[str] = []
        self._lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="watch-lane", daemon=True)
        self._thread.start()

    def watch(self, folders: list[str]) -> None:
        with self._lock:
            self._folders = list(folders)
        for folder in folders:
            self._watcher.watch(folder)

    def _loop(self) -> None:
        while self._running:
            batch = self._watcher.next_batch(quiet=0.5, timeout=1.0)
            with self._lock:
                folders = list(self._folders)
            batch.update(self._watcher.check_roots(folders))
            if batch and self._running:
                self.changed.emit(sorted(batch))

    def stop(self) -> None:
        self._running = False
        self._watcher.stop()
        self._thread.join(timeout=5)


# What the window says when the child reports a failure of a kind it knows.
FAILURE_WORDS = {
    protocol.DISK_FULL: "Disk full: indexing stopped. What was indexed is kept; "
    "free some space and indexing continues.",
    protocol.BUSY: "Another localsearch is indexing this index; indexing resumes when it is done.",
}


class IndexLane(QObject):
    """Runs `localsearch index --protocol` in a child process and reports its progress.
    Pause, resume and cancel travel to the child as protocol control words on its stdin."""

    progress = Signal(dict)
    paused_changed = Signal(bool)
    message = Signal(str)
    finished = Signal(bool, str)  # ok, summary

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._process: QProcess | None = None
        self._buffer = b""
        self._errors = b""
        self._last: dict = {}
        self._failure: protocol.Message | None = None
        self._queued: dict[str, list[str]] = {"index": [], "update": []}
        self._cancelled = False
        self._paused = False

    @property
    def running(self) -> bool:
        return self._process is not None

    @property
    def paused(self) -> bool:
        return self._paused

    def _send(self, command: str) -> None:
        if self._process is not None:
            self._process.write(protocol.encode_control(command))

    def pause(self) -> None:
        """Hold the running indexer between files (it keeps what it has done)."""
        if self._process is not None and not self._paused:
            self._send(protocol.PAUSE)
            self._set_paused(True)

    def resume(self) -> None:
        if self._paused:
            self._send(protocol.RESUME)
            self._set_paused(False)

    def toggle_pause(self) -> None:
        if self._paused:
            self.resume()
        else:
            self.pause()

    def _set_paused(self, paused: bool) -> None:
        if paused != self._paused:
            self._paused = paused
            self.paused_changed.emit(paused)

    def index(self, paths: list[str]) -> None:
        """Add folders and bring them up to date (a full scan of each)."""
        self._start("index", paths)

    def update(self, paths: list[str]) -> None:
        """Re-read just these changed files or folders (what the watcher reports)."""
        self._start("update", paths)

    def _start(self, verb: str, paths: list[str]) -> None:
        if self._process is not None:
            queue = self._queued[verb]
            queue.extend(p for p in paths if p not in queue)
            return
        process = QProcess(self)
        program, *arguments = child_command("cli", verb, "--protocol", *paths)
        process.setProgram(program)
        process.setArguments(arguments)
        process.setProcessEnvironment(QProcessEnvironment.systemEnvironment())
        process.readyReadStandardOutput.connect(self._read)
        process.readyReadStandardError.connect(self._read_errors)
        process.finished.connect(self._done)
        process.errorOccurred.connect(self._error)
        self._process = process
        self._buffer = b""
        self._errors = b""
        self._last = {}
        self._failure = None
        self._cancelled = False
        process.start()
        if self._paused:  # paused before this run began: it starts paused
            self._send(protocol.PAUSE)

    def cancel(self) -> None:
        """Stop the run without waiting on the UI thread: the child is asked first (it stops
        between files), terminated if still there after a grace period, then killed.
        Killing is safe too (each file is its own transaction), just less tidy. `finished`
        comes when it has gone."""
        for queue in self._queued.values():
            queue.clear()
        process = self._process
        if process is not None and not self._cancelled:
            self._cancelled = True
            self._send(protocol.CANCEL)
            QTimer.singleShot(CANCEL_GRACE_MS, self, lambda: self._escalate(process, kill=False))
            QTimer.singleShot(2 * CANCEL_GRACE_MS, self, lambda: self._escalate(process, kill=True))
        self._set_paused(False)

    def _escalate(self, process: QProcess, *, kill: bool) -> None:
        if self._process is process:  # the same run, still going
            if kill:
                process.kill()
            else:
                process.terminate()

    def shutdown(self) -> None:
        """The window closes: cancel and wait for the child a few seconds (then kill it)."""
        self.cancel()
        process = self._process
        if process is not None and not process.waitForFinished(CANCEL_GRACE_MS):
            process.kill()
            process.waitForFinished(1000)

    def _read(self) -> None:
        assert self._process is not None
        self._buffer += bytes(self._process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            item = protocol.decode(raw)
            if item is None:
                if raw.strip():
                    log.info("indexer (not protocol): %s", raw.decode("utf-8", errors="replace").rstrip())
            elif item.type == protocol.PROGRESS:
                self._last = item.progress
                self.progress.emit(self._last)
            elif item.type == protocol.FINISHED:
                self._last = item.progress or self._last
            elif item.type == protocol.FAILURE:
                self._failure = item
            else:
                self.message.emit(item.text.removeprefix("localsearch: "))

    def _read_errors(self) -> None:
        """The child's stderr (logging it could not keep in its file, llama.cpp's prints, a
        traceback): for the log, never for the window."""
        assert self._process is not None
        self._errors += bytes(self._process.readAllStandardError().data())
        *lines, self._errors = self._errors.split(b"\n")
        for raw in lines:
            if raw.strip():
                log.info("indexer: %s", raw.decode("utf-8", errors="replace").rstrip())

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._finish(False, "Could not start the indexer.")

    def _done(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read()
        self._read_errors()
        if self._cancelled:
            self._finish(True, "Indexing paused. What was indexed is kept.")
        elif self._failure is not None:
            self._finish(False, FAILURE_WORDS.get(self._failure.kind, self._failure.text))
        elif status == QProcess.ExitStatus.CrashExit or code not in (0,):
            self._finish(
                False,
                f"Indexing stopped unexpectedly (exit {code}). The index is intact; "
                "files indexed so far are kept.",
            )
        else:
            done = self._last.get("files_indexed", 0)
            failed = self._last.get("files_failed", 0)
            summary = f"Indexed {done} new or changed files"
            if failed:
                summary += f", {failed} could not be read"
            self._finish(True, summary + ".")

    def _finish(self, ok: bool, summary: str) -> None:
        if self._process is not None:
            self._process.deleteLater()
        self._process = None
        self.finished.emit(ok, summary)
        for verb, queue in self._queued.items():
            if queue:
                self._queued[verb] = []
                self._start(verb, queue)
                break
