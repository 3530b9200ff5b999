from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localsearch.core.storage import Index
from tests.fakes import FakeEmbedder

REPO = Path(__file__).resolve().parents[1]
EVALDATA = Path(os.environ.get("LOCALSEARCH_EVALDATA", REPO.parent / "shared" / "evaldata"))
REFERENCE = Path(os.environ.get("LOCALSEARCH_REFERENCE", REPO.parent / "shared" / "reference"))
PDF_DIR = EVALDATA / "pdfs"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches real user data: all state goes to a fresh folder."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LOCALSEARCH_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def default_model() -> Path:
    """The real offline default model, built once (by `make setup`, or here if missing)."""
    from localsearch.core.models.default import build_default_model

    saved = os.environ.pop("LOCALSEARCH_HOME", None)
    try:
        return build_default_model()
    finally:
        if saved is not None:
            os.environ["LOCALSEARCH_HOME"] = saved


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    idx = Index.open(tmp_path / "index.sqlite3")
    yield idx
    idx.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """One real PostgreSQL 16 + pgvector server for the session (pgserver's binaries, a
    Unix socket in a temporary folder), stopped and removed at the end."""
    from localsearch.core.pg.local_server import LocalServer, binaries

    if binaries() is None:
        pytest.skip("pgserver is not installed; `pip install -e '.[dev]'` brings the PostgreSQL test server")
    server = LocalServer(shared_buffers="16MB").start()
    try:
        yield server
    finally:
        server.stop()


_databases = itertools.count(1)


@pytest.fixture
def pg_url(pg_server: Any) -> Iterator[str]:
    """A fresh, empty database on the session's server, as an index_url."""
    name = f"test_{os.getpid()}_{next(_databases)}"
    pg_server.psql(f"CREATE DATABASE {name}")
    yield pg_server.url(database=name)
    pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """An empty index on each backend, written as the machine "laptop"."""
    if request.param == "sqlite":
        opened: Any = Index.open(tmp_path / "index.sqlite3")
    else:
        from localsearch.core.pg.index import PostgresIndex

        opened = PostgresIndex.open(request.getfixturevalue("pg_url"), host="laptop")
    yield opened
    opened.close()


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()
