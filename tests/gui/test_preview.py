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


def test_the_best_passage_carries_the_cards_score_not_a_smaller_similarity(qtbot: QtBot) -> None:
    """In hybrid mode the best passage is best by words and meaning together, and can have a
    lower cosine than a passage listed after it: it shows the card's relevance, labelled as
    the best match, so the numbers never read as out of order."""
    from localsearch.core.searcher import ChunkMatch, SearchHit
    from localsearch.gui.index_monitor import Passage
    from localsearch.gui.preview import PreviewPane

    best = ChunkMatch(chunk=4, page=4, start_char=0, end_char=10, score=0.32)
    other = ChunkMatch(chunk=1, page=1, start_char=0, end_char=10, score=0.49)
    hit = SearchHit(
        path="/docs/paper.pdf",
        name="paper.pdf",
        folder="/docs",
        score=0.32,
        snippet="news articles",
        page=4,
        start_char=0,
        end_char=10,
        chunk=4,
        matches=[best, other],
        cosine=0.32,
        keyword=0.5,
    )
    pane = PreviewPane()
    qtbot.addWidget(pane)
    pane.show_passages(
        hit,
        [
            Passage(chunk=4, page=4, heading=None, score=0.32, text="news articles were read"),
            Passage(chunk=1, page=1, heading=None, score=0.49, text="information extraction"),
        ],
    )
    text = pane.toPlainText()
    assert "best match · 32%" in text
    assert "also close in meaning · similarity 0.49" in text
    assert text.index("best match") < text.index("also close in meaning")
    assert "similarity 0.32" not in text
