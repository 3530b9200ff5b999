"""The settings dialog: the indexing choices a person may want to change, each explained
where the pointer rests on it. The model has its own command (`localsearch models use`)."""

from __future__ import annotations

import dataclasses

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from localsearch import autostart
from localsearch.settings import CHOICES, Settings

LATE_CHUNKING_TIP = (
    "Each passage's vector carries the context of its whole document: the model reads the "
    "document in one pass and each passage is pooled from its part of that reading. Helps "
    'passages that only make sense in context ("it", "the method above").\n'
    "Changing it re-embeds every file."
)
BATTERY_LABELS = {"continue": "Keep indexing", "slow": "Index at half speed", "pause": "Wait for mains power"}


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._settings = settings
        described = Settings.describe()
        layout = QVBoxLayout(self)
        form = QFormLayout()

        self.late_chunking = QCheckBox("Read passages in their document's context (late chunking)", self)
        self.late_chunking.setChecked(settings.late_chunking)
        self.late_chunking.setToolTip(LATE_CHUNKING_TIP)
        form.addRow(self.late_chunking)

        self.use_gitignore = QCheckBox("Skip what .gitignore files ignore", self)
        self.use_gitignore.setChecked(settings.use_gitignore)
        self.use_gitignore.setToolTip(described["use_gitignore"])
        form.addRow(self.use_gitignore)

        self.on_battery = QComboBox(self)
        for choice in CHOICES["on_battery"]:
            self.on_battery.addItem(BATTERY_LABELS.get(choice, choice), choice)
        self.on_battery.setCurrentIndex(max(0, self.on_battery.findData(settings.on_battery)))
        self.on_battery.setToolTip(described["on_battery"])
        form.addRow("On battery:", self.on_battery)

        # Not a setting in settings.toml: the autostart entry's presence is the truth.
        self.start_at_login = QCheckBox("Start localsearch when I log in (keeps watching my folders)", self)
        self.start_at_login.setChecked(autostart.is_enabled())
        self.start_at_login.setToolTip(
            "Opens the window minimized at login, so changes are indexed as they happen."
        )
        self.start_at_login.setVisible(autostart.supported())
        form.addRow(self.start_at_login)
        layout.addLayout(form)

        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #b26a00;")
        layout.addWidget(self.note)
        self.late_chunking.toggled.connect(self._explain)
        self._explain()

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def accept(self) -> None:
        if autostart.supported() and self.start_at_login.isChecked() != autostart.is_enabled():
            try:
                autostart.set_enabled(self.start_at_login.isChecked())
            except OSError as exc:  # a read-only config folder must not lose the other choices
                self.note.setText(f"Could not change start at login: {exc}")
        super().accept()

    def _explain(self) -> None:
        changed = self.late_chunking.isChecked() != self._settings.late_chunking
        self.note.setText("Every file is embedded again after OK." if changed else "")

    def chosen(self) -> Settings:
        """The settings as the dialog shows them (the others unchanged)."""
        return dataclasses.replace(
            self._settings,
            late_chunking=self.late_chunking.isChecked(),
            use_gitignore=self.use_gitignore.isChecked(),
            on_battery=str(self.on_battery.currentData()),
        )
