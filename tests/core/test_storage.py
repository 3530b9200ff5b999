from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from localsearch.core import migrations, storage
from localsearch.core.searcher import Searcher
from localsearch.core.storage import ChunkRecord, Index
from localsearch.errors import StorageError
from tests.fakes import FixedQueryEmbedder


def _tables(index: Index) -> set[str]:
    rows = index.conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table')")
    return {r[0] for r in rows}


def test_migrations_on_empty_database_create_the_schema(index: Index) -> None:
    assert {"folders", "files", "chunks", "embedding_spaces", "schema_migrations"} <= _tables(index)
    versions = [r[0] for r in index.conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == list(range(1, migrations.SCHEMA_VERSION + 1))
    assert index.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert index.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_vector_table_is_sized_from_the_model(index: Index) -> None:
    space = index.ensure_space("some-model", 48)
    assert space.table_name in _tables(index)
    assert index.ensure_space("some-model", 48) == space
    other = index.ensure_space("some-model", 24)
    assert other.table_name != space.table_name
    vector = np.ones(48, dtype=np.float32) / np.sqrt(48)
    index.add_folder("/f")
    index.replace_file(
        folder_id=1,
        path="/f/a.txt",
        size=1,
        mtime=1.0,
        content_hash="h",
        space=space,
        chunks=[ChunkRecord(0, "text", None, 0, 4, 3)],
        vectors=vector[None, :],
    )
    with pytest.raises(storage.DatabaseError):
        index.replace_file(
            folder_id=1,
            path="/f/b.txt",
            size=1,
            mtime=1.0,
            content_hash="h",
            space=space,
            chunks=[ChunkRecord(0, "text", None, 0, 4, 3)],
            vectors=np.ones((1, 12), dtype=np.float32),
        )
    # The failed file left nothing behind: its transaction was rolled back whole.
    assert index.file_state("/f/b.txt") is None
    assert index.counts()["chunks"] == 1


def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite3"
    Index.open(path).close()
    again = Index.open(path)
    assert (
        again.conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
        == migrations.SCHEMA_VERSION
    )
    again.close()
    assert not list(tmp_path.glob("*.bak"))


def test_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite3"
    index = Index.open(path)
    index.conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    index.close()
    with pytest.raises(StorageError, match="newer localsearch"):
        Index.open(path)


def test_replacing_a_file_replaces_exactly_its_chunks_and_vectors(index: Index) -> None:
    space = index.ensure_space("m", 4)
    folder = index.add_folder("/f")

    def put(path: str, texts: list[str]) -> None:
        index.replace_file(
            folder_id=folder,
            path=path,
            size=len(texts),
            mtime=1.0,
            content_hash=path + str(texts),
            space=space,
            chunks=[ChunkRecord(i, t, None, 0, len(t), 2) for i, t in enumerate(texts)],
            vectors=np.eye(4, dtype=np.float32)[: len(texts)],
        )

    put("/f/a", ["a1", "a2", "a3"])
    put("/f/b", ["b1"])
    b_ids = [
        r[0]
        for r in index.conn.execute(
            "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = '/f/b'"
        )
    ]
    put("/f/a", ["a-new"])
    texts = sorted(r[0] for r in index.conn.execute("SELECT text FROM chunks"))
    assert texts == ["a-new", "b1"]
    assert [
        r[0]
        for r in index.conn.execute(
            "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = '/f/b'"
        )
    ] == b_ids
    vec_count = index.conn.execute(f"SELECT COUNT(*) FROM {space.table_name}").fetchone()[0]
    assert vec_count == 2
    index.delete_file("/f/a")
    assert index.conn.execute(f"SELECT COUNT(*) FROM {space.table_name}").fetchone()[0] == 1
    assert index.remove_folder("/f")
    assert index.counts() == {"folders": 0, "files": 0, "chunks": 0}
    assert index.conn.execute(f"SELECT COUNT(*) FROM {space.table_name}").fetchone()[0] == 0


def test_precision_setting_converts_stored_vectors(index: Index) -> None:
    space = index.ensure_space("m", 16)
    folder = index.add_folder("/f")
    vectors = np.random.default_rng(1).standard_normal((2, 16)).astype(np.float32)
    index.replace_file(
        folder_id=folder,
        path="/f/a",
        size=1,
        mtime=1.0,
        content_hash="a",
        space=space,
        chunks=[ChunkRecord(i, "t", None, 0, 1, 1) for i in range(2)],
        vectors=vectors,
    )
    half = index.ensure_space("m", 16, "float16")
    assert half.id == space.id and half.precision == "float16"
    assert index.conn.execute(f"SELECT length(embedding) FROM {half.table_name}").fetchone()[0] == 32
    _, matrix = index.all_vectors(half)
    np.testing.assert_allclose(matrix, vectors, rtol=1e-3, atol=1e-3)
    assert half.bytes_per_vector == 16 * 2 + 2
    with pytest.raises(StorageError):
        index.ensure_space("m", 16, "int3")


def test_storage_bytes_by_table(index: Index) -> None:
    index.ensure_space("m", 8)
    sizes = index.storage_bytes()
    assert {"chunks", "chunks_fts", "vectors_1", "codes_1"} <= set(sizes)
    assert all(size > 0 for size in sizes.values())


def _unit_rows(n: int, dimensions: int) -> np.ndarray:
    rows = np.random.default_rng(7).standard_normal((n, dimensions)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_chunk_headings_are_stored_copied_and_returned(index: Index) -> None:
    space = index.ensure_space("m", 8)
    folder = index.add_folder("/f")
    vectors = _unit_rows(2, 8)
    index.replace_file(
        folder_id=folder,
        path="/f/a.md",
        size=1,
        mtime=1.0,
        content_hash="same",
        space=space,
        chunks=[ChunkRecord(0, "intro", None, 0, 5, 2), ChunkRecord(1, "body", 3, 7, 11, 2, "Usage")],
        vectors=vectors,
    )
    # A copy of the file (same content) reuses the chunks, headings included.
    assert index.copy_indexed(
        folder_id=folder, path="/f/b.md", size=1, mtime=2.0, content_hash="same", space=space
    )
    for path in ("/f/a.md", "/f/b.md"):
        hits = [index.chunk_hit(i) for i in index.file_chunk_ids(path)]
        assert [(h.heading, h.page) for h in hits if h is not None] == [(None, None), ("Usage", 3)]
    searcher = Searcher(index, FixedQueryEmbedder(vectors[1]), space)  # type: ignore[arg-type]
    assert [h.heading for h in searcher.search("body", 2, mode="semantic")] == ["Usage", "Usage"]
    assert {h.heading for h in index.keyword_chunks('"body"', 5)} == {"Usage"}
