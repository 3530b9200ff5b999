"""The window <-> indexing child protocol: what goes in comes out, and nothing else does."""

from __future__ import annotations

import pytest

from localsearch.core import protocol


@pytest.mark.parametrize(
    "item",
    [
        protocol.progress({"phase": "indexing", "files_done": 3, "paused": None, "current": "/d/ä.txt"}),
        protocol.message("/mnt/usb is not reachable; its index is kept as it was"),
        protocol.failure("The disk holding the index is full", protocol.DISK_FULL),
        protocol.failure("something broke"),
        protocol.finished({"phase": "done", "files_indexed": 7}),
        protocol.finished(),
    ],
)
def test_every_message_decodes_to_itself_on_one_line(item: protocol.Message) -> None:
    line = protocol.encode(item)
    assert line.endswith("\n") and line.count("\n") == 1
    expected = (
        item if item.type != protocol.FAILURE or item.kind else protocol.failure(item.text, protocol.ERROR)
    )
    assert protocol.decode(line) == expected
    assert protocol.decode(line.encode()) == expected


@pytest.mark.parametrize(
    "line",
    [
        "",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "2026-01-01 10:00:00 WARNING localsearch: using the test embedder",
        "GGML_ASSERT(n_ubatch >= n_tokens) failed",
        '{"phase": "indexing", "files_done": 3}',  # --progress-json's counters: not a message
        '{"type": "message"}',
        '{"type": "message", "text": 3}',
        '{"type": "shout", "text": "hi"}',
        '{"type": "progress", "progress": [1, 2]}',
        "[1, 2, 3]",
        b"\xff\xfe not utf-8",
    ],
)
def test_anything_else_is_not_a_message(line: str | bytes) -> None:
    assert protocol.decode(line) is None


def test_control_words() -> None:
    for word in protocol.CONTROLS:
        assert protocol.decode_control(protocol.encode_control(word).decode()) == word
    assert protocol.decode_control("  PAUSE \r\n") == protocol.PAUSE
    assert protocol.decode_control("rm -rf /") is None
    with pytest.raises(ValueError):
        protocol.encode_control("explode")
