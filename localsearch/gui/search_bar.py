"""The top row: the search box, the search mode, and Add folder / Settings."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

SEARCH_MODES = (
    ("Meaning + words", "hybrid", "Files that match your words or what they mean (best for most searches)"),
    ("Meaning", "semantic", "Files about the same thing, even in other words"),
    ("Exact words", "keyword", 'Files containing your words; "quote" a phrase to match it literally'),
)


class SearchBar(QWidget):
    def __init__(self, arrows: QObject, parent: QWidget | None = None) -> None:
        """arrows: the event filter that makes Up/Down open a box's list (PopupOnArrows)."""
        super().__init__(parent)
        top = QHBoxLayout(self)
        top.setContentsMargins(0, 0, 0, 0)
        self.search_box = QLineEdit(self)
        self.search_box.setPlaceholderText("Search your files by meaning — e.g. “how do I renew my passport”")
        self.search_box.setAccessibleName("Search")
        self.search_box.setAccessibleDescription("Type in your own words; Down moves into the results")
        self.search_box.setToolTip("Type in your own words. ↓ moves into the results; Esc clears.")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.setMinimumHeight(34)
        self.search_box.setMinimumWidth(200)
        font = self.search_box.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.search_box.setFont(font)
        top.addWidget(self.search_box, 1)
        self.mode_box = QComboBox(self)
        self.mode_box.setMinimumHeight(34)
        self.mode_box.setAccessibleName("Search mode")
        for label, mode, tip in SEARCH_MODES:
            self.mode_box.addItem(label, mode)
            self.mode_box.setItemData(self.mode_box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.mode_box.installEventFilter(arrows)
        self.mode_box.setAccessibleDescription("What a result must share with your words")
        # A visible caption: on Linux, screen readers name a combo box by its label, not
        # by its accessible name.
        caption = QLabel("Match", self)
        caption.setBuddy(self.mode_box)
        top.addSpacing(4)
        top.addWidget(caption)
        top.addWidget(self.mode_box)
        self.add_button = QPushButton("Add folder…", self)
        self.add_button.setMinimumHeight(34)
        self.add_button.setToolTip("Choose another folder to search (Ctrl+O)")
        top.addWidget(self.add_button)
        self.settings_button = QPushButton("Settings…", self)
        self.settings_button.setMinimumHeight(34)
        self.settings_button.setToolTip("How files are indexed, and how the window looks")
        top.addWidget(self.settings_button)
