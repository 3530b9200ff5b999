"""The shared index's schema on PostgreSQL, as an ordered list of migrations recorded in
the database (`schema_migrations`), like migrations.py for SQLite. Append only. Clients
that open the index at once migrate one at a time (an advisory lock); a database written
by a newer localsearch is refused.

Row-level security decides who sees what: every folder has an owner role and may be
shared with one group role; files, chunks and vectors carry their folder's id, and a
policy lets a role read the rows of the folders it may see and write those it owns. The
tables are FORCEd under the policies, so their owner is held to them too (only a
superuser bypasses them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

from localsearch.errors import StorageError

Connection = Any  # a psycopg connection (typed in pg/index.py, which owns the driver)

# Who may read a folder's rows, and who may write them.
READ_FOLDER = "folder_id IN (SELECT id FROM folders)"
WRITE_FOLDER = "folder_id IN (SELECT id FROM folders WHERE owner_role = current_user)"
MIGRATION_LOCK = 0x6C736D67  # "lsmg": one migrating client at a time


def _protect(conn: Connection, table: str) -> None:
    """RLS on a table keyed by folder_id: read what the folder lets you see, write your own."""
    conn.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    conn.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    conn.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({READ_FOLDER})")
    conn.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({WRITE_FOLDER})")
    conn.execute(
        f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING "
        f"({WRITE_FOLDER}) WITH CHECK ({WRITE_FOLDER})"
    )
    conn.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({WRITE_FOLDER})")
    conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO PUBLIC")


def _migration_1(conn: Connection) -> None:
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except Exception as exc:  # the driver's error: no privilege, or pgvector not installed
        raise StorageError(
            f"The database has no pgvector extension and this role may not create it ({exc}). "
            "Ask its administrator to run CREATE EXTENSION vector in it."
        ) from exc
    statements = (
        # A folder lives on one machine (host); its owner role and, optionally, a group
        # role that may read it.
        """CREATE TABLE folders (
            id BIGSERIAL PRIMARY KEY,
            host TEXT NOT NULL,
            path TEXT NOT NULL,
            owner_role NAME NOT NULL DEFAULT current_user,
            reader_role NAME,
            added_at DOUBLE PRECISION NOT NULL,
            UNIQUE (host, path)
        )""",
        """CREATE TABLE embedding_spaces (
            id SERIAL PRIMARY KEY,
            model TEXT NOT NULL,
            dimensions INTEGER NOT NULL,
            precision TEXT NOT NULL DEFAULT 'float32',
            created_at DOUBLE PRECISION NOT NULL,
            UNIQUE (model, dimensions)
        )""",
        # A file's identity is (host, path): the same path on two laptops is two files.
        """CREATE TABLE files (
            id BIGSERIAL PRIMARY KEY,
            folder_id BIGINT NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            host TEXT NOT NULL,
            path TEXT NOT NULL,
            size BIGINT NOT NULL,
            mtime DOUBLE PRECISION NOT NULL,
            content_hash TEXT,
            status TEXT NOT NULL CHECK (status IN ('indexed', 'failed')),
            reason TEXT,
            space_id INTEGER REFERENCES embedding_spaces(id),
            indexed_at DOUBLE PRECISION NOT NULL,
            UNIQUE (host, path)
        )""",
        "CREATE INDEX files_folder ON files(folder_id)",
        "CREATE INDEX files_content_hash ON files(content_hash)",
        "CREATE INDEX files_mtime ON files(mtime)",
        # Chunk ids come from a sequence: never reused, as the search lanes expect.
        # `terms` holds the chunk's tokens as FTS5's porter unicode61 tokenizer cuts and
        # stems them (made by the client, pg/text.py), so both backends match the same
        # words; n_terms is its length in tokens, for BM25.
        """CREATE TABLE chunks (
            id BIGSERIAL PRIMARY KEY,
            file_id BIGINT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            folder_id BIGINT NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            text TEXT NOT NULL,
            page INTEGER,
            start_char INTEGER NOT NULL,
            end_char INTEGER NOT NULL,
            n_tokens INTEGER NOT NULL,
            heading TEXT,
            terms TSVECTOR NOT NULL,
            n_terms INTEGER NOT NULL,
            UNIQUE (file_id, ordinal)
        )""",
        "CREATE INDEX chunks_terms ON chunks USING gin (terms)",
        "CREATE INDEX chunks_folder ON chunks(folder_id)",
        "ALTER TABLE folders ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE folders FORCE ROW LEVEL SECURITY",
        "CREATE POLICY folders_read ON folders FOR SELECT USING (owner_role = current_user "
        "OR (reader_role IS NOT NULL AND pg_has_role(current_user, reader_role, 'MEMBER')))",
        "CREATE POLICY folders_insert ON folders FOR INSERT WITH CHECK (owner_role = current_user)",
        "CREATE POLICY folders_update ON folders FOR UPDATE USING (owner_role = current_user) "
        "WITH CHECK (owner_role = current_user)",
        "CREATE POLICY folders_delete ON folders FOR DELETE USING (owner_role = current_user)",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON folders TO PUBLIC",
        "GRANT SELECT, INSERT ON embedding_spaces TO PUBLIC",
        "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO PUBLIC",
        "GRANT SELECT ON schema_migrations TO PUBLIC",
    )
    for statement in statements:
        conn.execute(statement)
    _protect(conn, "files")
    _protect(conn, "chunks")


# What the words lane's BM25 needs to know, per folder (so row-level security applies to
# it too): how many chunks hold each lexeme, and (lexeme '', which no token can be) how
# many chunks and tokens the folder has. Kept by statement-level triggers on chunks, in the
# writer's own transaction. Counting through the GIN index instead cost a heap visit per
# matching chunk: tens of milliseconds a common word at 100k passages.
_TERMS_OF = """
    SELECT folder_id, '' AS lexeme, count(*) AS chunks, sum(n_terms) AS tokens FROM {rows} GROUP BY folder_id
    UNION ALL
    SELECT r.folder_id, u.lexeme, count(*), 0 FROM {rows} r, unnest(r.terms) u GROUP BY r.folder_id, u.lexeme
"""


def _migration_2(conn: Connection) -> None:
    statements = (
        """CREATE TABLE term_stats (
            folder_id BIGINT NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            lexeme TEXT NOT NULL,
            chunks BIGINT NOT NULL,
            tokens BIGINT NOT NULL,
            PRIMARY KEY (lexeme, folder_id)
        )""",
        "CREATE INDEX term_stats_folder ON term_stats(folder_id)",
        f"""CREATE FUNCTION localsearch_terms_added() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO term_stats (folder_id, lexeme, chunks, tokens)
            SELECT * FROM ({_TERMS_OF.format(rows="added")}) counted ORDER BY lexeme, folder_id
            ON CONFLICT (lexeme, folder_id) DO UPDATE
            SET chunks = term_stats.chunks + excluded.chunks, tokens = term_stats.tokens + excluded.tokens;
            RETURN NULL;
        END $$""",
        f"""CREATE FUNCTION localsearch_terms_removed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE term_stats t SET chunks = t.chunks - r.chunks, tokens = t.tokens - r.tokens
            FROM ({_TERMS_OF.format(rows="removed")}) r
            WHERE t.folder_id = r.folder_id AND t.lexeme = r.lexeme;
            RETURN NULL;
        END $$""",
        "CREATE TRIGGER chunks_terms_added AFTER INSERT ON chunks REFERENCING NEW TABLE AS added "
        "FOR EACH STATEMENT EXECUTE FUNCTION localsearch_terms_added()",
        "CREATE TRIGGER chunks_terms_removed AFTER DELETE ON chunks REFERENCING OLD TABLE AS removed "
        "FOR EACH STATEMENT EXECUTE FUNCTION localsearch_terms_removed()",
        f"INSERT INTO term_stats (folder_id, lexeme, chunks, tokens) {_TERMS_OF.format(rows='chunks')}",
    )
    for statement in statements:
        conn.execute(statement)
    _protect(conn, "term_stats")


def create_vector_table(conn: Connection, space_id: int, dimensions: int) -> None:
    """A space's vectors: pgvector's `vector` (pgvector 0.6 has no half precision) with an
    HNSW index on inner product (the vectors are unit length, so it is the cosine)."""
    table = f"vectors_{int(space_id)}"
    conn.execute(
        f"CREATE TABLE {table} (chunk_id BIGINT PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE, "
        f"folder_id BIGINT NOT NULL REFERENCES folders(id) ON DELETE CASCADE, "
        f"embedding vector({int(dimensions)}) NOT NULL)"
    )
    conn.execute(f"CREATE INDEX {table}_folder ON {table}(folder_id)")
    conn.execute(f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding vector_ip_ops)")
    _protect(conn, table)


class Migration(NamedTuple):
    name: str
    apply: Callable[[Connection], None]


MIGRATIONS: list[Migration] = [
    Migration("folders per machine, files, chunks with terms, spaces, row-level security", _migration_1),
    Migration("word statistics per folder for BM25, kept by triggers", _migration_2),
]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: Connection) -> int:
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not row[0]:
        return 0
    found = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(found[0] or 0)


def migrate(conn: Connection, where: str, *, target: int = SCHEMA_VERSION) -> None:
    """Bring the database up to `target`; refuse one written by a newer localsearch."""
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise StorageError(
            f"The shared index {where} was written by a newer localsearch (schema {current}, "
            f"this version knows {SCHEMA_VERSION}). Update localsearch to open it."
        )
    if current >= target:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at DOUBLE PRECISION NOT NULL)"
        )
        current = schema_version(conn)  # another client may have migrated meanwhile
        if current > SCHEMA_VERSION:
            raise StorageError(
                f"The shared index {where} was written by a newer localsearch (schema {current})."
            )
        for version in range(current + 1, target + 1):
            name, apply = MIGRATIONS[version - 1]
            with conn.transaction():  # a savepoint per migration
                apply(conn)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                    (version, name, time.time()),
                )
