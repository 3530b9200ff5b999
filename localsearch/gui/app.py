"""Start the desktop window."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from localsearch import logsetup, paths

if TYPE_CHECKING:  # imported at run time inside run(), after the window is decided on
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QWidget

ICON_DIR = Path(__file__).resolve().parent / "icons"


def app_icon() -> QIcon:
    """The app's own icon at every rendered size (packaging/render_icons.py makes them)."""
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for png in sorted(ICON_DIR.glob("localsearch-*.png")):
        icon.addFile(str(png))
    return icon if not icon.isNull() else QIcon.fromTheme("system-search")


def run(minimized: bool = False) -> int:
    from PySide6.QtWidgets import QApplication

    from localsearch.gui import errors, theme
    from localsearch.gui.main_window import MainWindow
    from localsearch.gui.single_instance import SingleInstance
    from localsearch.settings import load as load_settings

    paths.secure_state()
    handler = logging.FileHandler(paths.log_dir() / "localsearch-gui.log", encoding="utf-8")
    handler.setFormatter(logsetup.formatter(debug=False))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv)
    app.setApplicationName("localsearch")  # also the X11 WM_CLASS: StartupWMClass=localsearch
    app.setApplicationDisplayName("localsearch")
    app.setDesktopFileName(paths.APP_ID)  # the Wayland app id: the desktop entry's name
    app.setWindowIcon(app_icon())
    instance = SingleInstance(app)
    if not instance.acquire():
        logging.getLogger(__name__).info("localsearch already runs: asked its window to come forward")
        return 0
    theme.apply(load_settings().theme)  # ours when chosen, or when the platform has none
    window = MainWindow()
    errors.install(window.show_error)  # unexpected exceptions: to the log and a dialog
    instance.activated.connect(lambda: _bring_forward(window))
    if minimized:
        window.showMinimized()
    else:
        window.show()
        # Ask for the keyboard: without a window manager nobody else makes the window
        # active, and Qt fires no shortcut in an inactive window (see gui/keys.py).
        window.activateWindow()
    window.start()
    try:
        return int(app.exec())
    finally:
        instance.release()


def _bring_forward(window: QWidget) -> None:
    if window.isMinimized():
        window.showNormal()
    else:
        window.show()
    window.raise_()
    window.activateWindow()


if __name__ == "__main__":
    raise SystemExit(run())
