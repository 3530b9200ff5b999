"""Themes of our own, card borders in a dark palette, and a window that fits 800×500."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QComboBox, QLabel, QPushButton
from pytestqt.qtbot import QtBot

from localsearch.core.searcher import SearchHit
from localsearch.gui import theme
from localsearch.gui.main_window import MainWindow
from localsearch.gui.settings_dialog import SettingsDialog
from localsearch.settings import Settings
from localsearch.settings import load as load_settings


@pytest.fixture
def restore_theme(qapp: QApplication) -> Iterator[None]:
    palette, style = QPalette(qapp.palette()), qapp.style().name()
    yield
    from PySide6.QtWidgets import QStyleFactory

    qapp.setStyle(QStyleFactory.create(style))
    qapp.setPalette(palette)


@pytest.mark.usefixtures("restore_theme")
def test_dark_theme_is_applied_and_saved(qtbot: QtBot, make_window: Callable[[], MainWindow]) -> None:
    window = make_window()
    window.set_theme("dark")
    assert theme.is_dark(QApplication.palette())
    assert load_settings().theme == "dark"
    assert window.theme_actions["dark"].isChecked()
    window.set_theme("light")
    assert not theme.is_dark(QApplication.palette())


@pytest.mark.usefixtures("restore_theme")
def test_card_borders_show_in_a_dark_palette(qtbot: QtBot, make_window: Callable[[], MainWindow]) -> None:
    theme.apply("dark")
    window = make_window()
    window.resize(900, 600)
    window.show()
    hit = SearchHit("/d/a.txt", "a.txt", "/d", 0.6, "some text", None, 0, 9, 0)
    window.results_model.set_hits([hit])
    window.stack.setCurrentWidget(window.results_view)
    view = window.results_view
    qtbot.waitUntil(lambda: view.visualRect(window.results_model.index(0, 0)).height() > 0)
    image = view.viewport().grab().toImage()
    rect = view.visualRect(window.results_model.index(0, 0))
    # The card is inset 4 px; its border is on x = left + 4, the view's base outside it.
    y = rect.center().y()
    base = view.palette().color(QPalette.ColorRole.Base)
    border = max(
        (image.pixelColor(x, y) for x in range(rect.left() + 2, rect.left() + 7)),
        key=lambda c: abs(c.lightness() - base.lightness()),
    )
    assert abs(border.lightness() - base.lightness()) >= 20


def test_nothing_is_cut_at_800_by_500(qtbot: QtBot, make_window: Callable[[], MainWindow]) -> None:
    window = make_window()
    window.resize(800, 500)
    window.show()
    qtbot.waitExposed(window)
    assert window.width() == 800 and window.height() == 500
    for widget in window.findChildren(QPushButton) + window.findChildren(QComboBox):
        if widget.isVisible() and widget.window() is window:
            assert widget.width() >= widget.minimumSizeHint().width(), (
                widget.text() if isinstance(widget, QPushButton) else widget.currentText()
            )
    window.summary_label.setText(
        "12 close matches for “how do I renew my passport” · 50 files ranked, closest first"
    )
    QApplication.processEvents()
    assert window.summary_label.wordWrap()
    assert (
        window.summary_label.height() >= window.summary_label.heightForWidth(window.summary_label.width()) - 1
    )
    # The sidebar can be dragged wider.
    sizes = window.splitter.sizes()
    window.splitter.moveSplitter(sizes[0] + 80, 1)
    assert window.splitter.sizes()[0] > sizes[0]


def test_settings_offer_plain_words(qtbot: QtBot) -> None:
    dialog = SettingsDialog(Settings(exclude=["build/"], max_file_mb=20, threads=2, theme="dark"))
    qtbot.addWidget(dialog)
    assert dialog.exclude.toPlainText() == "build/"
    assert dialog.max_file_mb.value() == 20 and dialog.threads.value() == 2
    assert dialog.theme.currentData() == "dark"
    assert "pooled" not in dialog.late_chunking.toolTip()
    dialog.exclude.setPlainText("build/\n\n*.log  \n")
    dialog.keep_watching.setChecked(True)
    dialog.theme.setCurrentIndex(dialog.theme.findData("light"))
    chosen = dialog.chosen()
    assert chosen.exclude == ["build/", "*.log"]
    assert chosen.keep_watching is True and chosen.theme == "light"
    labels = [label.text() for label in dialog.findChildren(QLabel)]
    assert any("Largest file" in text for text in labels)


# The offscreen platform has no tray of its own and says so when a tray icon is shown.
@pytest.mark.qt_log_ignore("systemTrayWindowChanged")
def test_keep_watching_hides_to_the_tray_and_quit_really_quits(
    qtbot: QtBot, make_window: Callable[[], MainWindow], monkeypatch: pytest.MonkeyPatch
) -> None:
    from localsearch.gui.tray import Tray

    monkeypatch.setattr(Tray, "available", staticmethod(lambda: True))
    window = make_window()
    window.show()
    assert window.tray is None  # off by default
    window.close()
    assert not window.isVisible() and not window.monitor._thread.isRunning()

    window = make_window()
    window.show()
    window.apply_settings(dataclasses.replace(load_settings(), keep_watching=True))
    assert window.tray is not None and window.tray.is_visible()
    assert [a.text() for a in window.tray.menu.actions() if a.text()] == [
        "Search…",
        "&Pause indexing",
        "Quit localsearch",
    ]
    window.close()  # hides: the lanes go on
    assert not window.isVisible() and window.monitor._thread.isRunning()
    window.tray.menu.actions()[0].trigger()  # Search… brings it back, box focused
    assert window.isVisible()
    window.clear_search()  # Esc on an empty box hides again
    assert not window.isVisible()
    window.quit()
    assert not window.monitor._thread.isRunning() and window.tray is not None and not window.tray.is_visible()
