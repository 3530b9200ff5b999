"""The results list: a model of search hits and a delegate that paints them as cards."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QTextDocument
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from localsearch.core.searcher import SearchHit

HitRole = Qt.ItemDataRole.UserRole + 1
# Below this cosine, all-MiniLM-L6-v2 pairs are mostly unrelated: such cards are dimmed.
WEAK_SCORE = 0.2
AnyIndex = QModelIndex | QPersistentModelIndex


class ResultsModel(QAbstractListModel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hits: list[SearchHit] = []

    def set_hits(self, hits: list[SearchHit]) -> None:
        self.beginResetModel()
        self.hits = list(hits)
        self.endResetModel()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.hits)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.hits):
            return None
        hit = self.hits[index.row()]
        if role == HitRole:
            return hit
        if role == Qt.ItemDataRole.DisplayRole:
            return hit.name
        if role == Qt.ItemDataRole.ToolTipRole:
            page = f"\nPage {hit.page}" if hit.page else ""
            heading = f"\nSection: {hit.heading}" if hit.heading else ""
            return f"{hit.path}{page}{heading}\nSimilarity {hit.score:.3f}\nDouble-click to open"
        return None


def score_color(score: float) -> QColor:
    """Green for close matches, amber for fair ones, grey for weak ones."""
    if score >= 0.5:
        return QColor("#2e7d32")
    if score >= 0.3:
        return QColor("#b26a00")
    return QColor("#757575")


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
            return
        painter.save()
        palette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        card = option.rect.adjusted(4, 3, -4, -3)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if hit.score < WEAK_SCORE:
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
        badge_text = f"{hit.score:.2f}"
        fm_small = QFontMetrics(small_font)
        badge_w = fm_small.horizontalAdvance(badge_text) + 14
        title_h = QFontMetrics(title_font).height()
        badge = QRect(
            inner.right() - badge_w,
            inner.top() + (title_h - fm_small.height() - 4) // 2,
            badge_w,
            fm_small.height() + 4,
        )
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(score_color(hit.score))
        painter.drawRoundedRect(badge, badge.height() / 2, badge.height() / 2)
        painter.setFont(small_font)
        painter.setPen(QColor("white"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, badge_text)

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
            fm_small.elidedText(hit.folder, Qt.TextElideMode.ElideMiddle, folder_width),
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
            f'<span style="color: {text_color.name()}">{_marked_html(fitted, hit.highlights)}</span>'
        )
        painter.save()
        painter.translate(snippet_rect.topLeft())
        document.drawContents(painter, QRectF(0, 0, snippet_rect.width(), snippet_rect.height()))
        painter.restore()
        painter.restore()


def _share_line(hit: SearchHit, metrics: QFontMetrics, width: int) -> tuple[int, int, int]:
    """The folder's width, and where the heading starts and its width, on one line: each
    gets what it needs when both fit, else the heading at most half (more if the folder
    leaves it), both elided."""
    if not hit.heading:
        return width, 0, 0
    gap = metrics.horizontalAdvance("    ")
    folder = metrics.horizontalAdvance(hit.folder) + 1  # elidedText wants a pixel to spare
    heading = metrics.horizontalAdvance(f"§ {hit.heading}") + 1
    if folder + gap + heading > width:
        heading = min(heading, max(width // 2, width - folder - gap))
    heading = max(0, min(heading, width - gap))
    folder = min(folder, width - heading - gap)
    return max(0, folder), max(0, folder) + gap, heading


def _marked_html(text: str, spans: list[tuple[int, int]]) -> str:
    """HTML of text with the given spans in bold; spans past the end of text are dropped."""
    out: list[str] = []
    position = 0
    for start, end in sorted(spans):
        if start < position or end > len(text):
            continue
        out.append(html.escape(text[position:start]))
        out.append(f"<b>{html.escape(text[start:end])}</b>")
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
