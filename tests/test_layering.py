"""The import rules of DESIGN.md: Qt only in gui/, each library behind one module."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "localsearch"

OWNERS = {
    "llama_cpp": {"core/embedding.py"},
    "sqlite_vec": {"core/storage.py"},
    "sqlean": {"core/storage.py"},
    "sqlite3": {"core/storage.py"},
    "pypdf": {"core/extract/pdf.py"},
    "watchdog": {"core/watch.py"},
    "gguf": {"core/models/convert.py", "core/models/gguf_io.py"},
    "safetensors": {"core/models/convert.py"},
    "huggingface_hub": {"core/models/download.py"},
}


def test_core_and_cli_do_not_load_qt() -> None:
    code = (
        "import sys, localsearch.core.service, localsearch.cli; "
        "print(any(m.startswith('PySide6') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_each_library_is_imported_by_its_own_module_only() -> None:
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        source = path.read_text(encoding="utf-8")
        for library, owners in OWNERS.items():
            if re.search(rf"^\s*(import|from) {library}\b", source, re.M):
                assert relative in owners, f"{relative} imports {library}"
        if re.search(r"^\s*(import|from) PySide6\b", source, re.M):
            assert relative.startswith("gui/"), f"{relative} imports PySide6"
