"""Result cards paint the best chunk's heading on the folder line, weaker matches sit
collapsed behind one row, badges fall down the list; offscreen, without a model."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QListView, QStyleOptionViewItem
from pytestqt.qtbot import QtBot

from localsearch.core.searcher import SearchHit
from localsearch.gui.results import (
    HitRole,
    ResultDelegate,
    ResultsModel,
    _share_line,
    badge_text,
    results_summary,
)


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


def _scored(name: str, score: float, weak: bool) -> SearchHit:
    return SearchHit(
        path=f"/notes/{name}",
        name=name,
        folder="/notes",
        score=score,
        snippet="A line of text.",
        page=None,
        start_char=0,
        end_char=15,
        chunk=0,
        rank_score=score,
        cosine=0.4,
        weak=weak,
    )


def test_weaker_matches_sit_collapsed_behind_one_row(qtbot: QtBot) -> None:
    view = QListView()
    qtbot.addWidget(view)
    model = ResultsModel(view)
    view.setModel(model)
    view.setItemDelegate(ResultDelegate(view))
    view.resize(420, 600)
    hits = [_scored("a.txt", 0.82, False), _scored("b.txt", 0.51, False)]
    hits += [_scored(f"w{i}.txt", 0.3 - i / 100, True) for i in range(5)]
    model.set_hits(hits)
    view.show()
    qtbot.waitExposed(view)
    assert model.rowCount() == 3  # two close matches and the row that holds the rest
    assert model.index(2).data(Qt.ItemDataRole.DisplayRole) == "▸ Show 5 weaker matches"
    assert model.index(2).data(HitRole) is None
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(model.index(2)).center())
    assert model.rowCount() == 8 and model.expanded
    assert model.index(2).data(Qt.ItemDataRole.DisplayRole) == "▾ Hide 5 weaker matches"
    shown = [model.index(r).data(HitRole) for r in range(model.rowCount())]
    badges = [int(badge_text(h).rstrip("%")) for h in shown if h is not None]
    assert badges == sorted(badges, reverse=True) and badge_text(hits[0]) == "82%"
    assert not view.grab().isNull()
    assert results_summary(hits, "notes") == "2 matches for “notes”, closest first · 5 weaker matches below"
    assert results_summary(hits[2:], "notes").startswith("No close match for “notes”")


def test_only_weak_matches_are_shown_open(qtbot: QtBot) -> None:
    model = ResultsModel()
    model.set_hits([_scored("w.txt", 0.2, True)])
    assert model.expanded and model.rowCount() == 2
    assert model.index(1).data(HitRole).name == "w.txt"
