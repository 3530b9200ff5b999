"""The one protocol between the window and its indexing child (`localsearch index
--protocol`).

Child to window, on the child's stdout, one JSON object a line with a "type":
  progress  the run's counters (IndexProgress.as_dict())
  message   a sentence for the user ("… is not reachable; its index is kept")
  failure   why the run stopped, for the user, with a `kind` the window can act on
  finished  the run ended; its last counters
Window to child, on the child's stdin, one word a line: pause, resume, cancel.

Nothing else travels here. The child's logging goes to the log file, and whatever else
reaches its stderr (llama.cpp's own prints, a Python traceback) is for the log only: a line
that does not decode as a message is never shown to the user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PROGRESS = "progress"
MESSAGE = "message"
FAILURE = "failure"
FINISHED = "finished"
TYPES = (PROGRESS, MESSAGE, FAILURE, FINISHED)

PAUSE = "pause"
RESUME = "resume"
CANCEL = "cancel"
CONTROLS = (PAUSE, RESUME, CANCEL)

# Failure kinds the window words for itself; anything else is shown as its text.
DISK_FULL = "disk_full"
BUSY = "busy"  # another localsearch is writing this index
DAMAGED = "damaged"  # the index was damaged and is being rebuilt
ERROR = "error"


@dataclass(frozen=True)
class Message:
    type: str
    text: str = ""
    kind: str = ""
    progress: dict[str, Any] = field(default_factory=dict)


def progress(counters: dict[str, Any]) -> Message:
    return Message(PROGRESS, progress=dict(counters))


def message(text: str) -> Message:
    return Message(MESSAGE, text=text)


def failure(text: str, kind: str = ERROR) -> Message:
    return Message(FAILURE, text=text, kind=kind)


def finished(counters: dict[str, Any] | None = None) -> Message:
    return Message(FINISHED, progress=dict(counters or {}))


def encode(item: Message) -> str:
    """One line (newline included) for the channel."""
    body: dict[str, Any] = {"type": item.type}
    if item.type in (PROGRESS, FINISHED):
        body["progress"] = item.progress
    else:
        body["text"] = item.text
        if item.type == FAILURE:
            body["kind"] = item.kind or ERROR
    return json.dumps(body, ensure_ascii=False) + "\n"


def decode(line: str | bytes) -> Message | None:
    """The message a line carries, or None for anything that is not one (a stray print, a
    fragment of a traceback): such lines are logged by the reader, never shown."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    try:
        body = json.loads(line)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("type") not in TYPES:
        return None
    kind = body["type"]
    if kind in (PROGRESS, FINISHED):
        counters = body.get("progress")
        return Message(kind, progress=counters) if isinstance(counters, dict) else None
    text = body.get("text")
    if not isinstance(text, str):
        return None
    failure_kind = body.get("kind") if kind == FAILURE else ""
    return Message(kind, text=text, kind=failure_kind if isinstance(failure_kind, str) else ERROR)


def encode_control(word: str) -> bytes:
    if word not in CONTROLS:
        raise ValueError(f"unknown control word {word!r}")
    return word.encode("ascii") + b"\n"


def decode_control(line: str) -> str | None:
    """The control word on a line, or None (unknown words are ignored)."""
    word = line.strip().lower()
    return word if word in CONTROLS else None
