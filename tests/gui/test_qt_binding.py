"""The Qt binding keeps Python's reference counts: PySide6 6.12.0 under CPython 3.11 drops
a reference to None (or True/False) on calls that return them, so a long session ends in
"Fatal Python error: none_dealloc" (seen after a few hundred searches in the window)."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

CALLS = 200  # few enough that a leaking binding cannot bring None's count to zero here


def test_calls_into_qt_keep_none_and_bools_alive(qtbot: QtBot) -> None:
    label = QLabel()
    qtbot.addWidget(label)
    label.setText("warm")
    none_before = sys.getrefcount(None)
    for _ in range(CALLS):
        label.setText("x")  # returns None
    none_lost = none_before - sys.getrefcount(None)
    bools_before = sys.getrefcount(True) + sys.getrefcount(False)
    for _ in range(CALLS):
        label.isVisible()  # returns a bool
    bools_lost = bools_before - sys.getrefcount(True) - sys.getrefcount(False)
    assert none_lost < CALLS // 2 and bools_lost < CALLS // 2, (
        f"the Qt binding lost {none_lost} references to None and {bools_lost} to True/False "
        f"in {CALLS} calls: use another PySide6 version (6.12.0 has this bug; 6.11.3 does not)"
    )
