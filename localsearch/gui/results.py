"""The results list: a model of search hits and a delegate that paints them as cards."""

from __future__ import annotations

import functools
import html
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractListModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QRectF,
    QSize,
    Qt,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QTextDocument
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from localsearch.core.backends import machine_name
from localsearch.core.searcher import SearchHit
from localsearch.settings import load as load_settings

HitRole = Qt.ItemDataRole.UserRole + 1
WeakerRole = Qt.ItemDataRole.UserRole + 2  # on the "show N weaker matches" row: N
AnyIndex = QModelIndex | QPersistentModelIndex


class ResultsModel(QAbstractListModel):
    """The hits, best first: those above the relevance floor, then one row that shows or
    hides the weaker ones (collapsed while there is a close match)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hits: list[SearchHit] = []
        self.strong: list[SearchHit] = []
        self.weaker: list[SearchHit] = []
        self.expanded = False

    def set_hits(self, hits: list[SearchHit]) -> None:
        self.beginResetModel()
        self.hits = list(hits)
        self.strong = [h for h in self.hits if not h.weak]
        self.weaker = [h for h in self.hits if h.weak]
        self.expanded = not self.strong  # nothing close: the weaker ones are all there is
        self.endResetModel()

    def toggle_weaker(self) -> None:
        self.beginResetModel()
        self.expanded = not self.expanded
        self.endResetModel()

    def shown_hits(self) -> list[SearchHit]:
        return self.strong + (self.weaker if self.expanded else [])

    def _row(self, row: int) -> SearchHit | None:
        """The hit on a row, or None on the weaker-matches row."""
        if row < len(self.strong):
            return self.strong[row]
        if row == len(self.strong):
            return None
        return self.weaker[row - len(self.strong) - 1]

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        if parent.isValid():
            return 0
        if not self.weaker:
            return len(self.strong)
        return len(self.strong) + 1 + (len(self.weaker) if self.expanded else 0)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < self.rowCount():
            return None
        hit = self._row(index.row())
        if hit is None:
            if role == WeakerRole:
                return len(self.weaker)
            if role == Qt.ItemDataRole.DisplayRole:
                return self.weaker_label()
            return None
        if role == HitRole:
            return hit
        if role == Qt.ItemDataRole.DisplayRole:
            return hit.name
        if role == Qt.ItemDataRole.ToolTipRole:
            page = f"\nPage {hit.page}" if hit.page else ""
            heading = f"\nSection: {hit.heading}" if hit.heading else ""
            words = f", keywords {hit.keyword:.0%}" if hit.keyword is not None else ""
            return (
                f"{hit.path}{page}{heading}\n{badge_text(hit)} (meaning: cosine {hit.cosine:.2f}{words})"
                "\nDouble-click to open"
            )
        return None

    def weaker_label(self) -> str:
        n = len(self.weaker)
        noun = f"weaker match{'es' if n != 1 else ''}"
        return f"▾ Hide {n} {noun}" if self.expanded else f"▸ Show {n} {noun}"


def results_summary(hits: list[SearchHit], query: str, like: bool = False, sort: str = "relevance") -> str:
    """The line above the list: how many close matches, and the weaker ones set apart."""
    subject = f"files {query}" if like else f"“{query}”"
    order = "newest first" if sort == "date" else "closest first"
    strong = sum(1 for h in hits if not h.weak)
    weaker = len(hits) - strong
    if not strong:
        return f"No close match for {subject} · {weaker} weaker match{'es' if weaker != 1 else ''}, {order}"
    text = f"{strong} match{'es' if strong != 1 else ''} for {subject}, {order}"
    if weaker:
        text += f" · {weaker} weaker match{'es' if weaker != 1 else ''} below"
    return text


def badge_text(hit: SearchHit) -> str:
    """The score the list is ordered by: a relevance as a percentage, a similarity as it is."""
    return f"{hit.score:.0%}" if hit.scale == "relevance" else f"{hit.score:.2f}"


def score_color(hit: SearchHit) -> QColor:
    """Green for close matches, amber for the others above the floor, grey for weaker ones."""
    if hit.weak:
        return QColor("#757575")
    if hit.scale == "euclidean" or hit.score >= (0.6 if hit.scale == "relevance" else 0.5):
        return QColor("#2e7d32")
    return QColor("#b26a00")


@functools.lru_cache(maxsize=1)
def this_machine() -> str:
    """This computer's name in a shared index, read once (changing it re-indexes anyway)."""
    return machine_name(load_settings())


def remote_host(hit: SearchHit) -> str | None:
    """The machine a result's file is on when it is another one (a shared index)."""
    return hit.host if hit.host and hit.host != this_machine() else None


def folder_line(hit: SearchHit) -> str:
    """The folder under a result's name, saying which machine holds it when not this one."""
    remote = remote_host(hit)
    return f"{hit.folder}  · on {remote}" if remote else hit.folder


class ResultDelegate(QStyledItemDelegate):
    PADDING = 10
    SNIPPET_LINES = 3

    def _fonts(self, option: QStyleOptionViewItem) -> tuple[QFont, QFont, QFont]:
        title = QFont(option.font)
        title.setBold(True)
        title.setPointSizeF(option.font.pointSizeF() * 1.08)
        small = QFont(option.font)
        small.setPointSizeF(option.font.pointSizeF() * 0.9)
        return title, small, QFont(option.font)

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        title, small, body = self._fonts(option)
        if index.data(WeakerRole):
            return QSize(0, QFontMetrics(body).height() + self.PADDING * 2)
        height = (
            QFontMetrics(title).height()
            + QFontMetrics(small).height()
            + QFontMetrics(body).lineSpacing() * self.SNIPPET_LINES
            + self.PADDING * 2
            + 8
        )
        return QSize(0, height)  # the view gives each card its full width

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        hit = index.data(HitRole)
        if not isinstance(hit, SearchHit):
            if index.data(WeakerRole):
                self._paint_weaker_row(painter, option, str(index.data(Qt.ItemDataRole.DisplayRole)))
            return
        painter.save()
        palette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        card = option.rect.adjusted(4, 3, -4, -3)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if hit.weak:
            painter.setOpacity(0.6)
        if selected:
            background = palette.color(QPalette.ColorRole.Highlight)
            background.setAlpha(45)
        elif hovered:
            background = palette.color(QPalette.ColorRole.AlternateBase)
        else:
            background = palette.color(QPalette.ColorRole.Base)
        # From the palette, so it shows on dark ones too; on the pixel grid, so it stays crisp.
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.setBrush(background)
        painter.drawRoundedRect(QRectF(card).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)

        title_font, small_font, body_font = self._fonts(option)
        inner = card.adjusted(self.PADDING, self.PADDING - 2, -self.PADDING, -self.PADDING + 2)
        text_color = palette.color(QPalette.ColorRole.Text)
        muted = QColor(text_color)
        muted.setAlpha(150)

        # Score badge, right-aligned on the title line.
        badge = badge_text(hit)
        fm_small = QFontMetrics(small_font)
        badge_w = fm_small.horizontalAdvance(badge) + 14
        title_h = QFontMetrics(title_font).height()
        badge_rect = QRect(
            inner.right() - badge_w,
            inner.top() + (title_h - fm_small.height() - 4) // 2,
            badge_w,
            fm_small.height() + 4,
        )
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(score_color(hit))
        painter.drawRoundedRect(badge_rect, badge_rect.height() / 2, badge_rect.height() / 2)
        painter.setFont(small_font)
        painter.setPen(QColor("white"))
        painter.drawText(badge_rect, Qt.AlignmentFlag.AlignCenter, badge)

        # File name (and page) on the title line.
        painter.setFont(title_font)
        painter.setPen(text_color)
        page = f"  ·  page {hit.page}" if hit.page else ""
        title_rect = QRect(inner.left(), inner.top(), inner.width() - badge_w - 10, title_h)
        name = QFontMetrics(title_font).elidedText(
            hit.name,
            Qt.TextElideMode.ElideMiddle,
            title_rect.width() - QFontMetrics(title_font).horizontalAdvance(page),
        )
        painter.drawText(title_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name + page)

        # Folder, muted, and the best chunk's heading right of it ("§ Heading").
        painter.setFont(small_font)
        painter.setPen(muted)
        folder_rect = QRect(inner.left(), title_rect.bottom() + 2, inner.width(), fm_small.height())
        folder_width, heading_x, heading_width = _share_line(hit, fm_small, folder_rect.width())
        painter.drawText(
            folder_rect,
            Qt.AlignmentFlag.AlignLeft,
            fm_small.elidedText(folder_line(hit), Qt.TextElideMode.ElideMiddle, folder_width),
        )
        if hit.heading and heading_width > 0:
            section = QColor(text_color)
            section.setAlpha(200)
            painter.setPen(section)
            heading_rect = folder_rect.adjusted(heading_x, 0, 0, 0)
            heading_rect.setWidth(heading_width)
            painter.drawText(
                heading_rect,
                Qt.AlignmentFlag.AlignLeft,
                fm_small.elidedText(f"§ {hit.heading}", Qt.TextElideMode.ElideRight, heading_width),
            )

        # Snippet, wrapped to a few lines, the query's words in bold.
        fm_body = QFontMetrics(body_font)
        snippet_rect = QRect(
            inner.left(), folder_rect.bottom() + 6, inner.width(), fm_body.lineSpacing() * self.SNIPPET_LINES
        )
        fitted = _fit_lines(hit.snippet, fm_body, snippet_rect.width(), self.SNIPPET_LINES)
        document = QTextDocument()
        document.setDocumentMargin(0)
        document.setDefaultFont(body_font)
        document.setTextWidth(snippet_rect.width())
        document.setHtml(
            f'<span style="color: {text_color.name()}">{marked_html(fitted, hit.highlights)}</span>'
        )
        painter.save()
        painter.translate(snippet_rect.topLeft())
        document.drawContents(painter, QRectF(0, 0, snippet_rect.width(), snippet_rect.height()))
        painter.restore()
        painter.restore()

    def editorEvent(
        self, event: QEvent, model: QAbstractItemModel, option: QStyleOptionViewItem, index: AnyIndex
    ) -> bool:
        """A click on the weaker-matches row shows or hides them."""
        if (
            event.type() == QEvent.Type.MouseButtonRelease
            and index.data(WeakerRole)
            and isinstance(model, ResultsModel)
        ):
            model.toggle_weaker()
            return True
        return super().editorEvent(event, model, option, index)

    def _paint_weaker_row(self, painter: QPainter, option: QStyleOptionViewItem, label: str) -> None:
        """The row between close and weaker matches: a muted line of text, clickable."""
        painter.save()
        muted = QColor(option.palette.color(QPalette.ColorRole.Text))
        muted.setAlpha(170)
        if option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(
                option.rect.adjusted(4, 3, -4, -3), option.palette.color(QPalette.ColorRole.AlternateBase)
            )
        painter.setPen(muted)
        painter.setFont(option.font)
        painter.drawText(
            option.rect.adjusted(self.PADDING + 4, 0, -self.PADDING, 0),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            label,
        )
        painter.restore()


def _share_line(hit: SearchHit, metrics: QFontMetrics, width: int) -> tuple[int, int, int]:
    """The folder's width, and where the heading starts and its width, on one line: each
    gets what it needs when both fit, else the heading at most half (more if the folder
    leaves it), both elided."""
    if not hit.heading:
        return width, 0, 0
    gap = metrics.horizontalAdvance("    ")
    folder = metrics.horizontalAdvance(folder_line(hit)) + 1  # elidedText wants a pixel to spare
    heading = metrics.horizontalAdvance(f"§ {hit.heading}") + 1
    if folder + gap + heading > width:
        heading = min(heading, max(width // 2, width - folder - gap))
    heading = max(0, min(heading, width - gap))
    folder = min(folder, width - heading - gap)
    return max(0, folder), max(0, folder) + gap, heading


def marked_html(text: str, spans: list[tuple[int, int]], style: str = "") -> str:
    """HTML of text with the spans marked: in bold, or in a span of this CSS style.
    Overlapping spans and spans past the end of text are dropped."""
    out: list[str] = []
    position = 0
    for start, end in sorted(spans):
        if start < position or end > len(text):
            continue
        out.append(html.escape(text[position:start]))
        words = html.escape(text[start:end])
        out.append(f'<span style="{style}">{words}</span>' if style else f"<b>{words}</b>")
        position = end
    out.append(html.escape(text[position:]))
    return "".join(out)


def _fit_lines(text: str, metrics: QFontMetrics, width: int, lines: int) -> str:
    """Cut text so that it wraps into at most `lines` lines, ending with an ellipsis."""
    words = text.split()
    out: list[str] = []
    line = ""
    for word in words:
        candidate = f"{line} {word}".strip()
        if metrics.horizontalAdvance(candidate) <= width:
            line = candidate
            continue
        out.append(line)
        line = word
        if len(out) == lines:
            break
    if len(out) < lines and line:
        out.append(line)
        return " ".join(out)
    last = metrics.elidedText(out[-1] + " …", Qt.TextElideMode.ElideRight, width)
    return " ".join([*out[:-1], last])
