"""The right-hand side of the window: a summary line, then the results (or a placeholder,
or the first run's welcome view), with the preview pane beside them."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListView,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from localsearch.gui.preview import PreviewPane
from localsearch.gui.results import ResultDelegate, ResultsModel
from localsearch.gui.results_view import ResultsView
from localsearch.gui.welcome import WelcomeView
from localsearch.gui.widgets import suggested_folders


class ResultsPane(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 0, 0)
        self.summary_label = QLabel("", self)
        self.summary_label.setWordWrap(True)
        layout.addWidget(self.summary_label)
        self.content = QSplitter(Qt.Orientation.Horizontal, self)
        self.content.setChildrenCollapsible(False)
        self.stack = QStackedWidget(self.content)
        self.welcome = WelcomeView(suggested_folders(), self.stack)
        self.placeholder = QLabel("", self)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        # WindowText at reduced strength: readable in light and dark palettes alike.
        self.placeholder.setStyleSheet("font-size: 15px; padding: 40px;")
        self.results_model = ResultsModel(self)
        self.results_view = ResultsView(self)
        self.results_view.setModel(self.results_model)
        self.results_view.setItemDelegate(ResultDelegate(self.results_view))
        self.results_view.setMouseTracking(True)
        self.results_view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.results_view.setFrameShape(QListView.Shape.NoFrame)
        self.results_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.results_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.results_view)
        self.stack.addWidget(self.welcome)
        self.preview = PreviewPane(self.content)
        self.preview.hide()
        self.content.addWidget(self.stack)
        self.content.addWidget(self.preview)
        self.content.setStretchFactor(0, 3)
        self.content.setStretchFactor(1, 2)
        layout.addWidget(self.content, 1)

    def showing_results(self) -> bool:
        return self.stack.currentWidget() is self.results_view

    def place_preview(self, wanted: bool) -> None:
        """The preview shows when wanted and there are results beside it."""
        was_visible = self.preview.isVisible()
        self.preview.setVisible(wanted and self.showing_results())
        if self.preview.isVisible() and not was_visible:
            # Opened: give it two fifths of the room, enough for passages to read as text.
            total = sum(self.content.sizes()) or self.content.width()
            self.content.setSizes([total * 3 // 5, total - total * 3 // 5])
