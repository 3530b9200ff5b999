"""Helpers for window tests where the model is not the point: the window's search lane and
its indexing child both use the deterministic fake embedder, on a real index."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from localsearch.core.service import LocalSearch
from localsearch.gui.main_window import MainWindow
from tests.fakes import FakeEmbedder

REPO = Path(__file__).resolve().parents[2]


def fake_service() -> LocalSearch:
    return LocalSearch(keep_vectors=True, for_queries=True, embedder_factory=lambda s, q: FakeEmbedder())


def index_with_fake(*folders: Path) -> None:
    """Index in this process, as another program would (its own connection)."""
    with LocalSearch(embedder_factory=lambda s, q: FakeEmbedder()) as service:
        for _ in service.index_paths(list(folders)):
            pass


@pytest.fixture
def fake_child(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The indexing child (and any `localsearch` run from a test) uses the fake embedder."""
    monkeypatch.setenv("LOCALSEARCH_TEST_EMBEDDER", "tests.fakes:FakeEmbedder")
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return dict(os.environ)


@pytest.fixture
def make_window(qtbot: QtBot) -> Iterator[Callable[[], MainWindow]]:
    """Windows with the fake embedder in their search lane; stopped after the test."""
    made: list[MainWindow] = []

    def make() -> MainWindow:
        window = MainWindow(service_factory=fake_service)
        qtbot.addWidget(window)
        made.append(window)
        return window

    yield make
    for window in made:
        window.close()


def write_notes(folder: Path, notes: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in notes.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A minimal valid PDF with one line of Helvetica text per page."""
    objects: list[bytes] = []
    count = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(count))
    font_id = 3 + 2 * count
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode())
    for i, text in enumerate(pages):
        content_id = 4 + 2 * i
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 11 Tf 40 740 Td ({escaped}) Tj ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path
