"""Files that could not be indexed: why, and what to do about each (open it, show it in
its folder, try it again), narrowed to one kind of reason."""

from __future__ import annotations

import html
import os
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


def reason_kind(reason: str) -> str:
    """The kind of a recorded reason: its words before the first colon ("encrypted PDF")."""
    head = reason.split(":", 1)[0].strip()
    return head if head and len(head) <= 40 else "Other"


class FailuresDialog(QDialog):
    def __init__(
        self,
        failures: list[dict],
        parent: QWidget | None = None,
        *,
        open_file: Callable[[str], None] | None = None,
        reveal: Callable[[str], None] | None = None,
        retry: Callable[[list[str]], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Files that could not be indexed")
        self.resize(860, 440)
        self._failures = failures
        self._open, self._reveal, self._retry = open_file, reveal, retry
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(
            QLabel(f"{len(failures)} files were skipped. Each is tried again when it changes.", self), 1
        )
        self.kind_box = QComboBox(self)
        self.kind_box.setAccessibleName("Show reasons")
        self.kind_box.addItem(f"All reasons ({len(failures)})", "")
        kinds: dict[str, int] = {}
        for item in failures:
            kind = reason_kind(item["reason"])
            kinds[kind] = kinds.get(kind, 0) + 1
        for kind, count in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])):
            self.kind_box.addItem(f"{kind} ({count})", kind)
        self.kind_box.currentIndexChanged.connect(self._filter)
        show = QLabel("Show:", self)
        show.setBuddy(self.kind_box)
        top.addWidget(show)
        top.addWidget(self.kind_box)
        layout.addLayout(top)

        self.table = QTableWidget(len(failures), 3, self)
        self.table.setAccessibleName("Files that could not be indexed")
        self.table.setHorizontalHeaderLabels(["File", "Folder", "Reason"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        for row, item in enumerate(failures):
            name = QTableWidgetItem(os.path.basename(item["path"]))
            name.setToolTip(item["path"])
            self.table.setItem(row, 0, name)
            folder = QTableWidgetItem(os.path.dirname(item["path"]))
            folder.setToolTip(os.path.dirname(item["path"]))
            self.table.setItem(row, 1, folder)
            reason = QTableWidgetItem(item["reason"])
            reason.setToolTip(item["reason"])
            self.table.setItem(row, 2, reason)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setColumnWidth(1, 180)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda *_: self._act(self._open))
        layout.addWidget(self.table)
        # The selected file's whole reason: the column cuts the long ones (what to do about
        # a scanned PDF is at their end).
        self.details = QLabel("", self)
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAccessibleName("Why the selected file was skipped")
        layout.addWidget(self.details)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.open_button = QPushButton("Open", self)
        self.reveal_button = QPushButton("Show in folder", self)
        self.retry_button = QPushButton("Try again", self)
        self.retry_button.setToolTip(
            "Read the selected files again now (e.g. after adding a password-free copy)"
        )
        for button in (self.open_button, self.reveal_button, self.retry_button):
            buttons.addButton(button, QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.clicked.connect(lambda: self._act(self._open))
        self.reveal_button.clicked.connect(lambda: self._act(self._reveal))
        self.retry_button.clicked.connect(self._retry_selected)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._update_buttons()

    def _path(self, row: int) -> str:
        return str(self._failures[row]["path"])

    def selected_paths(self) -> list[str]:
        rows = sorted({index.row() for index in self.table.selectedIndexes()})
        return [self._path(row) for row in rows]

    def visible_paths(self) -> list[str]:
        return [self._path(row) for row in range(self.table.rowCount()) if not self.table.isRowHidden(row)]

    def _filter(self) -> None:
        kind = self.kind_box.currentData()
        for row, item in enumerate(self._failures):
            self.table.setRowHidden(row, bool(kind) and reason_kind(item["reason"]) != kind)
        self.table.clearSelection()

    def _update_buttons(self) -> None:
        chosen = self.selected_paths()
        rows = sorted({index.row() for index in self.table.selectedIndexes()})
        if len(rows) == 1:
            item = self._failures[rows[0]]
            self.details.setText(
                f"<b>{html.escape(os.path.basename(item['path']))}</b>: {html.escape(item['reason'])}"
            )
        else:
            self.details.setText("")
        self.open_button.setEnabled(len(chosen) == 1 and self._open is not None)
        self.reveal_button.setEnabled(len(chosen) == 1 and self._reveal is not None)
        self.retry_button.setEnabled(bool(chosen) and self._retry is not None)

    def _act(self, action: Callable[[str], None] | None) -> None:
        chosen = self.selected_paths()
        if action is not None and len(chosen) == 1:
            action(chosen[0])

    def _retry_selected(self) -> None:
        chosen = self.selected_paths()
        if chosen and self._retry is not None:
            self._retry(chosen)
