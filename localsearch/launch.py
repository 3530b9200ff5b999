"""How localsearch starts its own child processes, from a source checkout or a frozen app.

From source, a child is `python -m MODULE ARGS`. In a PyInstaller bundle sys.executable
is the app itself, which knows no `-m`: the bundle would treat it as its own command line
and, with no command it understands, open another window that starts another child, and so
on (a trial build recursed into dozens of processes). There a child is
`APP --localsearch-child NAME ARGS`, and the bundle's entry point (frozen_main) hands
that to the child's main before anything else runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

CHILD_FLAG = "--localsearch-child"
# The children localsearch starts: the command line (the GUI's indexing lane) and the
# embedding engine (ProcessEmbedder). Each module has a main() that reads sys.argv.
CHILD_MODULES = {
    "cli": "localsearch",
    "engine": "localsearch.core.engine_process",
}


def is_frozen() -> bool:
    """Whether this process runs from a PyInstaller bundle (or another freezer that sets it)."""
    return bool(getattr(sys, "frozen", False))


def bundle_dir() -> Path | None:
    """The folder a frozen app unpacked its files into (PyInstaller's _MEIPASS); None from source."""
    if not is_frozen():
        return None
    return Path(getattr(sys, "_MEIPASS", Path(sys.executable).resolve().parent))


def child_command(name: str, *args: str) -> list[str]:
    """The command line that runs child `name` (a key of CHILD_MODULES) with `args`."""
    if name not in CHILD_MODULES:
        raise ValueError(f"unknown child {name!r}; one of {sorted(CHILD_MODULES)}")
    if is_frozen():
        return [sys.executable, CHILD_FLAG, name, *args]
    return [sys.executable, "-m", CHILD_MODULES[name], *args]


def run_child(argv: Sequence[str]) -> int | None:
    """When argv (a whole sys.argv) asks for a child, run it and return its exit code;
    otherwise None. Never opens a window: a child only ever runs the entry it names."""
    if len(argv) < 2 or argv[1] != CHILD_FLAG:
        return None
    name = argv[2] if len(argv) > 2 else ""
    if name not in CHILD_MODULES:
        sys.stderr.write(f"localsearch: unknown child {name!r}; one of {sorted(CHILD_MODULES)}\n")
        return 2
    sys.argv = [argv[0], *argv[3:]]
    # Imported by name, not through CHILD_MODULES, so that PyInstaller sees both.
    if name == "engine":
        from localsearch.core import engine_process

        engine_process.main()
        return 0
    from localsearch.cli import main as cli_main

    return int(cli_main())


def frozen_main() -> int:
    """The bundle's entry point: a child when asked for one, else the command line, which
    opens the window when given no command (a double-click)."""
    code = run_child(sys.argv)
    if code is not None:
        return code
    from localsearch.cli import main as cli_main

    return int(cli_main())
