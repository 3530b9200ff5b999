"""Start the desktop window."""

from __future__ import annotations

import logging
import sys

from localsearch import logsetup, paths


def run() -> int:
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from localsearch.gui.main_window import MainWindow

    paths.secure_state()
    handler = logging.FileHandler(paths.log_dir() / "localsearch-gui.log", encoding="utf-8")
    handler.setFormatter(logsetup.formatter(debug=False))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv)
    app.setApplicationName("localsearch")
    app.setApplicationDisplayName("localsearch")
    app.setWindowIcon(QIcon.fromTheme("system-search"))
    window = MainWindow()
    window.show()
    window.start()
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(run())
