"""Unexpected exceptions in the window: into the log with their traceback, and on screen as
a short readable message, never as a traceback and never taking the window down."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Callable

from localsearch import paths
from localsearch.errors import LocalSearchError

log = logging.getLogger("localsearch.gui")

Shower = Callable[[str, str], None]  # title, text


def message_for(exc: BaseException) -> tuple[str, str]:
    """What a person is told: our own errors say what to do; bugs say where the details are."""
    if isinstance(exc, LocalSearchError):
        return "localsearch", str(exc)
    return (
        "Something went wrong",
        f"localsearch hit an unexpected problem ({type(exc).__name__}: {exc}). What you were doing "
        f"may not have finished; your files and the index are safe.\n\nDetails are in the log "
        f"folder: {paths.log_dir()}",
    )


def install(show: Shower) -> Callable[..., None]:
    """Route uncaught exceptions (Qt slots included) to the log and to `show`; returns the
    hook it installed. A failure while showing one is only logged."""
    showing = False

    def hook(kind: type[BaseException], exc: BaseException, tb: types.TracebackType | None) -> None:
        nonlocal showing
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        log.error("unexpected error", exc_info=(kind, exc, tb))
        if showing:
            return  # an error inside the dialog itself: logged, not shown again
        showing = True
        try:
            show(*message_for(exc))
        except Exception:
            log.exception("could not show the error")
        finally:
            showing = False

    sys.excepthook = hook
    return hook
