"""Log files that never hold the user's text.

Document text and queries may reach an exception's message (a parser quoting what it
choked on, a database error quoting the query). Unless debug logging is on, tracebacks
in the log keep their frames (where it went wrong) and the exception's type, not its
message. Our own log calls pass paths and counts, never text; those that pass an
exception's message do so at debug level.
"""

from __future__ import annotations

import logging
import traceback
from types import TracebackType

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HIDDEN = "(message not logged: it may quote document text or a query; run with --verbose to see it)"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class PrivateFormatter(logging.Formatter):
    """Formats tracebacks without exception messages (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        # logging caches a record's traceback text; another handler's full one must not
        # be reused here, nor this one left for a debug handler.
        cached, record.exc_text = record.exc_text, None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached

    def formatException(self, ei: ExcInfo) -> str:
        kind, _value, tb = ei
        lines = ["Traceback (most recent call last):\n", *traceback.format_tb(tb)]
        name = kind.__qualname__ if kind is not None else "Exception"
        lines.append(f"{name}: {HIDDEN}")
        return "".join(lines)


def formatter(debug: bool) -> logging.Formatter:
    return logging.Formatter(FORMAT) if debug else PrivateFormatter(FORMAT)
