"""An unexpected exception reaches the log and a readable dialog, never a traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from localsearch.errors import UserFacingError
from localsearch.gui import errors
from localsearch.gui.main_window import MainWindow


@pytest.fixture
def keep_hook() -> Iterator[None]:
    saved = sys.excepthook
    yield
    sys.excepthook = saved


@pytest.mark.usefixtures("keep_hook")
def test_an_unexpected_error_is_logged_and_shown_in_words(
    qtbot: QtBot, make_window: Callable[[], MainWindow], caplog: pytest.LogCaptureFixture
) -> None:
    window = make_window()
    window.show()
    hook = errors.install(window.show_error)
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError as exc:
        with caplog.at_level(logging.ERROR):
            hook(type(exc), exc, exc.__traceback__)
    assert "Traceback" in caplog.text or caplog.records[-1].exc_info
    box = window.findChild(QMessageBox)
    assert box is not None and box.isVisible()
    assert box.windowTitle() == "Something went wrong"
    assert "ZeroDivisionError: division by zero" in box.text() and "Traceback" not in box.text()
    assert "your files and the index are safe" in box.text()
    box.close()


def test_our_own_errors_say_what_to_do() -> None:
    title, text = errors.message_for(UserFacingError("The folder /x is not reachable"))
    assert title == "localsearch" and text == "The folder /x is not reachable"
