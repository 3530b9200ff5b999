"""The row under the search box that narrows the results: kind of file, when it was
modified, folder, and the order."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from localsearch.core.storage import Filters
from localsearch.gui.widgets import folder_labels

# The kinds of file, by extension.
FILE_KINDS: list[tuple[str, tuple[str, ...]]] = [
    ("All files", ()),
    ("PDF", (".pdf",)),
    ("Text and notes", (".txt", ".md", ".markdown", ".rst", ".org")),
    ("Word and OpenDocument", (".docx", ".odt")),
    ("Web pages", (".html", ".htm", ".xhtml")),
    ("E-books", (".epub",)),
    ("E-mail", (".eml",)),
    ("Data", (".csv", ".tsv", ".json")),
]
MODIFIED_WITHIN: list[tuple[str, int]] = [
    ("Any time", 0),
    ("Past week", 7),
    ("Past month", 31),
    ("Past year", 366),
]


class FilterBar(QWidget):
    changed = Signal()  # a choice changed: the search runs again

    def __init__(self, arrows: QObject, parent: QWidget | None = None) -> None:
        """arrows: the event filter that makes Up/Down open a box's list (PopupOnArrows)."""
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 4, 0, 0)
        self.type_box = QComboBox(self)
        for label, extensions in FILE_KINDS:
            self.type_box.addItem(label, extensions)
        self.date_box = QComboBox(self)
        for label, days in MODIFIED_WITHIN:
            self.date_box.addItem(label, days)
        self.folder_box = QComboBox(self)
        self.folder_box.addItem("All folders", "")
        self.folder_box.setMinimumContentsLength(8)
        self.folder_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.sort_box = QComboBox(self)
        self.sort_box.addItem("Best match first", "relevance")
        self.sort_box.addItem("Newest first", "date")
        for caption, box, description in (
            ("Type", self.type_box, "Only files of this kind"),
            ("Modified", self.date_box, "Only files changed within this time"),
            ("Folder", self.folder_box, "Only files in this folder"),
            ("Order", self.sort_box, "How the results are ordered"),
        ):
            caption_label = QLabel(caption, self)
            caption_label.setBuddy(box)
            box.setAccessibleName(caption)
            box.setAccessibleDescription(description)
            box.installEventFilter(arrows)
            row.addWidget(caption_label)
            row.addWidget(box)
            row.addSpacing(8)
            box.currentIndexChanged.connect(self.changed)
        row.addStretch(1)

    def filters(self) -> Filters:
        days = self.date_box.currentData()
        folder = self.folder_box.currentData()
        return Filters(
            folders=(folder,) if folder else (),
            extensions=tuple(self.type_box.currentData() or ()),
            after=time.time() - days * 86400 if days else None,
        )

    def sort(self) -> str:
        return str(self.sort_box.currentData())

    def narrowed(self) -> bool:
        """A type, date or folder filter is on."""
        return bool(
            self.type_box.currentIndex() or self.date_box.currentIndex() or self.folder_box.currentIndex()
        )

    def set_folders(self, folders: list[str]) -> None:
        """The folder choices follow the indexed folders, keeping the chosen one while it stays
        (a choice that went away widens to all folders and the search runs again)."""
        chosen = self.folder_box.currentData()
        self.folder_box.blockSignals(True)
        self.folder_box.clear()
        self.folder_box.addItem("All folders", "")
        for folder, label in zip(folders, folder_labels(folders), strict=True):
            self.folder_box.addItem(label, folder)
            self.folder_box.setItemData(self.folder_box.count() - 1, folder, Qt.ItemDataRole.ToolTipRole)
        self.folder_box.setCurrentIndex(max(0, self.folder_box.findData(chosen)))
        self.folder_box.blockSignals(False)
        if chosen and self.folder_box.currentData() != chosen:
            self.changed.emit()

    def only_folder(self, folder: str) -> None:
        self.folder_box.setCurrentIndex(self.folder_box.findData(folder))
