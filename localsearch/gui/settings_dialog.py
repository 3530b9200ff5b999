"""The settings dialog: what a person may want to change, in plain words, each explained
where the pointer rests on it. The model has its own command (`localsearch models use`)."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from localsearch import autostart
from localsearch.errors import UserFacingError
from localsearch.gui.theme import THEME_LABELS, THEMES
from localsearch.settings import CHOICES, Settings, embedding_changed, validate

LATE_CHUNKING_TIP = (
    "Normally each passage is read on its own. With this on, the whole document is read "
    'first, so a passage keeps the context around it — useful when passages say "it" or '
    '"the method above" and only make sense in context.\n'
    "Indexing gets a little slower. Changing it re-embeds every file."
)
FILE_NAMES_TIP = (
    "Each passage is read together with the words of its file's name, so a file called "
    '"moving-checklist.txt" is found when you ask for things to do before moving house, even '
    "where its text never says so. On by default; it takes no part while passages are read "
    "in the context of their whole document.\n"
    "Changing it re-embeds every file."
)
BATTERY_LABELS = {"continue": "Keep indexing", "slow": "Index at half speed", "pause": "Wait for mains power"}
EXCLUDE_TIP = (
    "One pattern a line, relative to each folder, like a .gitignore file:\n"
    "  build/      a folder named build, anywhere\n"
    "  *.log       every .log file\n"
    "  /drafts/**  the drafts folder at the top only\n"
    "Hidden files, .git, node_modules and caches are always skipped."
)
SHARED_INDEX_TIP = (
    "Leave empty to keep the index on this computer (the usual case).\n"
    "To share one index with other computers, give the address of a PostgreSQL server with the "
    "pgvector extension, like postgresql://anna@nas.local/localsearch. Every computer that uses "
    "it indexes its own folders into it and can search all the folders it is allowed to see.\n"
    "Do not put a password here: add it to the file ~/.pgpass (or set PGPASSWORD), where "
    "PostgreSQL's own tools look for it."
)


class SettingsDialog(QDialog):
    probed = Signal(bool, str)  # from the connection test's thread: worked, and what it found

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(480)
        self._settings = settings
        described = Settings.describe()
        layout = QVBoxLayout(self)

        indexing = QGroupBox("What gets indexed", self)
        form = QFormLayout(indexing)
        self.exclude = QPlainTextEdit(self)
        self.exclude.setPlainText("\n".join(settings.exclude))
        self.exclude.setPlaceholderText("e.g.  build/   or   *.log")
        self.exclude.setToolTip(EXCLUDE_TIP)
        self.exclude.setAccessibleName("Files and folders to skip")
        self.exclude.setFixedHeight(self.exclude.fontMetrics().lineSpacing() * 4 + 12)
        form.addRow("Skip these:", self.exclude)
        self.use_gitignore = QCheckBox("Skip what .gitignore files ignore", self)
        self.use_gitignore.setChecked(settings.use_gitignore)
        self.use_gitignore.setToolTip(described["use_gitignore"])
        form.addRow(self.use_gitignore)
        self.max_file_mb = QSpinBox(self)
        self.max_file_mb.setRange(1, 4096)
        self.max_file_mb.setSuffix(" MB")
        self.max_file_mb.setValue(settings.max_file_mb)
        self.max_file_mb.setToolTip("Larger files are left out (and listed as skipped).")
        self.max_file_mb.setAccessibleName("Largest file to read")
        form.addRow("Largest file to read:", self.max_file_mb)
        self.late_chunking = QCheckBox("Read each passage in the context of its whole document", self)
        self.late_chunking.setChecked(settings.late_chunking)
        self.late_chunking.setToolTip(LATE_CHUNKING_TIP)
        form.addRow(self.late_chunking)
        self.file_names = QCheckBox("Let file names help find files", self)
        self.file_names.setChecked(settings.file_names)
        self.file_names.setToolTip(FILE_NAMES_TIP)
        form.addRow(self.file_names)
        layout.addWidget(indexing)

        running = QGroupBox("While it runs", self)
        form = QFormLayout(running)
        self.on_battery = QComboBox(self)
        for choice in CHOICES["on_battery"]:
            self.on_battery.addItem(BATTERY_LABELS.get(choice, choice), choice)
        self.on_battery.setCurrentIndex(max(0, self.on_battery.findData(settings.on_battery)))
        self.on_battery.setToolTip("What indexing does when the computer runs on battery.")
        self.on_battery.setAccessibleName("On battery")
        form.addRow("On battery:", self.on_battery)
        self.threads = QSpinBox(self)
        self.threads.setRange(0, max(64, os.cpu_count() or 1))
        self.threads.setSpecialValueText("All cores")
        self.threads.setValue(settings.threads)
        self.threads.setToolTip(
            "How many processor cores indexing may use. Fewer leaves the computer livelier "
            "while indexing runs; more finishes sooner."
        )
        self.threads.setAccessibleName("Processor cores for indexing")
        form.addRow("Processor cores:", self.threads)
        self.keep_watching = QCheckBox("Keep watching my folders when the window is closed", self)
        self.keep_watching.setChecked(settings.keep_watching)
        self.keep_watching.setToolTip(
            "Closing the window leaves localsearch in the tray (where the desktop has one), "
            "keeping the index up to date. Quit from the tray or with Ctrl+Q."
        )
        form.addRow(self.keep_watching)
        # Not a setting in settings.toml: the autostart entry's presence is the truth.
        self.start_at_login = QCheckBox("Start localsearch when I log in (keeps watching my folders)", self)
        self.start_at_login.setChecked(autostart.is_enabled())
        self.start_at_login.setToolTip(
            "Opens the window minimized at login, so changes are indexed as they happen."
        )
        self.start_at_login.setAccessibleName("Start at login")
        self.start_at_login.setVisible(autostart.supported())
        form.addRow(self.start_at_login)
        layout.addWidget(running)

        looks = QGroupBox("Appearance", self)
        form = QFormLayout(looks)
        self.theme = QComboBox(self)
        for name in THEMES:
            self.theme.addItem(THEME_LABELS[name], name)
        self.theme.setCurrentIndex(max(0, self.theme.findData(settings.theme)))
        self.theme.setAccessibleName("Colours")
        form.addRow("Colours:", self.theme)
        layout.addWidget(looks)

        shared = QGroupBox("Shared index (optional)", self)
        form = QFormLayout(shared)
        self.index_url = QLineEdit(settings.index_url, self)
        self.index_url.setPlaceholderText("empty: on this computer  ·  postgresql://user@server/database")
        self.index_url.setToolTip(SHARED_INDEX_TIP)
        self.index_url.setAccessibleName("Shared index address")
        self.test_button = QPushButton("Test connection", self)
        self.test_button.setToolTip("Connects to the server and says what it found; changes nothing.")
        self.test_button.clicked.connect(self._test_connection)
        row = QHBoxLayout()
        row.addWidget(self.index_url, 1)
        row.addWidget(self.test_button)
        form.addRow("Server address:", row)
        self.machine = QLineEdit(settings.machine, self)
        self.machine.setPlaceholderText(_this_computer())
        self.machine.setToolTip(Settings.describe()["machine"])
        self.machine.setAccessibleName("This computer's name in the shared index")
        form.addRow("This computer's name:", self.machine)
        self.shared_note = QLabel(
            "One index for several computers, on a PostgreSQL server your household or team runs. "
            "Passwords stay out of localsearch: PostgreSQL reads them from ~/.pgpass.",
            self,
        )
        self.shared_note.setWordWrap(True)
        form.addRow(self.shared_note)
        self.probed.connect(self._show_probe)
        layout.addWidget(shared)

        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #b26a00;")
        layout.addWidget(self.note)
        self.late_chunking.toggled.connect(self._explain)
        self.file_names.toggled.connect(self._explain)
        self._explain()

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _url_problem(self) -> str | None:
        try:
            validate("index_url", self.index_url.text().strip())
        except UserFacingError as exc:
            return str(exc)
        return None

    def _test_connection(self) -> None:
        url = self.index_url.text().strip()
        problem = self._url_problem() if url else "Give a server address first."
        if problem:
            self._show_probe(False, problem)
            return
        self.test_button.setEnabled(False)
        self.shared_note.setText("Connecting…")

        def run() -> None:  # off the UI thread: a server may take seconds to answer or not
            from localsearch.core.pg.index import probe

            try:
                self.probed.emit(True, probe(url))
            except Exception as exc:  # any failure is the answer to show
                self.probed.emit(False, str(exc))

        threading.Thread(target=run, name="connection-test", daemon=True).start()

    def _show_probe(self, worked: bool, message: str) -> None:
        self.test_button.setEnabled(True)
        self.shared_note.setText(message)
        self.shared_note.setStyleSheet("" if worked else "color: #b26a00;")

    def accept(self) -> None:
        problem = self._url_problem()
        if problem:
            self._show_probe(False, problem)  # e.g. a password in the address: refused, never saved
            return
        if autostart.supported() and self.start_at_login.isChecked() != autostart.is_enabled():
            try:
                autostart.set_enabled(self.start_at_login.isChecked())
            except OSError as exc:  # a read-only config folder must not lose the other choices
                self.note.setText(f"Could not change start at login: {exc}")
        super().accept()

    def _explain(self) -> None:
        # Late chunking reads passages in their document, which leaves file names no part.
        self.file_names.setEnabled(not self.late_chunking.isChecked())
        changed = embedding_changed(self._settings, self.chosen())
        self.note.setText("Every file is embedded again after OK." if changed else "")

    def chosen(self) -> Settings:
        """The settings as the dialog shows them (the others unchanged)."""
        patterns = [line.strip() for line in self.exclude.toPlainText().splitlines() if line.strip()]
        return dataclasses.replace(
            self._settings,
            late_chunking=self.late_chunking.isChecked(),
            file_names=self.file_names.isChecked(),
            use_gitignore=self.use_gitignore.isChecked(),
            on_battery=str(self.on_battery.currentData()),
            exclude=patterns,
            max_file_mb=self.max_file_mb.value(),
            threads=self.threads.value(),
            keep_watching=self.keep_watching.isChecked(),
            theme=str(self.theme.currentData()),
            index_url=self.index_url.text().strip(),
            machine=self.machine.text().strip(),
        )


def _this_computer() -> str:
    return socket.gethostname() or "this computer"
