"""Keys bound to actions, for when Qt's shortcut map does not see them.

Qt matches shortcuts only while a window is its active window. Under X with focus that
follows the pointer (an X server without a window manager, or an old-style one), a window
receives key presses without ever being made active: every shortcut is dead while plain
keys still reach the focused widget, where a list view takes Space and Ctrl+C for its own.
Widgets that hold actions call `trigger_bound_action` first in keyPressEvent: a key press
that arrives there is one no shortcut took."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence

_MODIFIER_KEYS = (Qt.Key.Key_unknown, Qt.Key.Key_Shift, Qt.Key.Key_Control, Qt.Key.Key_Alt, Qt.Key.Key_Meta)


def trigger_bound_action(actions: Iterable[QAction], event: QKeyEvent) -> bool:
    """Trigger the enabled action one of whose shortcuts is this key press; True if one was."""
    if event.key() in _MODIFIER_KEYS:
        return False
    # Enter on the keypad is Enter: shortcuts do not name the keypad.
    modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    pressed = QKeySequence(event.key() | modifiers.value)
    for action in actions:
        if not action.isEnabled():
            continue
        if any(s.matches(pressed) == QKeySequence.SequenceMatch.ExactMatch for s in action.shortcuts()):
            action.trigger()
            event.accept()
            return True
    return False
