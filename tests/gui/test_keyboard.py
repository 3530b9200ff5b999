"""The window works from the keyboard alone, and every action sits in a menu with its key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QGuiApplication, QKeyEvent
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from localsearch.gui.main_window import MainWindow
from tests.gui.conftest import index_with_fake, write_notes


@pytest.fixture
def searched(qtbot: QtBot, tmp_path: Path, make_window: Callable[[], MainWindow]) -> MainWindow:
    docs = write_notes(
        tmp_path / "notes",
        {
            "bread.txt": "Bread recipe: flour, water, salt and yeast, baked bread.",
            "soup.txt": "Soup recipe with bread on the side.",
            "cake.txt": "Cake recipe with flour and sugar.",
        },
    )
    index_with_fake(docs)
    window = make_window()
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    with qtbot.waitSignal(window.results_shown, timeout=30_000) as shown:
        window.search_box.setFocus()
        qtbot.keyClicks(window.search_box, "bread recipe")
    assert shown.args[0] >= 2
    qtbot.waitUntil(window.search_box.hasFocus, timeout=5_000)
    return window


def test_down_moves_into_the_results_and_up_comes_back(qtbot: QtBot, searched: MainWindow) -> None:
    window = searched
    qtbot.keyClick(window.search_box, Qt.Key.Key_Down)
    assert window.results_view.hasFocus()
    assert window.results_view.currentIndex().row() == 0
    qtbot.keyClick(window.results_view, Qt.Key.Key_Down)
    assert window.results_view.currentIndex().row() == 1
    qtbot.keyClick(window.results_view, Qt.Key.Key_Up)
    assert window.results_view.currentIndex().row() == 0 and window.results_view.hasFocus()
    qtbot.keyClick(window.results_view, Qt.Key.Key_Up)
    assert window.search_box.hasFocus()
    assert window.search_box.text() == "bread recipe"


def test_enter_opens_ctrl_enter_reveals_ctrl_c_copies(
    qtbot: QtBot, searched: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = searched
    opened: list[tuple[str, int | None]] = []
    revealed: list[str] = []
    monkeypatch.setattr(window, "open_path", lambda path, page=None: opened.append((path, page)))
    monkeypatch.setattr(window, "reveal_path", revealed.append)
    qtbot.keyClick(window.search_box, Qt.Key.Key_Down)
    first = window.results_model.hits[0]
    qtbot.keyClick(window.results_view, Qt.Key.Key_Return)
    assert opened == [(first.path, first.page)]
    qtbot.keyClick(window.results_view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert revealed == [first.path]
    QGuiApplication.clipboard().clear()
    qtbot.keyClick(window.results_view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == first.path
    assert opened == [(first.path, first.page)]  # nothing else opened on the way


def test_escape_clears_and_ctrl_k_l_f_focus_the_box(qtbot: QtBot, searched: MainWindow) -> None:
    window = searched
    for key in (Qt.Key.Key_K, Qt.Key.Key_L, Qt.Key.Key_F):
        window.results_view.setFocus()
        assert window.results_view.hasFocus()
        qtbot.keyClick(window.results_view, key, Qt.KeyboardModifier.ControlModifier)
        assert window.search_box.hasFocus(), key
        assert window.search_box.selectedText() == "bread recipe"
    window.results_view.setFocus()
    qtbot.keyClick(window.results_view, Qt.Key.Key_Escape)
    assert window.search_box.text() == "" and window.search_box.hasFocus()
    assert window.results_model.rowCount() == 0


def test_tab_goes_to_the_results_and_down_never_changes_the_mode(qtbot: QtBot, searched: MainWindow) -> None:
    window = searched
    mode = window.mode_box.currentIndex()
    qtbot.keyClick(window.search_box, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is window.results_view
    qtbot.keyClick(window.results_view, Qt.Key.Key_Down)
    assert window.mode_box.currentIndex() == mode
    # Tab on to the mode box: an arrow opens its list (visible) instead of changing it unseen.
    qtbot.keyClick(window.results_view, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is window.mode_box
    qtbot.keyClick(window.mode_box, Qt.Key.Key_Down)
    assert window.mode_box.currentIndex() == mode
    assert window.mode_box.view().isVisible()
    window.mode_box.hidePopup()


def test_the_current_result_has_a_visible_focus_ring(qtbot: QtBot, searched: MainWindow) -> None:
    window = searched
    view = window.results_view
    view.setCurrentIndex(window.results_model.index(0, 0))
    window.search_box.setFocus()
    unfocused = view.viewport().grab().toImage()
    view.setFocus()
    qtbot.waitUntil(view.hasFocus)
    focused = view.viewport().grab().toImage()
    rect = view.visualRect(window.results_model.index(0, 0))
    ring = view.palette().color(view.palette().ColorRole.Highlight)
    # On the card's left edge, the ring's colour shows only while the list has the keyboard.
    y = rect.center().y()
    xs = range(rect.left(), rect.left() + 8)

    def ring_pixels(image: object) -> int:
        return sum(
            1
            for x in xs
            if abs(image.pixelColor(x, y).red() - ring.red()) < 40  # type: ignore[attr-defined]
            and abs(image.pixelColor(x, y).blue() - ring.blue()) < 40  # type: ignore[attr-defined]
            and abs(image.pixelColor(x, y).green() - ring.green()) < 40  # type: ignore[attr-defined]
        )

    assert ring_pixels(focused) >= 1
    assert ring_pixels(unfocused) == 0


def test_menu_bar_lists_every_action_with_its_shortcut(searched: MainWindow) -> None:
    window = searched
    menus = {action.text().replace("&", ""): action.menu() for action in window.menuBar().actions()}
    assert list(menus) == ["File", "Edit", "View", "Help"]

    def entries(title: str) -> dict[str, str]:
        return {
            a.text().replace("&", ""): a.shortcut().toString()
            for a in menus[title].actions()  # type: ignore[union-attr]
            if not a.isSeparator()
        }

    file_menu = entries("File")
    assert file_menu["Add folder…"] == "Ctrl+O"
    assert file_menu["Update index"] == "F5"
    assert file_menu["Quit"] == "Ctrl+Q"
    edit = entries("Edit")
    assert edit["Open"] == "Return"
    assert edit["Show in folder"] == "Ctrl+Return"
    assert edit["Copy path"] == "Ctrl+C"
    assert edit["Find"] == "Ctrl+F"
    assert edit["Clear search"] == "Esc"
    view = entries("View")
    assert view["Preview pane"] == "Space"
    assert "Theme" in view
    assert "About localsearch" in entries("Help")


NO_MODIFIER = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def inactive(qtbot: QtBot, searched: MainWindow) -> MainWindow:
    """The window has the keyboard but is not Qt's active window: what an X server without
    a window manager (focus follows the pointer) gives. Qt's shortcut map then takes no key,
    and each key reaches the focused widget as a plain key press."""
    other = QWidget()
    qtbot.addWidget(other)
    other.show()
    other.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is other, timeout=5_000)
    assert QApplication.activeWindow() is not searched
    return searched


def _press(widget: QWidget, key: Qt.Key, modifiers: Qt.KeyboardModifier = NO_MODIFIER) -> None:
    """A key press and release delivered to widget as the platform delivers them (no
    shortcut map in between, as in an inactive window)."""
    for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
        QApplication.sendEvent(widget, QKeyEvent(kind, key, modifiers))


def test_space_on_a_result_opens_the_preview_when_no_shortcut_takes_it(
    qtbot: QtBot, inactive: MainWindow
) -> None:
    window = inactive
    view = window.results_view
    view.setFocus()
    view.setCurrentIndex(window.results_model.index(0, 0))
    with qtbot.waitSignal(window.monitor.passages, timeout=10_000):
        _press(view, Qt.Key.Key_Space)
    assert window.preview.isVisible() and window.preview_action.isChecked()
    _press(view, Qt.Key.Key_Space)
    assert not window.preview.isVisible()


def test_result_keys_work_when_no_shortcut_takes_them(
    qtbot: QtBot, inactive: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = inactive
    view = window.results_view
    opened: list[str] = []
    revealed: list[str] = []
    monkeypatch.setattr(window, "open_path", lambda path, page=None: opened.append(path))
    monkeypatch.setattr(window, "reveal_path", revealed.append)
    view.setFocus()
    view.setCurrentIndex(window.results_model.index(0, 0))
    first = window.results_model.hits[0]
    _press(view, Qt.Key.Key_Return)
    assert opened == [first.path]
    _press(view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert revealed == [first.path]
    QGuiApplication.clipboard().clear()
    _press(view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == first.path  # the path, not the card's text
    for key in (Qt.Key.Key_K, Qt.Key.Key_L, Qt.Key.Key_F):
        view.setFocus()
        _press(view, key, Qt.KeyboardModifier.ControlModifier)
        # The window's keyboard focus (where its next key goes; hasFocus() wants it active).
        assert window.focusWidget() is window.search_box, key
    view.setFocus()
    _press(view, Qt.Key.Key_Escape)
    assert window.search_box.text() == "" and window.focusWidget() is window.search_box


def test_enter_on_the_weaker_matches_row_shows_and_hides_them(
    qtbot: QtBot, make_window: Callable[[], MainWindow]
) -> None:
    from localsearch.core.searcher import SearchHit

    window = make_window()
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    strong = SearchHit("/d/a.txt", "a.txt", "/d", 0.8, "close", None, 0, 5, 0)
    weak = [
        SearchHit(f"/d/w{n}.txt", f"w{n}.txt", "/d", 0.1, "far", None, 0, 3, 0, weak=True) for n in range(2)
    ]
    window.results_model.set_hits([strong, *weak])
    window.stack.setCurrentWidget(window.results_view)
    assert window.results_model.rowCount() == 2  # the close match and "show 2 weaker matches"
    view = window.results_view
    view.setFocus()
    view.setCurrentIndex(window.results_model.index(1, 0))
    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert window.results_model.rowCount() == 4
    assert view.currentIndex().row() == 1  # the keyboard stays on the row
    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert window.results_model.rowCount() == 2
