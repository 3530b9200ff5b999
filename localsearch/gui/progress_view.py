"""Indexing progress in the status bar: a bar that says files done, time left or why it
waits, and Pause/Resume; the status line's words (current file, rate) come from here too."""

from __future__ import annotations

import os

from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from localsearch.core.indexer import BUSY_REASON, DISK_FULL_REASON

PAUSED_MESSAGE = "Indexing paused — what is done is kept and searchable"


def say_time_left(seconds: float) -> str:
    """A rough time left, as a person says it."""
    if seconds < 60:
        return "under a minute left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    return f"about {minutes // 60} h {minutes % 60:02d} min left"


def say_rate(files_done: int, elapsed: float) -> str:
    """Files a second or a minute, whichever reads better."""
    if elapsed <= 0 or files_done <= 0:
        return ""
    per_second = files_done / elapsed
    if per_second >= 1:
        return f"{per_second:,.1f} files/s"
    return f"{per_second * 60:,.0f} files/min"


class IndexProgressView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setMaximumWidth(260)
        self.progress_bar.setMinimumWidth(120)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setAccessibleName("Indexing progress")
        row.addWidget(self.progress_bar)
        self.pause_button = QPushButton("Pause", self)
        row.addWidget(self.pause_button)
        self.show_paused(False)
        self.hide()

    def started(self) -> None:
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat("Preparing…")
        self.show()

    def show_paused(self, paused: bool) -> str | None:
        """Pause became Resume or back; the status line's message, if any."""
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setAccessibleName("Resume indexing" if paused else "Pause indexing")
        self.pause_button.setToolTip("Go on indexing" if paused else "Hold indexing; what is done is kept")
        if not paused:
            return None
        if self.progress_bar.maximum():
            self.progress_bar.setFormat(
                f"Paused · {self.progress_bar.value():,} / {self.progress_bar.maximum():,} files"
            )
        return PAUSED_MESSAGE

    def show_progress(self, progress: dict) -> str | None:
        """One progress report from the indexer; the status line's message, if any."""
        total = int(progress.get("files_total") or 0)
        done = int(progress.get("files_done") or 0)
        waiting = progress.get("paused")
        if progress.get("phase") == "indexing" and total:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)
            text = f"{done:,} / {total:,} files"
            eta = progress.get("eta_seconds")
            if waiting:
                text = f"{str(waiting).capitalize()} · {text}"
            elif isinstance(eta, int | float) and eta >= 1 and done >= 5:
                text += f" · {say_time_left(float(eta))}"
            self.progress_bar.setFormat(text)
        elif progress.get("phase") == "scanning" and not self.progress_bar.maximum():
            self.progress_bar.setFormat("Looking for files…")
        current = progress.get("current")
        if waiting == "on battery":
            return "Indexing waits while the computer runs on battery"
        if waiting == DISK_FULL_REASON:
            return "Disk full: indexing waits until space is freed. Nothing indexed so far is lost."
        if waiting == BUSY_REASON:
            return "Indexing waits: another localsearch is indexing these folders"
        if waiting:
            return PAUSED_MESSAGE
        if current:
            rate = say_rate(done, float(progress.get("elapsed") or 0.0))
            parts = [f"Indexing {os.path.basename(str(current))}"]
            if rate and done >= 5:
                parts.append(rate)
            return " · ".join(parts)
        return None
