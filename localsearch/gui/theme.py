"""The app's own light and dark palettes, for when the platform gives none or the person
chooses one. "system" keeps what the platform offers, except on bare platforms (a headless
X server, offscreen) whose default palette is Qt's grey fallback: those get the light one."""

from __future__ import annotations

from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

THEMES = ("system", "light", "dark")
THEME_LABELS = {"system": "Same as the system", "light": "Light", "dark": "Dark"}

_LIGHT = {
    QPalette.ColorRole.Window: "#f4f5f7",
    QPalette.ColorRole.WindowText: "#1d1f23",
    QPalette.ColorRole.Base: "#ffffff",
    QPalette.ColorRole.AlternateBase: "#eef1f5",
    QPalette.ColorRole.Text: "#1d1f23",
    QPalette.ColorRole.Button: "#eceef2",
    QPalette.ColorRole.ButtonText: "#1d1f23",
    QPalette.ColorRole.Highlight: "#2f6fdb",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.ToolTipBase: "#ffffff",
    QPalette.ColorRole.ToolTipText: "#1d1f23",
    QPalette.ColorRole.PlaceholderText: "#6b7280",
    QPalette.ColorRole.Link: "#1f5fc4",
    QPalette.ColorRole.Mid: "#b8bdc6",
    QPalette.ColorRole.Midlight: "#d9dce2",
    QPalette.ColorRole.Dark: "#8a9099",
    QPalette.ColorRole.Light: "#ffffff",
}
_DARK = {
    QPalette.ColorRole.Window: "#1f2125",
    QPalette.ColorRole.WindowText: "#e6e8eb",
    QPalette.ColorRole.Base: "#26292e",
    QPalette.ColorRole.AlternateBase: "#2e3238",
    QPalette.ColorRole.Text: "#e6e8eb",
    QPalette.ColorRole.Button: "#2c2f35",
    QPalette.ColorRole.ButtonText: "#e6e8eb",
    QPalette.ColorRole.Highlight: "#4d8ef7",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.ToolTipBase: "#2c2f35",
    QPalette.ColorRole.ToolTipText: "#e6e8eb",
    QPalette.ColorRole.PlaceholderText: "#9aa1ab",
    QPalette.ColorRole.Link: "#7fb0ff",
    QPalette.ColorRole.Mid: "#4a4f57",
    QPalette.ColorRole.Midlight: "#3a3e45",
    QPalette.ColorRole.Dark: "#15171a",
    QPalette.ColorRole.Light: "#5a5f68",
}

_system_palette: QPalette | None = None
_system_style: str | None = None


def _palette(colours: dict[QPalette.ColorRole, str]) -> QPalette:
    palette = QPalette()
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    disabled = QColor(colours[QPalette.ColorRole.Text])
    disabled.setAlpha(110)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return palette


def _bare_platform() -> bool:
    """A platform with no desktop theme of its own (its palette is Qt's fallback)."""
    return QGuiApplication.platformName() in ("offscreen", "minimal", "vnc") or not (
        QGuiApplication.styleHints().colorScheme().value
    )


def apply(theme: str) -> None:
    """Use the theme ("system", "light" or "dark") for the whole application."""
    global _system_palette, _system_style
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    if _system_palette is None:
        _system_palette = QPalette(app.palette())
        _system_style = app.style().name()
    if theme == "system" and not _bare_platform():
        if _system_style:
            app.setStyle(QStyleFactory.create(_system_style))
        app.setPalette(_system_palette)
        return
    # Fusion draws every control from the palette, so ours shows the same everywhere.
    app.setStyle(QStyleFactory.create("Fusion"))
    app.setPalette(_palette(_DARK if theme == "dark" else _LIGHT))


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128
