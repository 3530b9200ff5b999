"""The results list as a keyboard user meets it: Up from the first card goes back to the
search box, the current card carries a visible focus ring, and combo boxes open their list
on an arrow key instead of silently changing their choice."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QListView, QWidget

from localsearch.gui.keys import trigger_bound_action


class ResultsView(QListView):
    left_top = Signal()  # Up on the first result: the search box takes over

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Search results")
        self.setAccessibleDescription(
            "Enter opens the file, Ctrl+Enter shows it in its folder, Space shows its passages, "
            "Ctrl+C copies its path"
        )

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Up and self.currentIndex().row() <= 0:
            self.left_top.emit()
            event.accept()
            return
        if trigger_bound_action(self.actions(), event):
            return  # no shortcut took it (see gui/keys.py); the list must not take it instead
        super().keyPressEvent(event)

    def focus_first(self) -> None:
        """Take the keyboard with the first result current (if there is one)."""
        self.setFocus(Qt.FocusReason.TabFocusReason)
        if self.model() is not None and self.model().rowCount() and not self.currentIndex().isValid():
            self.setCurrentIndex(self.model().index(0, 0))
        elif self.currentIndex().isValid():
            self.selectionModel().select(
                self.currentIndex(), self.selectionModel().SelectionFlag.ClearAndSelect
            )

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        current = self.currentIndex()
        # The keyboard's place, drawn over the card so that every style shows it; fainter
        # while the window is in the background (where the keyboard comes back to).
        keyboard_here = self.hasFocus() or self.window().focusWidget() is self
        if not (keyboard_here and current.isValid()):
            return
        rect = self.visualRect(current).adjusted(3, 2, -3, -2)
        painter = QPainter(self.viewport())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = self.palette().color(QPalette.ColorRole.Highlight)
        if not self.hasFocus():
            colour.setAlpha(110)
        pen = QPen(colour, 2)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(rect, 7, 7)
        painter.end()


class PopupOnArrows(QObject):
    """An event filter for combo boxes: Up/Down open the list (a visible choice) instead
    of changing the selection unseen, e.g. when Tab has just landed on the box."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            isinstance(watched, QComboBox)
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down)
            and not event.modifiers() & Qt.KeyboardModifier.AltModifier
        ):
            watched.showPopup()
            return True
        if isinstance(watched, QComboBox) and event.type() == QEvent.Type.Wheel and not watched.hasFocus():
            return True  # scrolling the page over a box must not change it either
        return super().eventFilter(watched, event)
