"""The index's schema, as the ordered list of migrations that build it.

Each migration runs in its own transaction and is recorded in `schema_migrations`; an
index of an older version is copied aside (`<name>.v<N>.bak`) before it is upgraded.
Append only: a migration, once released, never changes. tests/data/schemas/ holds a small
database of every past version, which tests/core/test_migrations.py upgrades.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from localsearch.core.codes import binary_codes
from localsearch.errors import StorageError

Connection = Any  # sqlean ships no type information; it mirrors sqlite3.Connection

_VECTOR_TABLE = re.compile(r"^(vec|vectors)_[0-9]+$")


def _run(conn: Connection, statements: Sequence[str]) -> None:
    # One by one: executescript() would COMMIT the migration's transaction.
    for statement in statements:
        conn.execute(statement)


def _migration_1(conn: Connection) -> None:
    _run(
        conn,
        (
            """CREATE TABLE folders (
                id INTEGER PRIMARY KEY,
                path TEXT NOT NULL UNIQUE,
                added_at REAL NOT NULL
            )""",
            """CREATE TABLE embedding_spaces (
                id INTEGER PRIMARY KEY,
                model TEXT NOT NULL,
                dimensions INTEGER NOT NULL,
                table_name TEXT NOT NULL UNIQUE,
                created_at REAL NOT NULL,
                UNIQUE (model, dimensions)
            )""",
            """CREATE TABLE files (
                id INTEGER PRIMARY KEY,
                folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
                path TEXT NOT NULL UNIQUE,
                size INTEGER NOT NULL,
                mtime REAL NOT NULL,
                content_hash TEXT,
                status TEXT NOT NULL CHECK (status IN ('indexed', 'failed')),
                reason TEXT,
                space_id INTEGER REFERENCES embedding_spaces(id),
                indexed_at REAL NOT NULL
            )""",
            "CREATE INDEX files_folder ON files(folder_id)",
            """CREATE TABLE chunks (
                id INTEGER PRIMARY KEY,
                file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
                ordinal INTEGER NOT NULL,
                text TEXT NOT NULL,
                page INTEGER,
                start_char INTEGER NOT NULL,
                end_char INTEGER NOT NULL,
                n_tokens INTEGER NOT NULL,
                UNIQUE (file_id, ordinal)
            )""",
        ),
    )


def _migration_2(conn: Connection) -> None:
    # Keyword search over chunk text. External content (the text is stored once, in chunks),
    # kept in step by triggers. Porter stemming lets "renewing" find "renew"; exact phrases
    # are checked literally afterwards.
    _run(
        conn,
        (
            """CREATE VIRTUAL TABLE chunks_fts USING fts5(
                text, content = 'chunks', content_rowid = 'id',
                tokenize = 'porter unicode61 remove_diacritics 2'
            )""",
            """CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
                INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text);
            END""",
            """CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
                INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
            END""",
            """CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text ON chunks BEGIN
                INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
                INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text);
            END""",
            "INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild')",
            "CREATE INDEX files_mtime ON files(mtime)",
        ),
    )


def _migration_3(conn: Connection) -> None:
    # Renamed, moved and copied files are found by content hash and reuse stored vectors.
    conn.execute("CREATE INDEX files_content_hash ON files(content_hash)")


def _migration_4(conn: Connection) -> None:
    # Two-stage retrieval. Each space keeps its vectors in two plain rowid tables: binary
    # codes (1 bit a dimension) scanned with sqlite-vec's hamming distance for candidates,
    # and full-precision vectors read by id to rescore them. Measured on 100,000 chunks of
    # 384 dimensions: vec0 answered 200 lookups by id in 49 ms and a bit KNN for 400
    # candidates in 48 ms; the plain tables take 0.3 ms and 12 ms, and a filter is a WHERE.
    # The old vec0 float table is copied, then dropped (the file was backed up first).
    conn.execute("ALTER TABLE embedding_spaces ADD COLUMN precision TEXT NOT NULL DEFAULT 'float32'")
    spaces = conn.execute("SELECT id, table_name, dimensions FROM embedding_spaces").fetchall()
    for space_id, old_table, dimensions in spaces:
        if not _VECTOR_TABLE.match(str(old_table)):
            raise StorageError(f"Unexpected vector table name {old_table!r}")
        create_vector_tables(conn, int(space_id), int(dimensions))
        conn.execute(
            f"INSERT INTO vectors_{int(space_id)} (chunk_id, embedding) "
            f"SELECT chunk_id, embedding FROM {old_table}"
        )
        # Codes computed here: vec_quantize_binary takes only lengths divisible by 8.
        rows = conn.execute(f"SELECT chunk_id, embedding FROM {old_table}").fetchall()
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        conn.executemany(
            f"INSERT INTO codes_{int(space_id)} (chunk_id, code) VALUES (?, ?)",
            ((r[0], code.tobytes()) for r, code in zip(rows, binary_codes(matrix), strict=True)),
        )
        conn.execute(f"DROP TABLE {old_table}")
        conn.execute(
            "UPDATE embedding_spaces SET table_name = ? WHERE id = ?", (f"vectors_{int(space_id)}", space_id)
        )


def _migration_5(conn: Connection) -> None:
    # Each chunk's nearest heading, for results and previews; chunks stored before have none.
    conn.execute("ALTER TABLE chunks ADD COLUMN heading TEXT")


def _migration_6(conn: Connection) -> None:
    # Chunk ids are never reused. SQLite hands out MAX(id) + 1, so re-indexing the file
    # that holds the highest ids (the note just saved) gave its new chunks the old ids,
    # and a search lane's in-memory codes (codes.CodeCache, which appends ids above the
    # last it holds) kept the old codes under them. The next id is kept here instead.
    conn.execute("CREATE TABLE chunk_id_next (id INTEGER NOT NULL)")
    conn.execute("INSERT INTO chunk_id_next (id) SELECT COALESCE(MAX(id), 0) + 1 FROM chunks")


def create_vector_tables(conn: Connection, space_id: int, dimensions: int) -> None:
    """A space's full vectors and binary codes, as migration 4 laid them out."""
    # The lengths are checked by SQLite itself: a vector of the wrong size never gets in.
    sizes = f"{dimensions * 4}, {dimensions * 2}"  # float32 or float16
    conn.execute(
        f"CREATE TABLE vectors_{space_id} (chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) "
        f"ON DELETE CASCADE, embedding BLOB NOT NULL CHECK (length(embedding) IN ({sizes})))"
    )
    conn.execute(
        f"CREATE TABLE codes_{space_id} (chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) "
        f"ON DELETE CASCADE, code BLOB NOT NULL CHECK (length(code) = {(dimensions + 7) // 8}))"
    )


class Migration(NamedTuple):
    name: str
    apply: Callable[[Connection], None]


# Ordered, append-only: a migration only adds. The version is the position + 1.
MIGRATIONS: list[Migration] = [
    Migration("folders, files, chunks and embedding spaces", _migration_1),
    Migration("full-text index of chunks", _migration_2),
    Migration("files by content hash", _migration_3),
    Migration("two-stage vector storage: binary codes and full vectors per space", _migration_4),
    Migration("nearest heading of each chunk", _migration_5),
    Migration("chunk ids never reused", _migration_6),
]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: Connection) -> int:
    """The version of the index behind `conn` (0: empty), as its migrations recorded it."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def migrate(conn: Connection, path: Path, *, target: int = SCHEMA_VERSION) -> None:
    """Bring the index up to `target` (the current version unless a test builds an old
    one), after copying an existing older index aside. An index written by a newer
    localsearch is refused and left as it is."""
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        conn.close()
        raise StorageError(
            f"The index {path} was written by a newer localsearch (schema {current}, "
            f"this version knows {SCHEMA_VERSION}). Update localsearch to open it."
        )
    if current >= target:
        return
    if current > 0:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        backup = path.with_name(f"{path.name}.v{current}.bak")
        shutil.copy2(path, backup)
    for version in range(current + 1, target + 1):
        name, apply = MIGRATIONS[version - 1]
        conn.execute("BEGIN IMMEDIATE")
        try:
            apply(conn)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
