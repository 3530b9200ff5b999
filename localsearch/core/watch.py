"""Folder watching: the only module that imports watchdog.

The watcher thread never touches the database: it only collects changed paths, which a
consumer takes in batches once the folder has been quiet for a moment (debounced and
coalesced: a save that fires five events is one change).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer


class _Collector(FileSystemEventHandler):
    def __init__(self, watcher: FolderWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # reads change nothing
        paths = [event.src_path, getattr(event, "dest_path", "")]
        self.watcher._add(os.fsdecode(p) for p in paths if p)


class FolderWatcher:
    def __init__(self, roots: Iterable[str]) -> None:
        self._observer = Observer()
        self._handler = _Collector(self)
        self._pending: set[str] = set()
        self._last_event = 0.0
        self._condition = threading.Condition()
        self._watched: set[str] = set()
        for root in roots:
            self.watch(root)

    def watch(self, root: str) -> bool:
        """Start watching a folder; False when it does not exist (an unplugged drive)."""
        if root in self._watched or not os.path.isdir(root):
            return False
        self._observer.schedule(self._handler, root, recursive=True)
        self._watched.add(root)
        return True

    def start(self) -> None:
        self._observer.daemon = True
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)
        with self._condition:
            self._condition.notify_all()

    def _add(self, paths: Iterable[str]) -> None:
        with self._condition:
            self._pending.update(paths)
            self._last_event = time.monotonic()
            self._condition.notify_all()

    def next_batch(self, quiet: float = 0.5, timeout: float | None = None) -> set[str]:
        """Changed paths, once no event has arrived for `quiet` seconds; empty on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while True:
                now = time.monotonic()
                if self._pending and now - self._last_event >= quiet:
                    batch, self._pending = self._pending, set()
                    return batch
                if deadline is not None and now >= deadline:
                    return set()
                wait = quiet - (now - self._last_event) if self._pending else 0.5
                if deadline is not None:
                    wait = min(wait, deadline - now)
                self._condition.wait(max(0.01, wait))
                if not self._observer.is_alive() and not self._pending:
                    return set()
