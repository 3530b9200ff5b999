"""The window's keyboard shortcuts pressed through a real X server, as a person presses them.

    python bench/x11_keys.py

pytest-qt's keyClick hands an event to one widget; a real key goes from the X server
through Qt's shortcut map to the focused widget, and a widget that claims the key first
(a list view takes Space to select) stops a shortcut a synthetic test sees firing. This
runs the real window under Xvfb (started when there is no display), sends each key with
`xdotool key`, and checks what happened on screen. Writes bench/results/x11_keys.json:
one row per key, with what was expected and whether it happened.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"

NOTES = {
    "passport renewal.txt": "Renew the passport before the trip: bring two photos and the old passport.",
    "passport office.txt": "The passport office is open Tuesday mornings; renew early before summer.",
    "sourdough.txt": "Feed the sourdough starter the night before, then fold the dough every half hour.",
}


def _run_under_xvfb() -> int:
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        sys.exit("no display and no xvfb-run: apt-get install xvfb xauth")
    argv = [xvfb, "-a", "-s", "-screen 0 1400x900x24", sys.executable, *sys.argv]
    return subprocess.call(argv, env={**os.environ, "LOCALSEARCH_X11_CHILD": "1"})


def main() -> int:
    if not os.environ.get("DISPLAY") and not os.environ.get("LOCALSEARCH_X11_CHILD"):
        return _run_under_xvfb()
    if shutil.which("xdotool") is None:
        sys.exit("xdotool is missing: apt-get install xdotool")
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    home = Path(tempfile.mkdtemp(prefix="localsearch-x11keys-"))
    os.environ["LOCALSEARCH_HOME"] = str(home / "state")
    notes = home / "notes"
    notes.mkdir()
    for name, text in NOTES.items():
        (notes / name).write_text(text, encoding="utf-8")

    from localsearch.core.service import LocalSearch

    with LocalSearch() as service:  # the real default model
        for _ in service.index_paths([notes]):
            pass
    rows = _press_keys()
    failed = [r for r in rows if not r["ok"]]
    for row in rows:
        print(f"{row['window']:8s} {row['keys']:14s} {'ok ' if row['ok'] else 'FAIL'}  {row['expect']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "x11_keys.json"
    out.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "how": "xdotool key through Xvfb to the real window (bench/x11_keys.py)",
                "keys": rows,
                "failed": len(failed),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"{len(rows) - len(failed)}/{len(rows)} keys did what they should; wrote {out.relative_to(ROOT)}")
    return 1 if failed else 0


def focus_follows_pointer() -> None:
    """X input focus back to PointerRoot, as an X server starts without a window manager."""
    x11 = ctypes.cdll.LoadLibrary("libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    display = x11.XOpenDisplay(None)
    pointer_root = revert_to_pointer_root = 1
    x11.XSetInputFocus(ctypes.c_void_p(display), pointer_root, revert_to_pointer_root, 0)
    x11.XCloseDisplay(ctypes.c_void_p(display))


def _press_keys() -> list[dict]:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication, QWidget

    from localsearch.gui.main_window import MainWindow

    app = QApplication(sys.argv)
    app.setApplicationName("localsearch")

    def pump(seconds: float) -> None:
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    def wait_until(test: Callable[[], object], timeout: float) -> bool:
        end = time.perf_counter() + timeout
        while not test():
            if time.perf_counter() > end:
                return False
            pump(0.05)
        return True

    def press(keys: str) -> None:
        # The window's event loop runs while xdotool types: the keys arrive as X events.
        process = subprocess.Popen(["xdotool", "key", "--delay", "60", *keys.split()])
        wait_until(lambda: process.poll() is not None, 10)
        pump(0.4)

    window = MainWindow()
    opened: list[str] = []
    revealed: list[str] = []
    window.open_path = lambda path, page=None: opened.append(path)  # type: ignore[method-assign]
    window.reveal_path = revealed.append  # type: ignore[method-assign]
    window.resize(1100, 700)
    window.show()
    window.start()
    # First round: the window is never made active (no window manager; X focus follows
    # the pointer, which rests on the window), as the user trial met it.
    subprocess.run(["xdotool", "mousemove", "500", "300"], check=True)
    wait_until(lambda: window.results_model is not None and window._index_known, 30)
    wait_until(lambda: not window.index_lane.running, 120)  # the launch's catch-up run

    def search() -> None:
        window.search_box.setFocus()
        window.search_box.setText("renew my passport")
        window._run_search()
        wait_until(lambda: window.results_model.rowCount() > 0, 30)
        pump(0.3)

    def first_hit_row() -> int:
        for row in range(window.results_model.rowCount()):
            if window._hit_at(window.results_model.index(row, 0)) is not None:
                return row
        return -1

    def on_result(row: int | None = None) -> None:
        window.results_view.setFocus()
        window.results_view.setCurrentIndex(
            window.results_model.index(first_hit_row() if row is None else row, 0)
        )
        pump(0.2)

    rows: list[dict] = []
    window_state = "inactive"

    def has_keyboard(widget: QWidget) -> bool:
        # Where the window's next key goes; hasFocus() is False in an inactive window.
        return window.focusWidget() is widget

    def check(keys: str, expect: str, setup: Callable[[], None], test: Callable[[], bool]) -> None:
        if window_state == "inactive":
            focus_follows_pointer()  # Ctrl+K asks for activation: undo it before each key
            wait_until(lambda: QApplication.activeWindow() is None, 2.0)
        setup()
        active = QApplication.activeWindow() is window
        press(keys)
        ok = bool(wait_until(test, 2.0))
        focus = window.focusWidget()
        rows.append(
            {
                "window": window_state,
                "active_when_pressed": active,
                "keys": keys,
                "expect": expect,
                "ok": ok,
                "keyboard_after": (focus.accessibleName() or type(focus).__name__) if focus else None,
            }
        )

    def round_of_keys() -> None:
        search()
        check(
            "Down",
            "Down in the search box moves into the results",
            window.search_box.setFocus,
            lambda: has_keyboard(window.results_view) and window.results_view.currentIndex().row() == 0,
        )
        check(
            "Up",
            "Up on the first result returns to the search box",
            lambda: on_result(0),
            lambda: has_keyboard(window.search_box),
        )
        check("space", "Space on a result opens the preview pane", on_result, window.preview.isVisible)
        check(
            "space", "Space again hides the preview pane", on_result, lambda: not window.preview.isVisible()
        )
        check(
            "Return",
            "Enter opens the current result",
            lambda: (opened.clear(), on_result()),
            lambda: len(opened) == 1,
        )
        check(
            "ctrl+Return",
            "Ctrl+Enter shows the result in its folder",
            lambda: (revealed.clear(), on_result()),
            lambda: len(revealed) == 1,
        )

        def clear_clipboard() -> None:
            QGuiApplication.clipboard().setText("")
            on_result()

        check(
            "ctrl+c",
            "Ctrl+C copies the result's path",
            clear_clipboard,
            lambda: QGuiApplication.clipboard().text() == window.current_hit().path,  # type: ignore[union-attr],
        )
        for key in ("ctrl+k", "ctrl+l", "ctrl+f"):
            check(
                key,
                f"{key.title()} from the results focuses the search box",
                on_result,
                lambda: (
                    has_keyboard(window.search_box)
                    and window.search_box.selectedText() == "renew my passport"
                ),
            )
        check(
            "Escape",
            "Esc in the results clears the search and focuses the box",
            on_result,
            lambda: window.search_box.text() == "" and has_keyboard(window.search_box),
        )
        search()
        check(
            "Escape",
            "Esc in the search box clears it",
            window.search_box.setFocus,
            lambda: window.search_box.text() == "",
        )

    round_of_keys()
    window_state = "active"
    window.activateWindow()
    wait_until(window.isActiveWindow, 10)
    round_of_keys()
    window.close()
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
