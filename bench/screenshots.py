"""Screenshots of the real window in the states a person meets, under a real X server.

    python bench/screenshots.py [--out bench/results/screenshots]

Starts itself again under Xvfb (xvfb-run) when there is no display. Uses a fresh
LOCALSEARCH_HOME, the real default model, a folder of everyday notes written here and the
real PDFs in ../shared/evaldata/pdfs (read in place). Saves one PNG per state and
bench/results/screenshots.json (names, sizes, and how long each state took to reach).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PDFS = Path(os.environ.get("LOCALSEARCH_EVALDATA", REPO.parent / "shared" / "evaldata")) / "pdfs"

NOTES = {
    "passport renewal.md": "# Passport\n\nRenew the passport before the trip: bring two photos, the old "
    "passport and the form. The office is open Tuesday and Thursday mornings.",
    "sourdough.txt": "Feed the sourdough starter the night before. Mix flour, water and salt, fold "
    "every half hour, then let the dough rise overnight in the fridge before baking.",
    "tomatoes.txt": "Water the tomatoes every morning in summer and tie them to the stakes when "
    "they grow tall. Pinch out the side shoots.",
    "budget 2024.md": "# Household budget\n\nRent, groceries, electricity and the car insurance are "
    "paid on the first of the month. Save a tenth of every salary.",
    "meeting notes.txt": "Weekly team meeting: the release moves to May; Ana reviews the "
    "installer; the backup server needs a new disk before the end of the quarter.",
    "bike repair.md": "# Fixing a flat tyre\n\nRemove the wheel, lever the tyre off, find the hole "
    "by pumping the tube under water, patch it, and check the tyre for glass.",
}
NOTES_ELSEWHERE = {
    "holiday ideas.txt": "Ideas for the summer holiday: hiking in the mountains, a week by the "
    "sea, or a train journey through the Alps.",
}


def _run_under_xvfb() -> int:
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        sys.exit("no display and no xvfb-run: apt-get install xvfb xauth")
    argv = [xvfb, "-a", "-s", "-screen 0 1600x1000x24", sys.executable, *sys.argv]
    return subprocess.call(argv, env={**os.environ, "LOCALSEARCH_SCREENSHOTS_CHILD": "1"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "screenshots")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY") and not os.environ.get("LOCALSEARCH_SCREENSHOTS_CHILD"):
        return _run_under_xvfb()
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    home = Path(tempfile.mkdtemp(prefix="localsearch-shots-"))
    os.environ["LOCALSEARCH_HOME"] = str(home / "state")
    # Person's folders: two named "Documents" (to show how they are told apart).
    person = home / "person"
    notes = person / "Documents"
    notes.mkdir(parents=True)
    for name, text in NOTES.items():
        (notes / name).write_text(text, encoding="utf-8")
    other = person / "Archive" / "Documents"
    other.mkdir(parents=True)
    for name, text in NOTES_ELSEWHERE.items():
        (other / name).write_text(text, encoding="utf-8")
    (person / "Desktop").mkdir()
    os.environ["HOME"] = str(person)  # the welcome view suggests ~/Documents and ~/Desktop
    args.out.mkdir(parents=True, exist_ok=True)
    return _shoot(args.out, [notes, other, PDFS])


def _shoot(out: Path, folders: list[Path]) -> int:
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication, QWidget

    from localsearch.gui import theme
    from localsearch.gui.failures import FailuresDialog
    from localsearch.gui.main_window import MainWindow
    from localsearch.gui.models_dialog import ModelsDialog
    from localsearch.gui.settings_dialog import SettingsDialog
    from localsearch.settings import load as load_settings

    app = QApplication(sys.argv)
    app.setApplicationName("localsearch")
    theme.apply("system")
    shots: list[dict] = []
    started = time.perf_counter()

    # Event loops that end on a timer: repeated processEvents(flags, ms) calls crashed
    # PySide6 6.12 (a refcount error on None).
    def pump(seconds: float = 0.2) -> None:
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    def wait_until(test: Callable[[], object], timeout: float, what: str) -> None:
        end = time.perf_counter() + timeout
        while not test():
            if time.perf_counter() > end:
                raise SystemExit(f"timed out waiting for {what}")
            pump(0.05)

    def save(widget: QWidget, name: str, note: str) -> None:
        pump(0.3)
        pixmap = widget.grab()
        path = out / f"{name}.png"
        pixmap.save(str(path))
        shots.append(
            {
                "file": path.name,
                "state": note,
                "width": pixmap.width(),
                "height": pixmap.height(),
                "seconds_since_start": round(time.perf_counter() - started, 1),
            }
        )
        print(f"{path.name:28s} {pixmap.width()}x{pixmap.height()}  {note}")

    window = MainWindow()
    window.resize(1200, 760)
    window.show()
    window.start()
    wait_until(lambda: window.stack.currentWidget() is window.welcome, 30, "the welcome view")
    save(window, "01-first-run", "first run: welcome view, nothing indexed yet")

    progress: list[dict] = []
    window.index_lane.progress.connect(progress.append)
    window.add_folders([str(f) for f in folders])
    wait_until(lambda: any(p.get("files_done", 0) >= 3 for p in progress), 300, "indexing progress")
    pump(1.0)
    save(window, "02-indexing", "indexing in progress: rate, current file, time left")
    wait_until(lambda: not window.index_lane.running, 1800, "indexing to finish")
    pump(2.5)  # the monitor's next status

    window.search_box.setFocus()
    window.search_box.setText("how do I renew my passport")
    wait_until(lambda: window.results_model.rowCount() > 0, 60, "results")
    save(window, "03-results", "results for an everyday question, summary kept in the notice bar")

    window.search_box.setText("extracting paraphrases from comparable news articles")
    wait_until(
        lambda: window.results_model.rowCount() > 0 and window.results_model.hits[0].page, 60, "PDF results"
    )
    window.results_view.setFocus()
    window.results_view.setCurrentIndex(window.results_model.index(0, 0))
    window.preview_action.setChecked(True)
    wait_until(lambda: bool(window.preview.passages), 30, "the preview's passages")
    save(window, "04-preview", "preview pane: passages in context, pages to open")

    window.preview_action.setChecked(False)
    window.activateWindow()
    window.search_box.setFocus()
    QGuiApplication.processEvents()
    from PySide6.QtTest import QTest

    QTest.keyClick(window.search_box, Qt.Key.Key_Down)
    QTest.keyClick(window.results_view, Qt.Key.Key_Down)
    save(window, "05-keyboard-focus", "keyboard: Down from the box, focus ring on the second result")

    window._show_failures()
    dialog = window.findChild(FailuresDialog)
    dialog.table.selectRow(0)
    save(dialog, "06-failed-files", f"{len(window._failures)} files that could not be indexed, with reasons")
    dialog.close()

    window.open_models()
    models = window.findChild(ModelsDialog)
    save(models, "10-models", "the model catalog, the model in use selected, with the index size it makes")
    models.close()

    settings = SettingsDialog(load_settings(), window)
    settings.show()
    save(settings, "07-settings", "settings in plain words")
    settings.close()

    window.set_theme("dark")
    window.search_box.setText("how do I renew my passport")
    wait_until(lambda: window.results_model.rowCount() > 0, 60, "results")
    save(window, "08-dark", "dark theme, card borders visible")
    window.set_theme("system")

    window.resize(800, 500)
    save(window, "09-800x500", "the window at 800x500")

    (out.parent / "screenshots.json").write_text(json.dumps({"shots": shots}, indent=2) + "\n")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
