"""Every past schema version upgrades to the current one with its data intact.

tests/data/schemas/v<N>.sqlite3 is a small index of version N, written by
tests/data/schemas/make_fixtures.py the way that version stored folders, files, chunks
and vectors (before version 4, one sqlite-vec vec0 table a space)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localsearch.core import migrations, storage
from localsearch.core.codes import binary_codes
from localsearch.core.searcher import Searcher
from localsearch.core.storage import ChunkRecord, Index
from tests.fakes import FixedQueryEmbedder

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "schemas"
PAST_VERSIONS = range(1, migrations.SCHEMA_VERSION)
# The columns every version has, as the fixtures stored them.
_FILES = (
    "SELECT id, folder_id, path, size, mtime, content_hash, status, reason, space_id FROM files ORDER BY id"
)
_CHUNKS = "SELECT id, file_id, ordinal, text, page, start_char, end_char, n_tokens FROM chunks ORDER BY id"


def _rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sql).fetchall()]


def _snapshot(path: Path) -> dict[str, Any]:
    """What the index holds, read without migrating it."""
    conn = storage.connect(path, migrate=False)
    try:
        spaces = _rows(conn, "SELECT id, model, dimensions, table_name FROM embedding_spaces ORDER BY id")
        return {
            "version": migrations.schema_version(conn),
            "folders": _rows(conn, "SELECT id, path FROM folders ORDER BY id"),
            "files": _rows(conn, _FILES),
            "chunks": _rows(conn, _CHUNKS),
            "spaces": spaces,
            "vectors": {
                space_id: _rows(conn, f"SELECT chunk_id, embedding FROM {table} ORDER BY chunk_id")
                for space_id, _, _, table in spaces
            },
        }
    finally:
        conn.close()


def test_there_is_a_fixture_of_every_past_version() -> None:
    """Adding a migration means adding the version it supersedes: run make_fixtures.py."""
    found = sorted(int(p.stem[1:]) for p in FIXTURES.glob("v*.sqlite3"))
    assert found == list(PAST_VERSIONS)
    for version in found:
        assert _snapshot(FIXTURES / f"v{version}.sqlite3")["version"] == version


@pytest.mark.parametrize("version", PAST_VERSIONS)
def test_an_index_of_each_past_version_upgrades_with_its_data(version: int, tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    shutil.copyfile(FIXTURES / f"v{version}.sqlite3", path)
    before = _snapshot(path)
    assert before["chunks"] and all(before["vectors"].values())

    index = Index.open(path)
    conn = index.conn
    assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")] == list(
        range(1, migrations.SCHEMA_VERSION + 1)
    )
    # The old file was kept, byte for byte, before anything changed.
    backup = tmp_path / f"index.sqlite3.v{version}.bak"
    assert backup.read_bytes() == (FIXTURES / f"v{version}.sqlite3").read_bytes()

    assert index.folders() == sorted(before["folders"], key=lambda row: row[1])
    assert _rows(conn, _FILES) == before["files"]
    assert index.failures() == [(f[2], f[7]) for f in before["files"] if f[6] == "failed"]
    assert _rows(conn, _CHUNKS) == before["chunks"]
    if version < 5:  # chunks stored before headings existed have none
        assert {r[0] for r in conn.execute("SELECT heading FROM chunks")} == {None}

    # Every vector, in its space, with the binary code the first search stage reads.
    for space_id, model, dimensions, old_table in before["spaces"]:
        space = index.ensure_space(model, dimensions)
        assert (space.id, space.table_name, space.precision) == (space_id, f"vectors_{space_id}", "float32")
        ids, matrix = index.all_vectors(space)
        stored = before["vectors"][space_id]
        assert ids.tolist() == [r[0] for r in stored]
        expected = np.frombuffer(b"".join(r[1] for r in stored), np.float32).reshape(len(stored), -1)
        np.testing.assert_array_equal(matrix, expected)
        code_ids, codes = index.all_codes(space)
        assert code_ids.tolist() == ids.tolist()
        np.testing.assert_array_equal(codes, binary_codes(matrix))
        if old_table.startswith("vec_"):  # the vec0 table is gone once copied
            assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (old_table,)).fetchone() is None

    # Both search lanes read the upgraded data: every chunk by one of its words, and the
    # chunk whose own vector is the query, first at cosine 1.
    conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')")
    for chunk_id, _, _, text, *_ in before["chunks"]:
        word = max(text.split(), key=len).strip(".,;")
        assert chunk_id in [h.chunk_id for h in index.keyword_chunks(f'"{word}"', 10)]
    space = index.ensure_space("model-a", 8)
    ids, matrix = index.all_vectors(space)
    searcher = Searcher(index, FixedQueryEmbedder(matrix[-1]), space)  # type: ignore[arg-type]
    top = searcher.search("anything", 1, mode="semantic")[0]
    last_chunk = before["chunks"][-1]  # the highest id: the last row of space 1 too
    assert ids[-1] == last_chunk[0]
    last_file = next(f for f in before["files"] if f[0] == last_chunk[1])
    assert (top.path, top.chunk) == (last_file[2], last_chunk[2])
    assert top.cosine == pytest.approx(1.0, abs=1e-5)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # Chunk ids are never handed out again, not even the highest, whose file is re-indexed.
    highest = last_chunk[0]
    index.replace_file(
        folder_id=last_file[1],
        path=last_file[2],
        size=1,
        mtime=2.0,
        content_hash="new",
        space=space,
        chunks=[ChunkRecord(0, "rewritten", None, 0, 9, 2)],
        vectors=matrix[:1],
    )
    new_ids = index.file_chunk_ids(last_file[2])
    assert len(new_ids) == 1 and new_ids[0] > highest
    index.close()
