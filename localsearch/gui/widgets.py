"""Small pieces of the main window: the welcome view, the notice bar, folder labels."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
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


COUNT_CAP = 20_000


def count_documents(folder: Path, cap: int = COUNT_CAP) -> int:
    """Files below folder that localsearch can read (hidden folders skipped), up to cap."""
    from localsearch.core.extract import supported

    count = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        count += sum(1 for name in files if not name.startswith(".") and supported(Path(root, name)))
        if count >= cap:
            return cap
    return count


class WelcomeView(QWidget):
    """What a first run shows: one clear way to start."""

    start_with = Signal(list)  # folders ticked among the suggestions
    choose = Signal()
    counted = Signal(str, int)  # folder, documents found (from a helper thread)

    def __init__(self, suggestions: list[Path], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Welcome")
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        column = QVBoxLayout()
        column.setSpacing(10)
        title = QLabel("Find your files by what they mean", self)
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        title.setFont(font)
        title.setWordWrap(True)
        column.addWidget(title)
        self.intro = QLabel(
            "Add a folder to start. localsearch reads the documents in it — text, PDF, Word, "
            "web pages, e-books, mail — so you can find them by what they say, not only by "
            "their exact words. Everything stays on this computer.",
            self,
        )
        self.intro.setWordWrap(True)
        column.addWidget(self.intro)
        self.suggestion_boxes: list[QCheckBox] = []
        for folder in suggestions:
            box = QCheckBox(f"{folder.name}  ({folder})", self)
            box.setChecked(True)
            box.setProperty("folder", str(folder))
            self.suggestion_boxes.append(box)
            column.addWidget(box)
        self.start_button = QPushButton(
            "Search these folders" if suggestions else "Choose a folder to search…", self
        )
        self.start_button.setDefault(True)
        self.start_button.setMinimumHeight(44)
        big = self.start_button.font()
        big.setPointSizeF(big.pointSizeF() * 1.2)
        big.setBold(True)
        self.start_button.setFont(big)
        self.start_button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.start_button.clicked.connect(self._start)
        column.addWidget(self.start_button)
        if suggestions:
            other = QPushButton("Choose another folder…", self)
            other.setFlat(True)
            other.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
            other.clicked.connect(self.choose)
            column.addWidget(other)
        for box in self.suggestion_boxes:
            box.toggled.connect(self._update_button)
        self.counted.connect(self._show_count)
        # How much there is to read, counted off the UI thread (a big Documents folder
        # takes seconds to walk).
        for folder in suggestions:
            threading.Thread(
                target=lambda f=folder: self.counted.emit(str(f), count_documents(f)),
                name="welcome-count",
                daemon=True,
            ).start()
        row = QHBoxLayout()
        row.addStretch(1)
        holder = QWidget(self)
        holder.setLayout(column)
        holder.setMaximumWidth(560)
        row.addWidget(holder, 10)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

    def _show_count(self, folder: str, count: int) -> None:
        for box in self.suggestion_boxes:
            if box.property("folder") == folder:
                many = f"{count:,}+" if count >= COUNT_CAP else f"{count:,}"
                noun = "document" if count == 1 else "documents"
                box.setText(f"{Path(folder).name}  ({folder}) — {many} {noun}")
                box.setProperty("count", count)

    def ticked(self) -> list[str]:
        return [str(b.property("folder")) for b in self.suggestion_boxes if b.isChecked()]

    def _update_button(self) -> None:
        self.start_button.setText("Search these folders" if self.ticked() else "Choose a folder to search…")

    def _start(self) -> None:
        ticked = self.ticked()
        if ticked:
            self.start_with.emit(ticked)
        else:
            self.choose.emit()


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
