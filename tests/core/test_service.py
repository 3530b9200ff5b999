"""The application service: what its index is keyed by and what status reports."""

from __future__ import annotations

from pathlib import Path

from localsearch.core.service import LocalSearch
from localsearch.settings import Settings
from tests.fakes import FakeEmbedder


def _service(tmp_path: Path, **settings: object) -> LocalSearch:
    return LocalSearch(
        Settings(**settings),  # type: ignore[arg-type]
        db_path=tmp_path / "index.sqlite3",
        embedder_factory=lambda settings, for_queries=False: FakeEmbedder(),
    )


def test_fewer_layers_or_dimensions_are_a_separate_space(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Tomatoes need water every morning.")
    with _service(tmp_path) as whole:
        for _ in whole.index_paths([docs]):
            pass
        full = whole.space
    with _service(tmp_path, layers=2) as sliced:
        assert sliced.space.id != full.id  # vectors of a sliced model never mix with the whole one's
        assert sliced.space.model == "all-minilm-l6-v2@2L+names"
        assert sliced.status()["dimensions"] == full.dimensions
    with _service(tmp_path, dimensions=32) as smaller:
        assert smaller.space.id != full.id and smaller.space.dimensions == 32


def test_status_reports_what_a_chunk_costs(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Tomatoes need water every morning. " * 40)
    with _service(tmp_path, vector_precision="float16") as service:
        for _ in service.index_paths([docs]):
            pass
        storage = service.status()["storage"]
    assert isinstance(storage, dict)
    assert storage["precision"] == "float16"
    assert storage["vector_bytes_per_chunk"] == 64 * 2 + 8  # FakeEmbedder: 64 dimensions
    assert storage["bytes_per_chunk"] > storage["vector_bytes_per_chunk"]
    assert {"chunks", "vectors_1", "codes_1"} <= set(storage["tables"])


def test_status_reports_the_space_the_settings_choose_after_384_256_384(tmp_path: Path) -> None:
    # FakeEmbedder is 64-dimensional: 64 -> 32 -> 64 stands for 384 -> 256 -> 384.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Tomatoes need water every morning.")
    for dimensions in (0, 32, 0):
        with _service(tmp_path, dimensions=dimensions) as service:
            for _ in service.index_paths([docs]):
                pass
    for dimensions, expected in ((0, 64), (32, 32), (64, 64), (100, 64)):
        with _service(tmp_path, dimensions=dimensions) as fresh:  # status loads no model
            status = fresh.status()
            storage = status["storage"]
            assert isinstance(storage, dict)
            assert status["dimensions"] == expected, dimensions
            assert storage["vector_bytes_per_chunk"] == expected * 4 + expected // 8
