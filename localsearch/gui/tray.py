"""The tray icon: quick search, pause or resume indexing, quit. Shown while the person
chose to keep watching their folders with the window closed, where the desktop has a tray."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QPointF, Qt
from PySide6.QtGui import QAction, QColor, QGuiApplication, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon


def fallback_icon() -> QIcon:
    """A magnifier drawn here, for when neither the application nor the theme has an icon."""
    icon = QIcon()
    for size in (16, 22, 32, 48, 64):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(QColor("#2f6fdb"), max(2.0, size / 9))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        radius = size * 0.28
        centre = QPointF(size * 0.42, size * 0.42)
        painter.drawEllipse(centre, radius, radius)
        painter.drawLine(QPointF(size * 0.62, size * 0.62), QPointF(size * 0.88, size * 0.88))
        painter.end()
        icon.addPixmap(pixmap)
    return icon


def app_icon() -> QIcon:
    """The app's icon (rendered from assets/icons at every size, for high-DPI trays), else
    the theme's magnifier, else one drawn here."""
    from localsearch.gui.app import app_icon as rendered_icon

    current = QGuiApplication.windowIcon()
    if not current.isNull() and current.availableSizes():
        return current
    ours = rendered_icon()
    return ours if not ours.isNull() else fallback_icon()


class Tray(QObject):
    def __init__(
        self,
        search: Callable[[], None],
        pause_action: QAction,
        quit_app: Callable[[], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.icon = QSystemTrayIcon(app_icon(), self)
        self.icon.setToolTip("localsearch — watching your folders")
        self.menu = QMenu()
        self.menu.addAction("Search…", search)
        self.menu.addAction(pause_action)
        self.menu.addSeparator()
        self.menu.addAction("Quit localsearch", quit_app)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(
            lambda reason: search() if reason == QSystemTrayIcon.ActivationReason.Trigger else None
        )

    @staticmethod
    def available() -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def set_visible(self, visible: bool) -> None:
        self.icon.setVisible(visible)

    def is_visible(self) -> bool:
        return self.icon.isVisible()
