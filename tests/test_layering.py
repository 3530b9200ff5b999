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
    "snowballstemmer": {"core/snippets.py"},
    "defusedxml": {"core/extract/office.py"},
    "psycopg": {"core/pg/index.py"},
    "pgserver": {"core/pg/local_server.py"},
}

# The command line and the window reach models and engines through the service and
# models/api.py only: the manager, converters, GGUF reader and engines behind them may
# change freely.
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


def _imported_modules(path: Path, *, runtime_only: bool = False) -> set[str]:
    """Every module a file imports, "from a import b" counted as a and as a.b; with
    runtime_only, not those imported for type checking only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if runtime_only:
        for node in ast.walk(tree):
            typing_only = isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
            if typing_only:
                assert isinstance(node, ast.If)
                node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
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


def test_the_window_reaches_models_and_engines_through_the_service_and_models_api() -> None:
    for path in (PACKAGE / "gui").rglob("*.py"):
        imported = _imported_modules(path)
        assert sorted(imported & set(CLI_MAY_NOT_IMPORT)) == [], path.name


def test_core_never_imports_the_window_or_the_command_line() -> None:
    for path in (PACKAGE / "core").rglob("*.py"):
        imported = _imported_modules(path)
        outward = {m for m in imported if m.startswith(("localsearch.gui", "localsearch.cli"))}
        assert outward == set(), f"{path.relative_to(PACKAGE)} imports {sorted(outward)}"


def test_core_modules_import_no_cycle() -> None:
    """The core's modules form layers: following the imports made at run time (at the top
    or inside a function) never leads back to the start."""
    graph: dict[str, set[str]] = {}
    for path in (PACKAGE / "core").rglob("*.py"):
        module = "localsearch." + path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
        module = module.removesuffix(".__init__")
        imported = _imported_modules(path, runtime_only=True)
        graph[module] = {m for m in imported if m.startswith("localsearch.core")}
    for module in graph:
        graph[module] = {m for m in graph[module] if m in graph and m != module}

    def reaches(start: str) -> bool:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            current = todo.pop()
            if current == start:
                return True
            if current not in seen:
                seen.add(current)
                todo.extend(graph[current])
        return False

    assert [m for m in sorted(graph) if reaches(m)] == []


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
