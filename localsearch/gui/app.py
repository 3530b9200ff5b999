"""Start the desktop window."""

from __future__ import annotations

import logging
import sys

from localsearch import logsetup, paths


def run() -> int:
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from localsearch.gui import errors, theme
    from localsearch.gui.main_window import MainWindow
    from localsearch.settings import load as load_settings

    paths.secure_state()
    handler = logging.FileHandler(paths.log_dir() / "localsearch-gui.log", encoding="utf-8")
    handler.setFormatter(logsetup.formatter(debug=False))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv)
    app.setApplicationName("localsearch")
    app.setApplicationDisplayName("localsearch")
    app.setWindowIcon(QIcon.fromTheme("system-search"))
    theme.apply(load_settings().theme)  # ours when chosen, or when the platform has none
    window = MainWindow()
    errors.install(window.show_error)  # unexpected exceptions: to the log and a dialog
    window.show()
    window.start()
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(run())
