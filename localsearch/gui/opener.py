"""Open a file (a PDF at a page where the viewer takes one) or show it in its folder.

Programs are started from argument lists, never through a shell, so no file name can be
read as a command. A launcher that fails (no application for the type, xdg-open missing)
is reported back, so the window can say so and offer a way out instead of doing nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# A launcher that has not failed after this long is taken to have opened the file.
LAUNCH_GRACE_SECONDS = 4.0


@dataclass(frozen=True)
class Launch:
    """A command to run, and whether it shows the requested page."""

    argv: list[str]
    at_page: bool = False


# PDF viewers that accept a page on their command line, by the desktop entry that
# xdg-mime names as the default (or by program name). Each builds argv from (program, path, page).
_PAGE_ARGS: dict[str, tuple[str, Callable[[str, str, int], list[str]]]] = {
    "evince": ("evince", lambda prog, path, page: [prog, f"--page-index={page}", path]),
    "org.gnome.evince": ("evince", lambda prog, path, page: [prog, f"--page-index={page}", path]),
    "okular": ("okular", lambda prog, path, page: [prog, "-p", str(page), path]),
    "org.kde.okular": ("okular", lambda prog, path, page: [prog, "-p", str(page), path]),
    "zathura": ("zathura", lambda prog, path, page: [prog, f"--page={page}", path]),
    "org.pwmt.zathura": ("zathura", lambda prog, path, page: [prog, f"--page={page}", path]),
    "org.pwmt.zathura-pdf-mupdf": ("zathura", lambda prog, path, page: [prog, f"--page={page}", path]),
    "org.pwmt.zathura-pdf-poppler": ("zathura", lambda prog, path, page: [prog, f"--page={page}", path]),
    "qpdfview": ("qpdfview", lambda prog, path, page: [prog, f"{path}#{page}"]),
    "mupdf": ("mupdf", lambda prog, path, page: [prog, path, str(page)]),
    "xreader": ("xreader", lambda prog, path, page: [prog, f"--page-index={page}", path]),
    "atril": ("atril", lambda prog, path, page: [prog, f"--page-index={page}", path]),
    "sumatrapdf": ("SumatraPDF", lambda prog, path, page: [prog, "-page", str(page), path]),
}


def _default_pdf_viewer() -> str | None:
    """The desktop entry (without .desktop, lower case) that opens PDFs, per xdg-mime."""
    xdg_mime = shutil.which("xdg-mime")
    if xdg_mime is None:
        return None
    try:
        out = subprocess.run(
            [xdg_mime, "query", "default", "application/pdf"],
            capture_output=True,
            text=True,
            timeout=3,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.removesuffix(".desktop").lower() or None


def launch_for(path: str, page: int | None = None, *, platform: str = sys.platform) -> Launch | None:
    """How to open path here (at `page` when it is a PDF and the viewer takes one);
    None when this system has no launcher at all."""
    is_pdf = path.lower().endswith(".pdf")
    if platform == "darwin":
        # Preview takes no page on the command line; `open` brings the file up.
        return Launch(["open", path])
    if platform.startswith("win"):
        if is_pdf and page:
            sumatra = shutil.which("SumatraPDF") or shutil.which("SumatraPDF.exe")
            if sumatra:
                return Launch([sumatra, "-page", str(page), path], at_page=True)
        return Launch(["explorer", path])  # runs the file's associated program
    if is_pdf and page:
        viewer = _default_pdf_viewer()
        if viewer in _PAGE_ARGS:
            program, build = _PAGE_ARGS[viewer]
            found = shutil.which(program)
            if found:
                return Launch(build(found, path, page), at_page=True)
    opener = shutil.which("xdg-open")
    return Launch([opener, path]) if opener else None


def reveal_launch(path: str, *, platform: str = sys.platform) -> Launch | None:
    """How to show path in its folder (selected, where the file manager allows)."""
    if platform == "darwin":
        return Launch(["open", "-R", path])
    if platform.startswith("win"):
        return Launch(["explorer", f"/select,{path}"])
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    opener = shutil.which("xdg-open")
    return Launch([opener, folder]) if opener else None


def start(launch: Launch, on_failure: Callable[[str], None]) -> None:
    """Run the launcher detached; call on_failure(reason) from a helper thread if it cannot
    start or exits with an error within the grace period (xdg-open's 3 and 4: no
    application or the application failed). Never blocks the caller."""
    # Its errors go to a file, not a pipe: a viewer that runs for hours and writes warnings
    # must never block on a pipe nobody reads.
    errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the waiting thread)
    try:
        process = subprocess.Popen(
            launch.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,  # the viewer outlives the window
        )
    except OSError as exc:
        errors.close()
        on_failure(str(exc))
        return

    def wait() -> None:
        try:
            code = process.wait(timeout=LAUNCH_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            errors.close()
            return  # still running: a viewer that opened the file
        errors.seek(0)
        error = errors.read().decode(errors="replace").strip()
        errors.close()
        if code != 0:
            log.warning("%s exited with %s: %s", launch.argv[0], code, error)
            on_failure(
                error.splitlines()[-1] if error else f"{os.path.basename(launch.argv[0])} failed ({code})"
            )

    threading.Thread(target=wait, name="opener", daemon=True).start()
