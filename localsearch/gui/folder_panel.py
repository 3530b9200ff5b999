"""The indexed folders beside the results: the list, Update and Remove, and the files that
could not be indexed. It asks; the window does (and confirms nothing on its own but removal)."""

from __future__ import annotations

import os

from PySide6.QtCore import QEvent, QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from localsearch.gui import theme
from localsearch.gui.widgets import folder_labels


class FolderPanel(QWidget):
    update_requested = Signal()
    remove_requested = Signal(str)  # a folder to forget, the person having said yes
    failures_requested = Signal()
    open_requested = Signal(str)  # a folder to open in the file manager
    search_only_requested = Signal(str)  # narrow the results to this folder

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(150)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 6, 0)
        title = QLabel("<b>Indexed folders</b>", self)
        layout.addWidget(title)
        self.folder_list = QListWidget(self)
        self.folder_list.setAccessibleName("Indexed folders")
        self.folder_list.setAccessibleDescription("The folders localsearch reads; right-click one for more")
        title.setBuddy(self.folder_list)
        self.folder_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.folder_list.customContextMenuRequested.connect(self._menu)
        self.folder_list.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.folder_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        layout.addWidget(self.folder_list, 1)
        buttons = QHBoxLayout()
        self.reindex_button = QPushButton("Update index", self)
        self.reindex_button.setToolTip("Look for new, changed and deleted files in every folder (F5)")
        self.reindex_button.clicked.connect(self.update_requested)
        buttons.addWidget(self.reindex_button)
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.setAccessibleName("Remove folder")
        self.remove_button.setToolTip("Forget the selected folder (your files are not touched)")
        self.remove_button.clicked.connect(self.remove_selected)
        buttons.addWidget(self.remove_button)
        layout.addLayout(buttons)
        self.failures_button = QPushButton("", self)
        self.failures_button.setAccessibleName("Files that could not be indexed")
        self.failures_button.setFlat(True)
        self._style_failures_button()
        self.failures_button.clicked.connect(self.failures_requested)
        self.failures_button.hide()
        layout.addWidget(self.failures_button)
        self._folders: list[str] = []
        self._update_buttons()

    def set_folders(self, folders: list[str]) -> None:
        """Show these folders, keeping the selected one selected while it stays."""
        self._folders = list(folders)
        current = self.folder_list.currentItem()
        selected = current.data(Qt.ItemDataRole.UserRole) if current else None
        self.folder_list.clear()
        for folder, label in zip(self._folders, folder_labels(self._folders), strict=True):
            item = QListWidgetItem(label)
            item.setToolTip(folder)
            item.setData(Qt.ItemDataRole.UserRole, folder)
            if not os.path.exists(folder):
                item.setText(label + "  (not reachable)")
            self.folder_list.addItem(item)
            if folder == selected:
                self.folder_list.setCurrentItem(item)
        self._update_buttons()

    def show_failures(self, count: int) -> None:
        self.failures_button.setText(f"⚠ {count} file{'s' if count != 1 else ''} could not be indexed…")
        self.failures_button.setVisible(count > 0)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._style_failures_button()

    def _style_failures_button(self) -> None:
        # Amber that keeps 4.5:1 contrast against the window: darker on light palettes,
        # lighter on dark ones.
        colour = "#f0b050" if theme.is_dark(self.palette()) else "#8a5300"
        self.failures_button.setStyleSheet(f"text-align: left; color: {colour};")

    def _update_buttons(self) -> None:
        self.reindex_button.setEnabled(bool(self._folders))
        self.remove_button.setEnabled(bool(self._folders) and self.folder_list.currentItem() is not None)

    def remove_selected(self) -> None:
        item = self.folder_list.currentItem()
        if item is None:
            return
        folder = item.data(Qt.ItemDataRole.UserRole)
        answer = QMessageBox.question(
            self.window(),
            "Remove folder",
            f"Stop searching {folder}?\n\nIts entries leave the index; your files are not touched.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.remove_requested.emit(folder)

    def _menu(self, point: QPoint) -> None:
        item = self.folder_list.itemAt(point)
        if item is None:
            return
        folder = item.data(Qt.ItemDataRole.UserRole)
        menu = QMenu(self)
        menu.addAction("Open folder", lambda: self.open_requested.emit(folder))
        menu.addAction("Search only this folder", lambda: self.search_only_requested.emit(folder))
        menu.addAction("Remove from index…", self.remove_selected)
        menu.exec(self.folder_list.mapToGlobal(point))
