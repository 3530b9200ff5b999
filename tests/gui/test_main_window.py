"""The window opens offscreen, takes a query and shows results, with the real model."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from localsearch.core.service import LocalSearch
from localsearch.gui.main_window import MainWindow
from localsearch.gui.results import HitRole, WeakerRole, badge_text


@pytest.fixture
def indexed_home(tmp_path: Path, default_model: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "volcanoes.txt").write_text("Magma rises through the crust and erupts as lava from a volcano.")
    (docs / "taxes.md").write_text("# Taxes\n\nFile your income tax return before the April deadline.")
    with LocalSearch() as service:
        for _ in service.index_paths([docs]):
            pass
    return docs


def test_window_shows_results_for_a_query(qtbot: QtBot, indexed_home: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.status_shown, timeout=20_000):
        window.search_lane.refresh_status()
    assert window.folder_list.count() == 1
    assert "2 files" in window.statusBar().currentMessage()
    with qtbot.waitSignal(window.results_shown, timeout=30_000) as blocker:
        qtbot.keyClicks(window.search_box, "lava from a mountain")
    assert blocker.args == [2]
    first = window.results_model.hits[0]
    assert first.name == "volcanoes.txt"
    assert window.stack.currentWidget() is window.results_view
    assert "closest first" in window.summary_label.text()
    pixmap = window.grab()
    assert not pixmap.isNull()
    window.search_lane.stop()


def test_empty_window_invites_to_add_a_folder(qtbot: QtBot) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.status_shown, timeout=20_000):
        window.search_lane.refresh_status()
    # The first run's welcome view: one clear way to start.
    assert "Add a folder" in window.welcome.intro.text()
    assert window.stack.currentWidget() is window.welcome
    window.search_lane.stop()


def test_indexing_runs_in_a_child_process_and_updates_the_window(
    qtbot: QtBot, tmp_path: Path, default_model: Path
) -> None:
    docs = tmp_path / "notes"
    docs.mkdir()
    (docs / "garden.txt").write_text("Water the tomatoes every morning in summer.")
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.index_lane.finished, timeout=120_000) as blocker:
        window.add_folder(str(docs))
    assert blocker.args[0] is True
    with qtbot.waitSignal(window.results_shown, timeout=30_000):
        window.search_box.setText("vegetable gardening")
    assert window.results_model.hits[0].name == "garden.txt"
    window.search_lane.stop()


def test_a_file_saved_in_a_watched_folder_becomes_searchable(
    qtbot: QtBot, tmp_path: Path, default_model: Path
) -> None:
    docs = tmp_path / "watched"
    docs.mkdir()
    (docs / "first.txt").write_text("Notes about the weekly team meeting.")
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.index_lane.finished, timeout=120_000):
        window.add_folder(str(docs))
    with qtbot.waitSignal(window.index_lane.finished, timeout=120_000):
        (docs / "volcano.txt").write_text("Lava flows from the erupting volcano.")
    with qtbot.waitSignal(window.results_shown, timeout=30_000):
        window.search_box.setText("volcanic eruption")
    assert window.results_model.hits[0].name == "volcano.txt"
    window.search_lane.stop()


def test_filters_and_similar_files(qtbot: QtBot, indexed_home: Path) -> None:
    (indexed_home / "lava.txt").write_text("Lava from an erupting volcano cools into basalt rock.")
    with LocalSearch() as service:
        for _ in service.index_paths([indexed_home]):
            pass
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.results_shown, timeout=30_000):
        window.search_box.setText("volcano")
    assert {h.name for h in window.results_model.hits} == {"volcanoes.txt", "lava.txt", "taxes.md"}

    # Only PDFs: none is indexed, so nothing is left.
    with qtbot.waitSignal(window.results_shown, timeout=30_000) as blocker:
        window.type_box.setCurrentIndex(window.type_box.findText("PDF"))
    assert blocker.args == [0]
    assert "Nothing in your indexed files" in window.placeholder.text()
    with qtbot.waitSignal(window.results_shown, timeout=30_000):
        window.type_box.setCurrentIndex(0)
    assert len(window.results_model.hits) == 3

    # "Find similar files": files like volcanoes.txt, itself left out.
    with qtbot.waitSignal(window.results_shown, timeout=30_000):
        window.find_similar(str(indexed_home / "volcanoes.txt"))
    names = [h.name for h in window.results_model.hits]
    assert names[0] == "lava.txt" and "volcanoes.txt" not in names
    assert "like volcanoes.txt" in window.summary_label.text()
    window.search_lane.stop()


def test_window_orders_badges_and_sets_weaker_matches_apart(qtbot: QtBot, indexed_home: Path) -> None:
    for name, text in {
        "garden.txt": "Water the tomatoes every morning and prune the vines once a week.",
        "car.txt": "The car needs new brake pads and an oil change before winter.",
        "recipe.txt": "Banana bread: three ripe bananas, butter, sugar, an egg and flour.",
    }.items():
        (indexed_home / name).write_text(text)
    with LocalSearch() as service:
        for _ in service.index_paths([indexed_home]):
            pass
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.results_shown, timeout=30_000):
        window.search_box.setText("lava from a mountain")
    model = window.results_model
    assert model.strong and model.strong[0].name == "volcanoes.txt"
    assert model.weaker and not model.expanded  # the unrelated files wait behind one row
    rows = [model.index(r) for r in range(model.rowCount())]
    assert rows[-1].data(HitRole) is None and rows[-1].data(WeakerRole) == len(model.weaker)
    summary = window.summary_label.text()
    assert summary.startswith(f"{len(model.strong)} match") and f"{len(model.weaker)} weaker" in summary
    window.results_view.scrollTo(rows[-1])
    qtbot.mouseClick(
        window.results_view.viewport(),
        Qt.MouseButton.LeftButton,
        pos=window.results_view.visualRect(rows[-1]).center(),
    )
    assert model.expanded and model.rowCount() == len(model.hits) + 1
    shown = [model.index(r).data(HitRole) for r in range(model.rowCount())]
    badges = [float(badge_text(h).rstrip("%")) for h in shown if h is not None]
    assert badges == sorted(badges, reverse=True)  # the badge is what the list is ordered by
    assert not window.grab().isNull()
    window.search_lane.stop()
