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


# The catalog model the download screenshot shows, served by _SlowHub.
DOWNLOAD_SHOWN = "mxbai-embed-xsmall-v1"


class _SlowHub:
    """A stand-in for the Hugging Face hub on 127.0.0.1 (HF_ENDPOINT) that answers any
    file with zeros of the catalog's size at about 1 MB/s: a download to watch, never one
    that finishes (the screenshot cancels it)."""

    def __init__(self, size: int) -> None:
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _headers(self) -> None:
                self.send_header("X-Repo-Commit", "0" * 40)
                self.send_header("ETag", '"stand-in"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(size))

            def do_HEAD(self) -> None:
                self.send_response(200)
                self._headers()
                self.end_headers()

            def do_GET(self) -> None:
                self.send_response(200)
                self._headers()
                self.end_headers()
                piece = bytes(64 * 1024)
                try:
                    for _ in range(size // len(piece)):
                        self.wfile.write(piece)
                        time.sleep(0.06)
                except OSError:
                    pass  # the download was cancelled

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


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
    from huggingface_hub import constants as hf_constants
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication, QWidget

    from localsearch.core.models.manager import catalog_entry
    from localsearch.gui import theme
    from localsearch.gui.failures import FailuresDialog
    from localsearch.gui.main_window import MainWindow
    from localsearch.gui.models_dialog import ModelsDialog
    from localsearch.gui.settings_dialog import SettingsDialog
    from localsearch.settings import load as load_settings

    entry = catalog_entry(DOWNLOAD_SHOWN)
    hub = _SlowHub(entry.file_size if entry is not None and entry.file_size else 48_000_000)
    os.environ["HF_ENDPOINT"] = hub.url
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    hf_constants.DOWNLOAD_CHUNK_SIZE = 64 * 1024  # progress every piece, not every 10 MB

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
    wait_until(lambda: window.welcome.ticked_scan() is not None, 30, "the welcome view's counts")
    save(window, "01-first-run", "first run: welcome view, folders counted, fast or quality model with time")

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
    if window.current_hit() is None:  # the "show weaker matches" row: Enter opens it
        QTest.keyClick(window.results_view, Qt.Key.Key_Return)
        QTest.keyClick(window.results_view, Qt.Key.Key_Down)
    save(
        window,
        "05-keyboard-focus",
        "keyboard only: Down from the box, Enter on 'show weaker matches', Down: focus ring on a result",
    )

    window._show_failures()
    dialog = window.findChild(FailuresDialog)
    dialog.table.selectRow(0)
    save(dialog, "06-failed-files", f"{len(window._failures)} files that could not be indexed, with reasons")
    dialog.close()

    window.open_models()
    models = window.findChild(ModelsDialog)
    save(models, "10-models", "the model catalog, the model in use selected, with the index size it makes")
    # A download in progress, from a slow stand-in for the hub on 127.0.0.1 (cancelled after).
    models.select(DOWNLOAD_SHOWN)
    models.download_button.click()
    wait_until(lambda: models.progress_bar.value() >= 100, 60, "download progress")
    save(
        models,
        "11-models-downloading",
        f"the model manager downloading {DOWNLOAD_SHOWN}, with progress and cancel",
    )
    models.cancel_download()
    wait_until(lambda: models._job is None, 30, "the download to stop")
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
