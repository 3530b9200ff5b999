"""The settings dialog: late chunking and file names are offered with their explanations,
and switching either saves the setting, reopens the search lane on the new space and
re-embeds every folder."""

from __future__ import annotations

import dataclasses

import pytest
from pytestqt.qtbot import QtBot

from localsearch import settings as settings_module
from localsearch.gui.main_window import MainWindow
from localsearch.gui.settings_dialog import SettingsDialog
from localsearch.settings import Settings


def test_the_dialog_offers_late_chunking_with_a_tooltip(qtbot: QtBot) -> None:
    dialog = SettingsDialog(Settings(on_battery="slow"))
    qtbot.addWidget(dialog)
    tip = dialog.late_chunking.toolTip()
    assert "context" in tip and "re-embeds every file" in tip
    assert not dialog.late_chunking.isChecked() and dialog.note.text() == ""
    dialog.late_chunking.setChecked(True)
    assert "embedded again" in dialog.note.text()
    chosen = dialog.chosen()
    assert chosen == Settings(on_battery="slow", late_chunking=True)


def test_the_dialog_offers_file_names_with_a_tooltip(qtbot: QtBot) -> None:
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    tip = dialog.file_names.toolTip()
    assert "name" in tip and "re-embeds every file" in tip
    assert dialog.file_names.isChecked() and dialog.file_names.isEnabled() and dialog.note.text() == ""
    dialog.file_names.setChecked(False)
    assert "embedded again" in dialog.note.text()
    assert dialog.chosen() == Settings(file_names=False)
    dialog.file_names.setChecked(True)
    assert dialog.note.text() == ""
    # Late chunking reads passages in their whole document: file names take no part.
    dialog.late_chunking.setChecked(True)
    assert not dialog.file_names.isEnabled()
    dialog.file_names.setChecked(False)
    assert "embedded again" in dialog.note.text()  # for late chunking, not for the names


def test_switching_file_names_saves_and_re_embeds(qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    calls: list[str] = []
    monkeypatch.setattr(window, "reindex", lambda: calls.append("reindex"))
    monkeypatch.setattr(window.search_lane, "reload", lambda: calls.append("reload"))
    before = settings_module.load()
    assert before.file_names
    window.apply_settings(dataclasses.replace(before, file_names=False))
    assert settings_module.load().file_names is False
    assert calls == ["reload", "reindex"]
    window.apply_settings(dataclasses.replace(settings_module.load(), late_chunking=True))
    calls.clear()
    # Under late chunking file names take no part: switching them re-embeds nothing.
    window.apply_settings(dataclasses.replace(settings_module.load(), file_names=True))
    assert settings_module.load().file_names is True
    assert calls == ["reload"]
    window.search_lane.stop()


def test_switching_late_chunking_saves_and_re_embeds(qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    calls: list[str] = []
    monkeypatch.setattr(window, "reindex", lambda: calls.append("reindex"))
    monkeypatch.setattr(window.search_lane, "reload", lambda: calls.append("reload"))
    before = settings_module.load()
    window.apply_settings(before)  # nothing changed: nothing happens
    assert calls == []
    window.apply_settings(dataclasses.replace(before, late_chunking=True))
    assert settings_module.load().late_chunking is True
    assert calls == ["reload", "reindex"]
    calls.clear()
    window.apply_settings(dataclasses.replace(settings_module.load(), use_gitignore=True))
    assert calls == ["reload"]  # saved and used, but vectors are made as before
    assert settings_module.load().use_gitignore is True
    window.search_lane.stop()


def test_start_at_login_is_off_by_default_and_switched_from_the_dialog(qtbot: QtBot) -> None:
    from localsearch import autostart

    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    assert dialog.start_at_login.isVisible() is False or autostart.supported()
    assert not dialog.start_at_login.isChecked() and not autostart.is_enabled()
    dialog.start_at_login.setChecked(True)
    dialog.accept()
    assert autostart.is_enabled()
    again = SettingsDialog(Settings())
    qtbot.addWidget(again)
    assert again.start_at_login.isChecked()
    again.start_at_login.setChecked(False)
    again.accept()
    assert not autostart.is_enabled()
