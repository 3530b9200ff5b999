"""The import rules: Qt only in gui/, each third-party library behind one module."""

from __future__ import annotations

import ast
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

# The command line reaches models and engines through the service and models/api.py only:
# the manager, converters, GGUF reader and engines behind them may change freely.
CLI_MAY_NOT_IMPORT = (
    "localsearch.core.models.manager",
    "localsearch.core.models.convert",
    "localsearch.core.models.gguf_io",
    "localsearch.core.models.default",
    "localsearch.core.models.download",
    "localsearch.core.embedding",
    "localsearch.core.engine_process",
    "localsearch.core.power",
)


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, "from a import b" counted as a and as a.b."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_cli_reaches_models_and_engines_through_the_service_and_models_api() -> None:
    imported = _imported_modules(PACKAGE / "cli.py")
    assert "localsearch.core.models.api" in imported
    assert sorted(imported & set(CLI_MAY_NOT_IMPORT)) == []


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
