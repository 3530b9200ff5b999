"""Files that could not be indexed: filtered by reason, opened, shown, tried again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from localsearch.gui.failures import FailuresDialog, reason_kind
from localsearch.gui.main_window import MainWindow
from tests.gui.conftest import index_with_fake, make_pdf, write_notes


def test_failed_files_can_be_filtered_opened_and_retried(
    qtbot: QtBot,
    tmp_path: Path,
    fake_child: dict,
    make_window: Callable[[], MainWindow],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = write_notes(tmp_path / "docs", {"fine.txt": "An ordinary note about gardening."})
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this file was cut off")
    make_pdf(docs / "blank.pdf", ["", ""])  # no text layer, like a scan
    index_with_fake(docs)
    window = make_window()
    window.show()
    with qtbot.waitSignal(window.status_shown, timeout=20_000):
        window.monitor.refresh()
    assert len(window._failures) == 2
    window._show_failures()
    dialog = window.findChild(FailuresDialog)
    assert dialog is not None and dialog.isVisible()
    kinds = [dialog.kind_box.itemText(i) for i in range(dialog.kind_box.count())]
    assert kinds[0] == "All reasons (2)" and len(kinds) == 3
    broken_kind = reason_kind(next(f["reason"] for f in window._failures if f["path"].endswith("broken.pdf")))
    dialog.kind_box.setCurrentIndex(dialog.kind_box.findData(broken_kind))
    assert dialog.visible_paths() == [str(docs / "broken.pdf")]

    opened: list[str] = []
    revealed: list[str] = []
    monkeypatch.setattr(dialog, "_open", opened.append)
    monkeypatch.setattr(dialog, "_reveal", revealed.append)
    assert not dialog.open_button.isEnabled()
    row = next(r for r in range(dialog.table.rowCount()) if not dialog.table.isRowHidden(r))
    dialog.table.selectRow(row)
    assert dialog.open_button.isEnabled() and dialog.retry_button.isEnabled()
    dialog.open_button.click()
    dialog.reveal_button.click()
    assert opened == revealed == [str(docs / "broken.pdf")]

    # Mended, then tried again: it leaves the list.
    make_pdf(docs / "broken.pdf", ["Now a readable page about compost."])
    with qtbot.waitSignal(window.index_lane.finished, timeout=60_000):
        dialog.retry_button.click()
    with qtbot.waitSignal(window.status_shown, timeout=20_000):
        window.monitor.refresh()
    assert [f["path"] for f in window._failures] == [str(docs / "blank.pdf")]


def test_the_selected_files_whole_reason_is_shown_under_the_list(qtbot: QtBot) -> None:
    long_reason = "scanned PDF: no text layer (the pages are images; it needs OCR, e.g. ocrmypdf, first)"
    dialog = FailuresDialog([{"path": "/home/a/scan.pdf", "reason": long_reason}])
    qtbot.addWidget(dialog)
    assert dialog.details.text() == ""
    dialog.table.selectRow(0)
    assert "scan.pdf" in dialog.details.text() and "ocrmypdf, first)" in dialog.details.text()
