"""Every control a keyboard can reach has a name a screen reader says (its own accessible
name, its text, or its label's), and Tab walks the main window in a sensible order."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible, QIcon
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLabel,
    QWidget,
)
from pytestqt.qtbot import QtBot

from localsearch.gui.failures import FailuresDialog
from localsearch.gui.main_window import MainWindow
from localsearch.gui.models_dialog import ModelsDialog
from localsearch.gui.settings_dialog import SettingsDialog
from localsearch.settings import Settings
from tests.gui.test_theme_and_layout import restore_theme  # noqa: F401 (a fixture)

FAILURES = [
    {"path": "/home/a/notes/broken.pdf", "reason": "broken PDF: no pages", "folder": "/home/a/notes"},
    {"path": "/home/a/notes/secret.docx", "reason": "encrypted document", "folder": "/home/a/notes"},
]


def _focusable(root: QWidget) -> list[QWidget]:
    """root and every widget below it that Tab can reach, whether on screen now or not."""
    widgets = [root, *root.findChildren(QWidget)]
    return [
        w
        for w in widgets
        if w.focusPolicy() & Qt.FocusPolicy.TabFocus
        # A scroll area's viewport, a spin box's or combo box's line edit belong to their owner.
        and not isinstance(w.parentWidget(), QAbstractScrollArea | QAbstractSpinBox | QComboBox)
        and w.window() is root.window()
    ]


def _name(widget: QWidget) -> str:
    """What names the control: its accessible name, a button's own text, or the text of a
    label that is its buddy. (Qt would fall back on a combo box's current choice, "All
    files", which names nothing.)"""
    if widget.accessibleName().strip():
        return widget.accessibleName().strip()
    if isinstance(widget, QAbstractButton) and widget.text().strip():
        return widget.text().replace("&", "").strip()
    for label in widget.window().findChildren(QLabel):
        if label.buddy() is widget and label.text().strip():
            return label.text().replace("&", "").strip()
    return ""


def _unnamed(root: QWidget) -> list[str]:
    return [
        f"{type(w).__name__} in {type(w.parentWidget()).__name__}" for w in _focusable(root) if not _name(w)
    ]


def _spoken(widget: QWidget) -> str:
    interface = QAccessible.queryAccessibleInterface(widget)
    return interface.text(QAccessible.Text.Name) if interface is not None else ""


def test_every_control_of_the_main_window_has_a_name(
    qtbot: QtBot, make_window: Callable[[], MainWindow]
) -> None:
    window = make_window()
    window.show()
    qtbot.waitExposed(window)
    # The states that bring more controls: the first run's welcome view, the notice bar with
    # its buttons, the progress's Pause button.
    window.notice.show_notice("Indexed 3 files.", [("Copy path", lambda: None)])
    window.pause_button.show()
    assert _focusable(window), "the walk found no control at all"
    assert _unnamed(window) == []
    assert _unnamed(window.welcome) == []
    # What a screen reader is handed is that name.
    assert _spoken(window.search_box) == "Search"


def test_every_control_of_the_dialogs_has_a_name(qtbot: QtBot) -> None:
    settings = SettingsDialog(Settings())
    models = ModelsDialog(1200)
    failures = FailuresDialog(FAILURES)
    for dialog in (settings, models, failures):
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        assert _focusable(dialog), type(dialog).__name__
        assert _unnamed(dialog) == [], type(dialog).__name__


def test_tab_walks_the_window_from_the_box_through_results_filters_and_folders(
    qtbot: QtBot, make_window: Callable[[], MainWindow]
) -> None:
    window = make_window()
    window._folders = ["/home/a/notes"]
    window._populate_folders()
    window._index_known = True
    window._update_placeholder()
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    window.search_box.setFocus()
    seen = [window.search_box]
    for _ in range(30):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        widget = QApplication.focusWidget()
        if widget is window.search_box:
            break
        seen.append(widget)
    expected = [
        window.search_box,
        window.results_view,
        window.mode_box,
        window.type_box,
        window.date_box,
        window.folder_box,
        window.sort_box,
        window.folder_list,
        window.reindex_button,
        window.add_button,
        window.settings_button,
    ]
    # In this order (controls hidden or disabled now are skipped), and round to the box again.
    assert [w for w in seen if w in expected] == [w for w in expected if w.isVisible() and w.isEnabled()]
    assert QApplication.focusWidget() is window.search_box


@pytest.mark.usefixtures("restore_theme")
def test_the_failed_files_line_is_readable_in_light_and_dark(
    qtbot: QtBot, make_window: Callable[[], MainWindow]
) -> None:
    from PySide6.QtGui import QColor, QPalette

    from localsearch.gui import theme
    from tests.gui.test_first_run_and_progress import contrast

    window = make_window()
    window.folder_panel.show_failures(2)
    for name in ("light", "dark"):
        theme.apply(name)
        sheet = window.failures_button.styleSheet()
        colour = QColor(sheet.split("color:")[1].strip(" ;"))
        background = window.failures_button.palette().color(QPalette.ColorRole.Window)
        assert contrast(colour, background) >= 4.5, (name, sheet)


def test_icons_are_the_rendered_assets_at_every_size(qapp: QApplication) -> None:
    """The window's and the tray's icon are assets/icons/localsearch.svg rendered at 16 to
    512 px (packaging/render_icons.py), so high-DPI screens get a sharp one."""
    from localsearch.gui import tray
    from localsearch.gui.app import app_icon

    sizes = {size.width() for size in app_icon().availableSizes()}
    assert {16, 24, 32, 48, 64, 128, 256, 512} <= sizes
    saved = QApplication.windowIcon()
    try:
        QApplication.setWindowIcon(QIcon())
        assert {size.width() for size in tray.app_icon().availableSizes()} == sizes
    finally:
        QApplication.setWindowIcon(saved)


def test_the_pause_button_is_named_for_what_it_does_now(make_window: Callable[[], MainWindow]) -> None:
    window = make_window()
    window._indexing_started()
    assert window.pause_button.text() == "Pause" and window.pause_button.accessibleName() == "Pause indexing"
    window._show_paused(True)
    assert (
        window.pause_button.text() == "Resume" and window.pause_button.accessibleName() == "Resume indexing"
    )
    assert window.pause_action.text() == "&Resume indexing"
