"""A time limit on Python code running in the calling thread: the indexer stops an
extraction that runs past IndexOptions.extract_seconds (a crafted or broken document
sending a parser round in circles) and records the file as failed."""

from __future__ import annotations

import ctypes
import threading
import time


class DeadlineExceeded(BaseException):
    """Raised inside guarded code that ran past its time limit. A BaseException, so that
    the code's own `except Exception` (an extractor's) cannot swallow it."""


class Deadline:
    """After `seconds`, raise DeadlineExceeded in the thread that made this (Python's
    asynchronous exception: it lands at the next bytecode, so a parser looping in Python
    is stopped; a single C call finishes first). disarm() before leaving the guarded code;
    an exception already on its way surfaces inside disarm(), still under the caller's
    handler, never later. One watchdog thread serves every deadline, so the guarded thread
    itself only ever touches a plain lock and a dict."""

    def __init__(self, seconds: float) -> None:
        self._token = _WATCHDOG.arm(seconds) if seconds > 0 else None

    def disarm(self) -> None:
        if self._token is not None:
            _WATCHDOG.disarm(self._token)


class _Watchdog:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._due: dict[int, tuple[float, int]] = {}  # token -> (monotonic deadline, thread id)
        self._tokens = 0
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> int:
        with self._cond:
            self._tokens += 1
            self._due[self._tokens] = (time.monotonic() + seconds, threading.get_ident())
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="extract-deadline", daemon=True)
                self._thread.start()
            self._cond.notify()
            return self._tokens

    def disarm(self, token: int) -> None:
        with self._cond:
            self._due.pop(token, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for token, (deadline, thread_id) in list(self._due.items()):
                    if deadline <= now:
                        del self._due[token]
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(thread_id), ctypes.py_object(DeadlineExceeded)
                        )
                soonest = min((d for d, _ in self._due.values()), default=None)
                self._cond.wait(None if soonest is None else max(0.0, soonest - now))


_WATCHDOG = _Watchdog()
