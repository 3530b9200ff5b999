"""The window and a shared index: the settings dialog's server address (a password is
refused, the connection can be tested against a real server) and results from another
machine, which say where they are instead of opening a file that is not here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from localsearch.core.searcher import SearchHit
from localsearch.gui.main_window import MainWindow
from localsearch.gui.results import folder_line, this_machine
from localsearch.gui.settings_dialog import SettingsDialog
from localsearch.settings import Settings


def test_the_dialog_takes_a_server_address_but_never_a_password(qtbot: QtBot) -> None:
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    assert dialog.index_url.text() == "" and "pgpass" in dialog.index_url.toolTip()
    dialog.index_url.setText("postgresql://anna:hunter2@nas.local/localsearch")
    dialog.accept()
    assert dialog.result() != SettingsDialog.DialogCode.Accepted
    assert "password" in dialog.shared_note.text() and "pgpass" in dialog.shared_note.text()
    dialog.index_url.setText(" postgresql://anna@nas.local/localsearch ")
    dialog.machine.setText("anna-laptop")
    chosen = dialog.chosen()
    assert chosen.index_url == "postgresql://anna@nas.local/localsearch" and chosen.machine == "anna-laptop"


def test_test_connection_reports_what_the_server_offers(qtbot: QtBot, pg_url: str) -> None:
    dialog = SettingsDialog(Settings(index_url=pg_url))
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.probed, timeout=20_000):
        dialog.test_button.click()
    assert (
        "Connected as postgres" in dialog.shared_note.text() and "pgvector 0.6" in dialog.shared_note.text()
    )
    assert dialog.test_button.isEnabled()
    dialog.index_url.setText(pg_url.replace("?host=", "?connect_timeout=2&host=/nonexistent"))
    with qtbot.waitSignal(dialog.probed, timeout=20_000):
        dialog.test_button.click()
    assert "Cannot reach" in dialog.shared_note.text()


def _hit(host: str) -> SearchHit:
    return SearchHit(
        path="/srv/archive/letter.txt", name="letter.txt", folder="/srv/archive", score=0.8, snippet="x",
        page=None, start_char=0, end_char=1, chunk=0, host=host,
    )  # fmt: skip


def test_a_result_on_another_machine_says_where_it_is(
    qtbot: QtBot, make_window: Callable[[], MainWindow], monkeypatch: Any
) -> None:
    assert folder_line(_hit("")) == "/srv/archive"  # this computer's own index
    assert folder_line(_hit(this_machine())) == "/srv/archive"
    assert folder_line(_hit("nas")) == "/srv/archive  · on nas"
    window = make_window()
    window.show()
    opened: list[str] = []
    monkeypatch.setattr(window, "open_path", lambda path, page=None: opened.append(path))
    window.open_hit(_hit("nas"))
    assert opened == []
    assert (
        window.notice.isVisible()
        and "letter.txt is on nas, not on this computer" in window.notice.label.text()
    )
    window.notice.click("Copy path")
    assert QGuiApplication.clipboard().text() == "/srv/archive/letter.txt"
    window.open_hit(_hit(this_machine()))
    assert opened == ["/srv/archive/letter.txt"]
