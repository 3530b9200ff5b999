"""Result cards paint the best chunk's heading on the folder line, offscreen, without a model."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QListView, QStyleOptionViewItem
from pytestqt.qtbot import QtBot

from localsearch.core.searcher import SearchHit
from localsearch.gui.results import ResultDelegate, ResultsModel, _share_line


def _hit(name: str, folder: str, heading: str | None) -> SearchHit:
    return SearchHit(
        path=f"{folder}/{name}",
        name=name,
        folder=folder,
        score=0.61,
        snippet="Water the tomatoes every morning.",
        page=None,
        start_char=0,
        end_char=33,
        chunk=2,
        highlights=[(10, 18)],
        heading=heading,
    )


def test_cards_with_a_heading_paint_at_the_same_height(qtbot: QtBot) -> None:
    view = QListView()
    qtbot.addWidget(view)
    model = ResultsModel(view)
    delegate = ResultDelegate(view)
    view.setModel(model)
    view.setItemDelegate(delegate)
    view.resize(420, 500)
    hits = [
        _hit("garden.md", "/home/me/notes", "Watering tomatoes"),
        _hit("plain.txt", "/home/me/notes", None),
        _hit("long.md", "/home/me/" + "very-deep-folder/" * 12, "A heading " * 20),
    ]
    model.set_hits(hits)
    view.show()
    option = QStyleOptionViewItem()
    option.initFrom(view)
    heights = {delegate.sizeHint(option, model.index(row)).height() for row in range(len(hits))}
    assert len(heights) == 1
    assert not view.grab().isNull()
    tooltip = model.data(model.index(0), Qt.ItemDataRole.ToolTipRole)
    assert "Section: Watering tomatoes" in tooltip
    assert "Section" not in model.data(model.index(1), Qt.ItemDataRole.ToolTipRole)


def test_folder_and_heading_share_the_line(qtbot: QtBot) -> None:
    view = QListView()
    qtbot.addWidget(view)
    metrics = QFontMetrics(view.font())
    width = 400
    assert _share_line(_hit("a.txt", "/f", None), metrics, width) == (width, 0, 0)
    short = _hit("a.md", "/f", "Usage")
    folder, x, heading = _share_line(short, metrics, width)
    assert folder == metrics.horizontalAdvance("/f") + 1 and heading >= metrics.horizontalAdvance("§ Usage")
    assert folder < x and x + heading <= width
    crowded = _hit("a.md", "/a/" + "b" * 300, "Heading " * 40)
    folder, x, heading = _share_line(crowded, metrics, width)
    assert heading == width // 2 and x + heading <= width and folder > 0
