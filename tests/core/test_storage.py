from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from localsearch.core import storage
from localsearch.core.codes import binary_codes
from localsearch.core.storage import ChunkRecord, Index
from localsearch.errors import StorageError


def _tables(index: Index) -> set[str]:
    rows = index.conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table')")
    return {r[0] for r in rows}


def test_migrations_on_empty_database_create_the_schema(index: Index) -> None:
    assert {"folders", "files", "chunks", "embedding_spaces", "schema_migrations"} <= _tables(index)
    versions = [r[0] for r in index.conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == list(range(1, storage.SCHEMA_VERSION + 1))
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
        again.conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == storage.SCHEMA_VERSION
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


def test_nearest_chunks_orders_by_cosine(index: Index) -> None:
    space = index.ensure_space("m", 3)
    folder = index.add_folder("/f")
    vectors = np.array([[1, 0, 0], [0.8, 0.6, 0], [0, 0, 1]], dtype=np.float32)
    for i, v in enumerate(vectors):
        index.replace_file(
            folder_id=folder,
            path=f"/f/{i}",
            size=1,
            mtime=1.0,
            content_hash=str(i),
            space=space,
            chunks=[ChunkRecord(0, f"t{i}", None, 0, 2, 2)],
            vectors=v[None, :],
        )
    hits = index.nearest_chunks(space, np.array([1, 0, 0], dtype=np.float32), 3)
    assert [h.path for h in hits] == ["/f/0", "/f/1", "/f/2"]
    assert hits[0].distance == pytest.approx(0.0, abs=1e-6)
    assert hits[1].distance == pytest.approx(0.2, abs=1e-6)


def test_schema_3_index_moves_its_vectors_to_two_stage_tables(tmp_path: Path) -> None:
    """An index written before two-stage storage keeps every vector, gains binary codes,
    and is backed up before the migration."""
    path = tmp_path / "old.sqlite3"
    conn = storage.connect(path, migrate=False)
    storage.schema_version(conn)
    for version, (name, apply) in enumerate(storage.MIGRATIONS[:3], 1):
        apply(conn)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (version, name))
    # The layout schema 3 wrote: one vec0 float table per space.
    conn.execute(
        "INSERT INTO embedding_spaces (id, model, dimensions, table_name, created_at) "
        "VALUES (1, 'm', 10, 'vec_1', 0)"
    )
    conn.execute(
        "CREATE VIRTUAL TABLE vec_1 USING vec0(chunk_id INTEGER PRIMARY KEY, "
        "embedding float[10] distance_metric=cosine)"
    )
    conn.execute("INSERT INTO folders VALUES (1, '/f', 0)")
    conn.execute("INSERT INTO files VALUES (1, 1, '/f/a', 1, 1, 'h', 'indexed', NULL, 1, 0)")
    vectors = np.random.default_rng(0).standard_normal((3, 10)).astype(np.float32)
    for i, vector in enumerate(vectors, 1):
        conn.execute("INSERT INTO chunks VALUES (?, 1, ?, 't', NULL, 0, 1, 1)", (i, i))
        conn.execute("INSERT INTO vec_1 VALUES (?, ?)", (i, vector.tobytes()))
    conn.close()

    index = Index.open(path)
    space = index.find_space("m")
    assert space is not None and space.table_name == "vectors_1" and space.precision == "float32"
    ids, matrix = index.all_vectors(space)
    assert ids.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(matrix, vectors)
    code_ids, codes = index.all_codes(space)
    assert code_ids.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(codes, binary_codes(vectors))
    assert "vec_1" not in _tables(index)
    assert (tmp_path / "old.sqlite3.v3.bak").is_file()
    index.close()


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
    assert [h.heading for h in index.nearest_chunks(space, vectors[1], 1)] == ["Usage"]
    assert {h.heading for h in index.keyword_chunks('"body"', 5)} == {"Usage"}


def test_schema_4_index_gains_a_heading_column_with_old_chunks_null(tmp_path: Path) -> None:
    path = tmp_path / "v4.sqlite3"
    conn = storage.connect(path, migrate=False)
    storage.schema_version(conn)
    for version, (name, apply) in enumerate(storage.MIGRATIONS[:4], 1):
        apply(conn)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (version, name))
    conn.execute("INSERT INTO folders VALUES (1, '/f', 0)")
    conn.execute("INSERT INTO files VALUES (1, 1, '/f/a', 1, 1, 'h', 'indexed', NULL, NULL, 0)")
    conn.execute("INSERT INTO chunks VALUES (1, 1, 0, 'an old chunk', NULL, 0, 12, 3)")
    conn.close()

    index = Index.open(path)
    assert storage.SCHEMA_VERSION >= 5
    columns = [r[1] for r in index.conn.execute("PRAGMA table_info(chunks)")]
    assert "heading" in columns
    hit = index.chunk_hit(1)
    assert hit is not None and hit.text == "an old chunk" and hit.heading is None
    assert (tmp_path / "v4.sqlite3.v4.bak").is_file()
    index.close()
