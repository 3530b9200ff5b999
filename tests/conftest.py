from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()
