"""The first run's welcome view: folders with how much is in them, the fast or the quality
model with its size and about how long reading the folders takes, and one button."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from pytestqt.qtbot import QtBot

from localsearch.gui import index_estimate
from localsearch.gui.index_estimate import FolderScan, estimate_seconds, say_duration, scan_folder
from localsearch.gui.main_window import MainWindow
from localsearch.gui.welcome import FAST_MODEL, QUALITY_MODEL, WelcomeView, model_options
from tests.gui.conftest import REPO, write_notes

RESULTS = REPO / "bench" / "results"


def _notes_of(folder: Path, files: int, bytes_each: int) -> Path:
    line = "The harbour office keeps the ferry timetables and the tide tables for the summer.\n"
    return write_notes(folder, {f"note {n}.txt": line * (bytes_each // len(line)) for n in range(files)})


def _only_the_default_model_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout's gguf/ serves every home: hide a quality model a developer built there."""
    from localsearch import paths

    folder = tmp_path / "gguf"
    folder.mkdir()
    for built in paths.SOURCE_GGUF_DIR.glob(f"{FAST_MODEL}.*.gguf"):
        (folder / built.name).symlink_to(built)
    monkeypatch.setattr(paths, "model_search_dirs", lambda: [paths.models_dir(), folder])


def test_the_two_models_with_their_size_and_the_time_for_the_ticked_folders(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only_the_default_model_built(tmp_path, monkeypatch)
    documents = _notes_of(tmp_path / "Documents", 40, 50_000)  # 2 MB of text
    view = WelcomeView([documents], models=model_options())
    qtbot.addWidget(view)
    fast, quality = view.model_buttons[FAST_MODEL], view.model_buttons[QUALITY_MODEL]
    assert fast.isChecked() and not quality.isChecked()
    # Sizes on disk before anything is counted; the quality model says it is built once.
    fast_details, quality_details = view.model_details[FAST_MODEL], view.model_details[QUALITY_MODEL]
    assert "MB on disk" in fast_details.text() and "ready" in fast_details.text()
    assert "MB on disk" in quality_details.text() and "built once in the background" in quality_details.text()
    assert "MB to fetch" in quality_details.text()
    assert quality.accessibleDescription() == quality_details.text()

    qtbot.waitUntil(lambda: view.ticked_scan() is not None, timeout=10_000)
    scan = view.ticked_scan()
    assert scan is not None and scan.files == 40
    assert scan.bytes_by_kind["text"] == sum(p.stat().st_size for p in documents.iterdir())
    fast_time = say_duration(estimate_seconds(scan, FAST_MODEL))
    quality_time = say_duration(estimate_seconds(scan, QUALITY_MODEL))
    assert fast_time.startswith("about") and "minute" in fast_time
    assert estimate_seconds(scan, QUALITY_MODEL) > 3 * estimate_seconds(scan, FAST_MODEL)
    assert fast.text() == f"Fast — {fast_time}" and quality.text() == f"Best quality — {quality_time}"
    assert "40 documents" in view.estimate.text() and fast_time in view.estimate.text()
    quality.setChecked(True)
    assert quality_time in view.estimate.text() and view.chosen_model() == QUALITY_MODEL
    # Unticking the folder leaves nothing to estimate.
    view.suggestion_boxes[0].setChecked(False)
    assert "Tick a folder" in view.estimate.text()
    assert view.start_button.text() == "Choose a folder to search…"


def test_a_chosen_folder_joins_the_list_and_nothing_starts_before_the_button(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_window: Callable[[], MainWindow]
) -> None:
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path / "nobody"))
    papers = _notes_of(tmp_path / "papers", 3, 2_000)
    window = make_window()
    assert window.welcome.suggestion_boxes == []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(papers)))
    window.welcome.start_button.click()  # "Choose a folder to search…"
    assert window.welcome.ticked() == [str(papers)]
    qtbot.waitUntil(lambda: window.welcome.suggestion_boxes[0].property("count") == 3, timeout=10_000)
    assert not window.index_lane.running
    assert window.welcome.start_button.text() == "Search these folders"


def test_choosing_the_quality_model_builds_it_in_the_background_then_reads_again(
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_child: dict,
    make_window: Callable[[], MainWindow],
) -> None:
    _only_the_default_model_built(tmp_path, monkeypatch)
    from localsearch.core.models import api

    home = tmp_path / "person"
    write_notes(home / "Documents", {"plan.txt": "Holiday plan for the mountains."})
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    built: list[str] = []
    used: list[str] = []

    def fake_build(name: str, **kwargs: object) -> list[Path]:
        built.append(name)
        return [tmp_path / f"{name}.F16.gguf"]

    def fake_use(name: str, **kwargs: object) -> SimpleNamespace:
        used.append(name)
        return SimpleNamespace(model=name, apply=lambda settings: None)

    monkeypatch.setattr(api, "build_model", fake_build)
    monkeypatch.setattr(api, "choose_model", fake_use)
    window = make_window()
    switched: list[str] = []
    monkeypatch.setattr(window, "switch_model", switched.append)
    with qtbot.waitSignal(window.status_shown, timeout=20_000):
        window.start()
    assert window.stack.currentWidget() is window.welcome
    assert not next(o for o in window.welcome.models if o.name == QUALITY_MODEL).ready
    window.welcome.model_buttons[QUALITY_MODEL].setChecked(True)
    with qtbot.waitSignal(window.index_lane.finished, timeout=60_000):
        window.welcome.start_button.click()
        # The files are read at once (with the model in use), the build runs beside it.
        assert window.index_lane.running
        assert "Building the best quality model" in window.notice.label.text()
    qtbot.waitUntil(lambda: switched == [QUALITY_MODEL], timeout=10_000)
    assert built == [QUALITY_MODEL] and used == [QUALITY_MODEL]


def test_a_failed_build_says_so_and_keeps_the_fast_model(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_window: Callable[[], MainWindow]
) -> None:
    _only_the_default_model_built(tmp_path, monkeypatch)
    from localsearch.core.models import api
    from localsearch.errors import LocalSearchError

    def failing_build(name: str, **kwargs: object) -> list[Path]:
        raise LocalSearchError("the package index cannot be reached")

    monkeypatch.setattr(api, "build_model", failing_build)
    window = make_window()
    switched: list[str] = []
    monkeypatch.setattr(window, "switch_model", switched.append)
    monkeypatch.setattr(window, "add_folders", lambda folders: None)  # the reading is not the point
    window.start_from_welcome([str(tmp_path)], QUALITY_MODEL)
    qtbot.waitUntil(lambda: "could not be built" in window.notice.label.text(), timeout=10_000)
    assert "cannot be reached" in window.notice.label.text() and switched == []


def test_scan_counts_readable_files_by_kind_and_skips_hidden_ones(tmp_path: Path) -> None:
    write_notes(tmp_path, {"a.txt": "x" * 100, "b.md": "y" * 50, "song.mp3": "z" * 999})
    (tmp_path / "paper.pdf").write_bytes(b"%PDF-1.4" + b"0" * 992)
    write_notes(tmp_path / ".git", {"hidden.txt": "h" * 500})
    scan = scan_folder(tmp_path)
    assert scan.files == 3
    assert scan.bytes_by_kind == {"text": 150, "packed": 1000}
    capped = scan_folder(tmp_path, cap=2)
    assert capped.capped and capped.files == 2


def test_durations_read_as_a_person_says_them() -> None:
    assert say_duration(20) == "under a minute"
    assert say_duration(61) == "about 2 minutes"
    assert say_duration(60 * 45) == "about 45 minutes"
    assert say_duration(3600 * 3) == "about 3 hours"
    assert say_duration(3600 * 2.5) == "about 2.5 hours"


def test_estimate_figures_are_the_committed_measurements() -> None:
    """Each figure the welcome view estimates with comes from a committed result file."""
    pipeline = json.loads((RESULTS / "index_pipeline.json").read_text())
    assert pipeline["pipeline"]["tokens_per_second"] == index_estimate.MINILM_TOKENS_PER_SECOND
    nomic = json.loads((RESULTS / "nomic_matryoshka-indexing-20files.json").read_text())["models"]

    def median_cpu(model: str) -> float:
        runs = sorted(r["cpu_seconds"] for r in nomic[model]["runs"])
        return (runs[0] + runs[-1]) / 2 if len(runs) == 2 else runs[len(runs) // 2]

    ratio = median_cpu("nomic-embed-text-v1-5.BF16") / median_cpu("all-minilm-l6-v2.BF16")
    assert pytest.approx(ratio) == index_estimate.NOMIC_SLOWDOWN
    measured = json.loads((RESULTS / "index_estimate.json").read_text())
    by_kind = {row["kind"]: row for row in measured["folders"]}
    assert {k: by_kind[k]["tokens_per_byte"] for k in ("text", "packed")} == index_estimate.TOKENS_PER_BYTE
    assert by_kind["packed"]["overhead_seconds_per_megabyte"] == index_estimate.PACKED_SECONDS_PER_MEGABYTE
    assert measured["startup_seconds"] == index_estimate.STARTUP_SECONDS
    # An estimate is startup, reading the packed bytes, and the tokens at the model's rate.
    scan = FolderScan(10, {"text": 4_000_000, "packed": 1_000_000})
    tokens = 4_000_000 * 0.253 + 1_000_000 * 0.007
    assert estimate_seconds(scan, FAST_MODEL) == pytest.approx(
        measured["startup_seconds"] + by_kind["packed"]["overhead_seconds_per_megabyte"] + tokens / 8069.4
    )


@pytest.mark.parametrize("size", [(1200, 760), (800, 500)])
def test_nothing_on_the_welcome_view_is_cut(
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_window: Callable[[], MainWindow],
    size: tuple[int, int],
) -> None:
    from PySide6.QtWidgets import QLabel

    home = tmp_path / "person"
    write_notes(home / "Documents", {"plan.txt": "Holiday plan for the mountains."})
    (home / "Desktop").mkdir()
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    window = make_window()
    window.resize(*size)
    window.show()
    with qtbot.waitSignal(window.status_shown, timeout=20_000):
        window.start()
    welcome = window.welcome
    assert window.stack.currentWidget() is welcome
    qtbot.waitUntil(lambda: welcome.ticked_scan() is not None, timeout=10_000)
    qtbot.wait(50)
    # Every wrapped line gets the height its text needs at its width.
    for label in welcome.findChildren(QLabel):
        if label.isVisible() and label.wordWrap() and label.text():
            assert label.height() >= label.heightForWidth(label.width()) - 1, label.text()[:40]
    for widget in [*welcome.suggestion_boxes, *welcome.model_buttons.values(), welcome.start_button]:
        assert widget.height() >= widget.sizeHint().height(), widget.text()


def test_a_suggested_folder_with_nothing_to_read_is_not_ticked(qtbot: QtBot, tmp_path: Path) -> None:
    documents = _notes_of(tmp_path / "Documents", 2, 1_000)
    desktop = tmp_path / "Desktop"
    (desktop / "photos").mkdir(parents=True)
    (desktop / "photos" / "beach.jpg").write_bytes(b"\xff\xd8" * 100)
    view = WelcomeView([documents, desktop], models=model_options())
    qtbot.addWidget(view)
    qtbot.waitUntil(
        lambda: all(b.property("count") is not None for b in view.suggestion_boxes), timeout=10_000
    )
    assert view.ticked() == [str(documents)]
    assert view.suggestion_boxes[1].text().endswith("— 0 documents")
