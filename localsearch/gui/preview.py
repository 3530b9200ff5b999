"""The preview pane: the selected file's matching passages in full, the query's words
marked, and the other pages that match as links that open the file there."""

from __future__ import annotations

import html

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QKeyEvent, QPalette
from PySide6.QtWidgets import QTextBrowser, QWidget

from localsearch.core.searcher import SearchHit
from localsearch.gui.index_monitor import Passage, relevant_matches
from localsearch.gui.keys import trigger_bound_action
from localsearch.gui.results import badge_text, marked_html


def marked(text: str, spans: list[tuple[int, int]], colour: str) -> str:
    """HTML of text with the spans highlighted on this background colour."""
    return marked_html(text, spans, f"background-color: {colour}; font-weight: 600")


def other_pages(hit: SearchHit) -> list[int]:
    """Pages with matching passages besides the best one's, in page order."""
    return sorted({m.page for m in relevant_matches(hit) if m.page and m.page != hit.page})


class PreviewPane(QTextBrowser):
    open_page = Signal(str, int)  # path, page

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self._clicked)
        self.setAccessibleName("Preview of the selected result")
        self.setMinimumWidth(220)
        self.hit: SearchHit | None = None
        self.passages: list[Passage] = []
        self.show_empty()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not trigger_bound_action(self.actions(), event):  # Space: see gui/keys.py
            super().keyPressEvent(event)

    def show_empty(self) -> None:
        self.hit = None
        self.passages = []
        self.setHtml('<p style="color: gray">Select a result to see its matching passages here.</p>')

    def show_loading(self, hit: SearchHit) -> None:
        self.hit = hit
        self.passages = []
        self.setHtml(self._header(hit) + '<p style="color: gray">Reading passages…</p>')

    def _header(self, hit: SearchHit) -> str:
        folder = html.escape(hit.folder)
        parts = [
            f"<h3 style='margin-bottom: 2px'>{html.escape(hit.name)}</h3>",
            f"<div style='color: gray'>{folder}</div>",
        ]
        pages = other_pages(hit)
        if hit.page:
            links = ", ".join(f'<a href="page:{p}">{p}</a>' for p in pages)
            also = f" · also on page{'s' if len(pages) != 1 else ''} {links}" if pages else ""
            parts.append(f'<p>Best match on <a href="page:{hit.page}">page {hit.page}</a>{also}</p>')
        return "".join(parts)

    def show_passages(self, hit: SearchHit, passages: list[Passage]) -> None:
        self.hit = hit
        self.passages = passages
        mark = self.palette().color(QPalette.ColorRole.Highlight)
        mark.setAlpha(90)
        colour = f"rgba({mark.red()}, {mark.green()}, {mark.blue()}, {mark.alphaF():.2f})"
        body = [self._header(hit)]
        if not passages:
            body.append('<p style="color: gray">The file changed since this search; search again.</p>')
        for passage in passages:
            where = []
            if passage.page:
                where.append(f'<a href="page:{passage.page}">page {passage.page}</a>')
            if passage.heading:
                where.append(f"§ {html.escape(passage.heading)}")
            if passage.chunk == hit.chunk:
                # The card's own score (words and meaning together in hybrid mode), so the
                # best passage never reads as weaker than the others listed after it.
                where.append(f"best match · {badge_text(hit)}")
            else:
                where.append(f"also close in meaning · similarity {passage.score:.2f}")
            body.append(
                f"<p style='margin-top: 14px; margin-bottom: 2px; color: gray'>{' · '.join(where)}</p>"
                f"<p style='margin-top: 0'>{marked(passage.text, passage.highlights, colour)}</p>"
            )
        self.setHtml("".join(body))

    def _clicked(self, url: QUrl) -> None:
        if self.hit is not None and url.scheme() == "page":
            try:
                page = int(url.path())
            except ValueError:
                return
            self.open_page.emit(self.hit.path, page)

    def page_links(self) -> list[int]:
        """The pages the pane links to (for tests and accessibility checks)."""
        if self.hit is None:
            return []
        return sorted({p for p in [self.hit.page, *other_pages(self.hit)] if p})
