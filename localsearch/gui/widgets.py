"""Small pieces of the main window: the notice bar, folder labels, suggested folders."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QWidget,
)


def folder_labels(folders: list[str]) -> list[str]:
    """A short label per folder: its name, plus as many parent names as it takes to tell
    apart folders with the same name ("Documents — alice", "Documents — bob")."""
    parts = [Path(f).parts for f in folders]
    labels = []
    for index, folder_parts in enumerate(parts):
        name = folder_parts[-1] if folder_parts else folders[index]
        depth = 1
        while True:
            tail = folder_parts[-depth:]
            clashes = [other for j, other in enumerate(parts) if j != index and other[-depth:] == tail]
            if not clashes or depth >= len(folder_parts):
                break
            depth += 1
        if depth == 1:
            labels.append(name)
        else:
            parents = folder_parts[-depth:-1]
            labels.append(f"{name} — {os.sep.join(p.strip(os.sep) or os.sep for p in parents)}")
    return labels


def suggested_folders(home: Path | None = None) -> list[Path]:
    """Folders most people keep documents in, where they exist."""
    home = home or Path.home()
    return [home / name for name in ("Documents", "Desktop") if (home / name).is_dir()]


class NoticeBar(QFrame):
    """A line of news that stays until read (closed) or replaced: the last indexing
    summary, a file that could not be opened, with buttons for what to do next."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notice")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Notice")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 4, 4)
        self.label = QLabel("", self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        self._buttons: list[QPushButton] = []
        self._layout = layout
        close = QToolButton(self)
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.setAccessibleName("Dismiss notice")
        close.clicked.connect(self.hide)
        layout.addWidget(close)
        self._close = close
        self.hide()

    def show_notice(self, text: str, actions: list[tuple[str, Callable[[], None]]] | None = None) -> None:
        for button in self._buttons:
            self._layout.removeWidget(button)
            button.deleteLater()
        self._buttons = []
        self.label.setText(text)
        for caption, callback in actions or []:
            button = QPushButton(caption, self)
            button.clicked.connect(callback)
            self._layout.insertWidget(self._layout.count() - 1, button)
            self._buttons.append(button)
        self.show()

    def button_texts(self) -> list[str]:
        return [b.text() for b in self._buttons]

    def click(self, caption: str) -> None:
        for button in self._buttons:
            if button.text() == caption:
                button.click()
                return
        raise KeyError(caption)
