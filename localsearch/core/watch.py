"""Folder watching: the only module that imports watchdog.

The watcher thread never touches the database: it only collects changed paths, which a
consumer takes in batches once the folder has been quiet for a moment (debounced and
coalesced: a save that fires five events is one change).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch


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
        self._watched: dict[str, ObservedWatch] = {}
        self._lock = threading.Lock()
        for root in roots:
            self.watch(root)

    def watch(self, root: str) -> bool:
        """Start watching a folder; False when it is watched already or does not exist
        (an unplugged drive: `check_roots` notices when it comes back)."""
        with self._lock:
            if root in self._watched or not os.path.isdir(root):
                return False
            try:
                self._watched[root] = self._observer.schedule(self._handler, root, recursive=True)
            except OSError:  # vanished meanwhile, or no permission to watch it
                return False
            return True

    def unwatch(self, root: str) -> None:
        with self._lock:
            watch = self._watched.pop(root, None)
        if watch is not None:
            with contextlib.suppress(KeyError, OSError):
                self._observer.unschedule(watch)

    def check_roots(self, roots: Iterable[str]) -> list[str]:
        """Watch `roots` that are reachable now; stop watching those that are gone.
        Returns the roots that (re)appeared, for a reconciling scan."""
        wanted = set(roots)
        for root in list(self._watched):
            if root not in wanted or not os.path.isdir(root):
                self.unwatch(root)
        return [root for root in sorted(wanted) if self.watch(root)]

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
