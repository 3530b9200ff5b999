"""The preview pane shows the selected file's matching passages, the query's words marked,
and links to the other matching pages that open the file there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl
from pytestqt.qtbot import QtBot

from localsearch.gui.main_window import MainWindow
from tests.gui.conftest import index_with_fake, make_pdf


def test_space_shows_passages_with_pages_to_open(
    qtbot: QtBot, tmp_path: Path, make_window: Callable[[], MainWindow], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "papers"
    docs.mkdir()
    filler = [f"Chapter {n} is about unrelated harbour logistics and shipping." for n in range(1, 8)]
    pages = list(filler)
    for n in (3, 4, 5):
        pages[n - 1] = f"Page {n}: glacier retreat measured by satellite, the glacier lost ice."
    make_pdf(docs / "climate.pdf", pages)
    index_with_fake(docs)
    window = make_window()
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    with qtbot.waitSignal(window.results_shown, timeout=30_000):
        window.search_box.setText("glacier retreat")
    hit = window.results_model.hits[0]
    assert hit.name == "climate.pdf" and hit.page in (3, 4, 5)
    assert not window.preview.isVisible()

    window.results_view.setFocus()
    window.results_view.setCurrentIndex(window.results_model.index(0, 0))
    with qtbot.waitSignal(window.monitor.passages, timeout=10_000):
        qtbot.keyClick(window.results_view, Qt.Key.Key_Space)
    assert window.preview.isVisible() and window.preview_action.isChecked()
    shown = window.preview.passages
    assert {p.page for p in shown} == {3, 4, 5}
    assert all(p.highlights for p in shown)
    text = window.preview.toPlainText()
    assert "also on pages" in text
    html = window.preview.toHtml()
    for page in (3, 4, 5):
        assert f'href="page:{page}"' in html
    assert window.preview.page_links() == [3, 4, 5]
    marked = [p.text[a:b].lower() for p in shown for a, b in p.highlights]
    assert "glacier" in marked and "retreat" in marked

    opened: list[tuple[str, int | None]] = []
    monkeypatch.setattr(window, "open_path", lambda path, page=None: opened.append((path, page)))
    window.preview.open_page.disconnect()
    window.preview.open_page.connect(window.open_path)
    window.preview.anchorClicked.emit(QUrl("page:4"))
    assert opened == [(hit.path, 4)]

    # Space again hides it; the choice is kept while searching on.
    qtbot.keyClick(window.results_view, Qt.Key.Key_Space)
    assert not window.preview.isVisible()
