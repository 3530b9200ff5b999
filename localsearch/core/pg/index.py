"""PostgresIndex: the storage protocol (store_protocol.IndexStore) on PostgreSQL with
pgvector, for an index several machines write and search at once.

- A file is (host, path): each client writes as the machine named in its settings.
- Vectors live in pgvector columns with an HNSW index (inner product on unit vectors);
  the meaning lane asks it directly (nearest_chunks) and falls back to an exact scan when
  filters or row-level security leave too few of its candidates.
- Words: a GIN-indexed tsvector of the tokens FTS5 would make (pg/text.py), ranked by
  the same BM25 as FTS5 (k1 1.2, b 0.75, FTS5's IDF), computed in SQL from the tsvector,
  so the searcher's fusion reads the same scale on both backends. Counts behind the IDF
  are taken over the rows the role may see: no word of a private folder leaks through them.
- Row-level security (pg/schema.py) decides which folders a role sees.
"""

from __future__ import annotations

import contextlib
import math
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Dumper, Loader
from psycopg.pq import Format
from psycopg.types import TypeInfo

from localsearch.core.codes import binary_codes
from localsearch.core.pg import schema
from localsearch.core.pg.text import tokens, translate, tsvector_literal
from localsearch.core.pg.url import checked, default_host, without_password
from localsearch.core.storage import (
    NO_FILTERS,
    PRECISIONS,
    ChunkHit,
    ChunkRecord,
    FileState,
    Filters,
    Space,
    hit_from_row,
)
from localsearch.errors import DiskFullError, StorageError

K1, B = 1.2, 0.75  # FTS5's BM25 constants
EF_SEARCH_MAX = 1000  # pgvector 0.6 caps hnsw.ef_search here


class _VectorDumper(Dumper):
    """NumPy rows to pgvector's binary form: dimensions, a spare word, big-endian float32s."""

    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        values = np.asarray(obj, dtype=">f4").ravel()
        return struct.pack(">HH", len(values), 0) + values.tobytes()


class _VectorBinaryLoader(Loader):
    format = Format.BINARY

    def load(self, data: Any) -> np.ndarray:
        return np.frombuffer(bytes(data)[4:], dtype=">f4").astype(np.float32)


class _VectorTextLoader(Loader):
    def load(self, data: Any) -> np.ndarray:
        return np.array(bytes(data)[1:-1].decode("ascii").split(","), dtype=np.float32)


def _filter_sql(filters: Filters) -> tuple[str, list[object]]:
    """Filters as a condition on `f` (files) and `c` (chunks), PostgreSQL's way."""
    clauses: list[str] = []
    params: list[object] = []
    if filters.folders:
        parts = []
        for folder in filters.folders:
            prefix = folder.rstrip("/\\")
            parts.append("(f.path = %s OR starts_with(f.path, %s))")
            params += [prefix, prefix + "/"]
        clauses.append("(" + " OR ".join(parts) + ")")
    if filters.extensions:
        parts = []
        for ext in filters.extensions:
            parts.append("lower(right(f.path, %s)) = %s")
            params += [len(ext), ext.lower()]
        clauses.append("(" + " OR ".join(parts) + ")")
    if filters.after is not None:
        clauses.append("f.mtime >= %s")
        params.append(filters.after)
    if filters.before is not None:
        clauses.append("f.mtime < %s")
        params.append(filters.before)
    if filters.exclude_chunks:
        clauses.append("c.id <> ALL(%s)")
        params.append(list(filters.exclude_chunks))
    return (" AND ".join(clauses) or "TRUE"), params


_HIT_COLUMNS = "c.text, c.page, c.start_char, c.end_char, c.ordinal, c.file_id, f.mtime, c.heading, f.host"


class AdvisoryWriterLock:
    """One indexing run per machine on the shared index: a session advisory lock keyed by
    the host, released by the server when the holder's connection ends (even a crash)."""

    def __init__(self, index: PostgresIndex) -> None:
        self._index = index
        self._key = f"localsearch writer {index.host}"
        self._held = False

    def acquire(self, timeout: float = 0.0) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            row = self._index.conn.execute(
                "SELECT pg_try_advisory_lock(hashtext(%s))", (self._key,)
            ).fetchone()
            if row and row[0]:
                self._held = True
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def holder(self) -> str:
        row = self._index.conn.execute(
            "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.objid = hashtext(%s)::oid LIMIT 1",
            (self._key,),
        ).fetchone()
        return f"{row[0]} on the database server" if row else ""

    def release(self) -> None:
        if self._held:
            self._held = False
            with contextlib.suppress(psycopg.Error):
                self._index.conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (self._key,))


@contextlib.contextmanager
def _writes() -> Iterator[None]:
    """The server's "disk full" as the app's DiskFullError (the transaction was rolled back)."""
    try:
        yield
    except pg_errors.DiskFull as exc:
        raise DiskFullError(
            f"The database server's disk is full ({exc}). Nothing was half-written; "
            "indexing goes on when space is freed."
        ) from exc


def probe(url: str, timeout: int = 8) -> str:
    """What the server at `url` offers, in a sentence, without changing anything (the
    settings dialog's "Test connection"); a StorageError saying what is wrong otherwise."""
    url = checked(url)
    try:
        with psycopg.connect(
            url, autocommit=True, connect_timeout=timeout, application_name="localsearch"
        ) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            vector = conn.execute(
                "SELECT installed_version, default_version FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
            user = conn.execute("SELECT current_user").fetchone()
            schema_at = schema.schema_version(conn)
    except psycopg.Error as exc:
        raise StorageError(f"Cannot reach {without_password(url)}: {str(exc).strip()}") from exc
    if vector is None:
        raise StorageError(
            f"Connected as {user[0] if user else '?'}, but this PostgreSQL server has no pgvector "
            "extension installed."
        )
    if schema_at > schema.SCHEMA_VERSION:
        raise StorageError("This index was written by a newer localsearch; update localsearch to use it.")
    state = "holds a localsearch index" if schema_at else "is empty: localsearch will set it up on first use"
    return (
        f"Connected as {user[0] if user else '?'} to PostgreSQL {version[0] if version else '?'} with "
        f"pgvector {vector[0] or vector[1]}; the database {state}."
    )


class PostgresIndex:
    """The shared index behind one connection (one per thread), writing as `host`."""

    # Chunks the HNSW graph hands over per wanted file (and hnsw.ef_search with them): the
    # meaning lane's recall against time. At 100k synthetic passages (bench/pg_scale.py,
    # part "ann", results/pg_scale_100k.json), recall@10 of the files against an exact
    # scan was 0.954 at 8 (ef_search 240), 0.977 at 16 and 0.989 at 33, in 22, 45 and 87 ms.
    candidates_per_file = 16

    def __init__(self, conn: psycopg.Connection[Any], url: str, host: str) -> None:
        self.conn = conn
        self.url = url
        self.host = host
        self.path: Path | None = None  # no file: a second lane opens its own connection
        self.recovered: str | None = None
        self._version: int | None = None
        self._memo: dict[object, Any] = {}  # counts for BM25, valid for one data version
        self._register_vector_type()

    @classmethod
    def open(cls, url: str, *, host: str | None = None, migrate: bool = True) -> PostgresIndex:
        url = checked(url)
        shown = without_password(url)
        try:
            conn = psycopg.connect(url, autocommit=True, application_name="localsearch", connect_timeout=15)
        except psycopg.Error as exc:
            raise StorageError(f"Cannot reach the shared index {shown}: {str(exc).strip()}") from exc
        try:
            if migrate:
                schema.migrate(conn, shown)
            elif schema.schema_version(conn) > schema.SCHEMA_VERSION:
                schema.migrate(conn, shown)  # refuses it
        except BaseException:
            conn.close()
            raise
        return cls(conn, url, host or default_host())

    def _register_vector_type(self) -> None:
        info = TypeInfo.fetch(self.conn, "vector")
        if info is None:
            raise StorageError(
                "The database has no pgvector type; ask its administrator to CREATE EXTENSION vector."
            )
        dumper = type("VectorDumper", (_VectorDumper,), {"oid": info.oid})
        self.conn.adapters.register_dumper(np.ndarray, dumper)
        self.conn.adapters.register_loader(info.oid, _VectorTextLoader)
        self.conn.adapters.register_loader(info.oid, _VectorBinaryLoader)

    def reopen(self) -> PostgresIndex:
        """Another connection to the same index, for another thread."""
        return PostgresIndex.open(self.url, host=self.host, migrate=False)

    def close(self) -> None:
        self.conn.close()

    def writer_lock(self) -> AdvisoryWriterLock:
        return AdvisoryWriterLock(self)

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        return self.conn.transaction()

    @property
    def where(self) -> str:
        return without_password(self.url)

    # -- folders -------------------------------------------------------------
    def add_folder(self, path: str) -> int:
        with _writes(), self.conn.transaction():
            self.conn.execute(
                "INSERT INTO folders (host, path, added_at) VALUES (%s, %s, %s) ON "
                "CONFLICT (host, path) DO NOTHING",
                (self.host, path, time.time()),
            )
            row = self.conn.execute(
                "SELECT id FROM folders WHERE host = %s AND path = %s", (self.host, path)
            ).fetchone()
        if row is None:
            raise StorageError(f"The folder {path} on {self.host} belongs to another database role.")
        return int(row[0])

    def folders(self) -> list[tuple[int, str]]:
        """This machine's folders (the indexer walks them)."""
        rows = self.conn.execute("SELECT id, path FROM folders WHERE host = %s ORDER BY path", (self.host,))
        return [(int(r[0]), str(r[1])) for r in rows]

    def all_folders(self) -> list[dict[str, object]]:
        """Every folder this role may see, on every machine, with its owner and readers."""
        rows = self.conn.execute(
            "SELECT host, path, owner_role, reader_role FROM folders ORDER BY host, path"
        ).fetchall()
        return [{"host": h, "path": p, "owner": o, "readers": r} for h, p, o, r in rows]

    def share_folder(self, path: str, reader_role: str | None) -> bool:
        """Let members of `reader_role` search a folder this role owns (None: private again)."""
        if reader_role is not None:
            exists = self.conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (reader_role,)).fetchone()
            if exists is None:
                raise StorageError(f"There is no database role {reader_role!r} to share the folder with.")
        with _writes(), self.conn.transaction():
            cur = self.conn.execute(
                "UPDATE folders SET reader_role = %s WHERE host = %s AND path = %s "
                "AND owner_role = current_user",
                (reader_role, self.host, path),
            )
        return bool(cur.rowcount)

    def remove_folder(self, path: str) -> bool:
        with _writes(), self.conn.transaction():
            cur = self.conn.execute("DELETE FROM folders WHERE host = %s AND path = %s", (self.host, path))
        return bool(cur.rowcount)

    # -- embedding spaces ----------------------------------------------------
    def ensure_space(self, model: str, dimensions: int, precision: str = "float32") -> Space:
        """The vector table of (model, dimensions), created on first use. pgvector 0.6 has no
        half-precision type, so vectors are kept as float32 whatever `precision` says."""
        if precision not in PRECISIONS:
            raise StorageError(f"Unknown vector precision {precision!r}; choose {', '.join(PRECISIONS)}")
        found = self._space_row(model, dimensions)
        if found is None:
            with _writes(), self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('localsearch spaces'))")
                found = self._space_row(model, dimensions)
                if found is None:
                    row = self.conn.execute(
                        "INSERT INTO embedding_spaces (model, dimensions, precision, created_at) "
                        "VALUES (%s, %s, 'float32', %s) RETURNING id",
                        (model, dimensions, time.time()),
                    ).fetchone()
                    assert row is not None
                    schema.create_vector_table(self.conn, int(row[0]), dimensions)
                    found = int(row[0])
        return Space(found, model, dimensions, f"vectors_{found}", "float32")

    def _space_row(self, model: str, dimensions: int) -> int | None:
        row = self.conn.execute(
            "SELECT id FROM embedding_spaces WHERE model = %s AND dimensions = %s", (model, dimensions)
        ).fetchone()
        return int(row[0]) if row else None

    def find_space(self, model: str, dimensions: int = 0) -> Space | None:
        rows = self.conn.execute(
            "SELECT id, model, dimensions FROM embedding_spaces WHERE model = %s "
            "ORDER BY dimensions DESC, id DESC",
            (model,),
        ).fetchall()
        if not rows:
            return None
        chosen = rows[0]
        if 0 < dimensions < int(rows[0][2]):
            chosen = next((r for r in rows if int(r[2]) == dimensions), None)
            if chosen is None:
                return None
        return Space(int(chosen[0]), str(chosen[1]), int(chosen[2]), f"vectors_{int(chosen[0])}", "float32")

    # -- files ---------------------------------------------------------------
    _STATE = "id, size, mtime, content_hash, status, reason, space_id"

    def file_state(self, path: str) -> FileState | None:
        row = self.conn.execute(
            f"SELECT {self._STATE} FROM files WHERE host = %s AND path = %s", (self.host, path)
        ).fetchone()
        return FileState(*row) if row else None

    def file_states(self, folder_id: int) -> dict[str, FileState]:
        rows = self.conn.execute(f"SELECT path, {self._STATE} FROM files WHERE folder_id = %s", (folder_id,))
        return {str(r[0]): FileState(*r[1:]) for r in rows}

    def files_under(self, path: str) -> list[str]:
        prefix = path.rstrip("/\\") + "/"
        rows = self.conn.execute(
            "SELECT path FROM files WHERE host = %s AND (path = %s OR starts_with(path, %s))",
            (self.host, path, prefix),
        )
        return [str(r[0]) for r in rows]

    def _upsert_file(
        self,
        folder_id: int,
        path: str,
        size: int,
        mtime: float,
        content_hash: str | None,
        status: str,
        reason: str | None,
        space_id: int | None,
    ) -> int:
        row = self.conn.execute(
            "INSERT INTO files (folder_id, host, path, size, mtime, content_hash, status, reason, space_id, "
            "indexed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (host, path) DO UPDATE SET folder_id = excluded.folder_id, size = excluded.size, "
            "mtime = excluded.mtime, content_hash = excluded.content_hash, status = excluded.status, "
            "reason = excluded.reason, space_id = excluded.space_id, indexed_at = excluded.indexed_at "
            "RETURNING id",
            (folder_id, self.host, path, size, mtime, content_hash, status, reason, space_id, time.time()),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def _insert_chunks(
        self,
        space: Space,
        file_id: int,
        folder_id: int,
        rows: Sequence[tuple[Any, ...]],
        vectors: Sequence[Any],
    ) -> None:
        """Chunks (ordinal, text, page, start, end, n_tokens, heading) with their vectors."""
        if not rows:
            return
        ids = [
            int(r[0])
            for r in self.conn.execute(
                "SELECT nextval('chunks_id_seq') FROM generate_series(1, %s)", (len(rows),)
            ).fetchall()
        ]
        with self.conn.cursor() as cur:
            words = [tokens(str(row[1])) for row in rows]
            columns = list(zip(*rows, strict=True))
            # One statement for the file's chunks: the word statistics' trigger runs once.
            cur.execute(
                "INSERT INTO chunks (id, file_id, folder_id, ordinal, text, page, start_char, end_char, "
                "n_tokens, heading, terms, n_terms) SELECT id, %s, %s, ordinal, text, page, start_char, "
                "end_char, n_tokens, heading, terms::tsvector, n_terms FROM unnest(%s::bigint[], %s::int[], "
                "%s::text[], %s::int[], %s::int[], %s::int[], %s::int[], %s::text[], %s::text[], %s::int[]) "
                "AS r(id, ordinal, text, page, start_char, end_char, n_tokens, heading, terms, n_terms)",
                (
                    file_id,
                    folder_id,
                    ids,
                    *(list(c) for c in columns),
                    [tsvector_literal(w) for w in words],
                    [len(w) for w in words],
                ),
            )
            cur.executemany(
                f"INSERT INTO {space.table_name} (chunk_id, folder_id, embedding) VALUES (%s, %s, %s)",
                [(chunk_id, folder_id, vector) for chunk_id, vector in zip(ids, vectors, strict=True)],
            )

    def replace_file(
        self,
        *,
        folder_id: int,
        path: str,
        size: int,
        mtime: float,
        content_hash: str,
        space: Space,
        chunks: Sequence[ChunkRecord],
        vectors: np.ndarray,
    ) -> None:
        """A file's chunks and vectors replaced in one transaction: readers see old or new."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        matrix = np.asarray(vectors, dtype=np.float32)
        with _writes(), self.conn.transaction():
            file_id = self._upsert_file(folder_id, path, size, mtime, content_hash, "indexed", None, space.id)
            self.conn.execute("DELETE FROM chunks WHERE file_id = %s", (file_id,))
            rows = [
                (c.ordinal, c.text, c.page, c.start_char, c.end_char, c.n_tokens, c.heading) for c in chunks
            ]
            self._insert_chunks(space, file_id, folder_id, rows, list(matrix))

    def indexed_hashes(self, space: Space) -> set[str]:
        rows = self.conn.execute(
            "SELECT DISTINCT content_hash FROM files WHERE host = %s AND status "
            "= 'indexed' AND space_id = %s "
            "AND content_hash IS NOT NULL",
            (self.host, space.id),
        )
        return {str(r[0]) for r in rows}

    def indexed_contents(self, space: Space) -> list[tuple[str, str]]:
        rows = self.conn.execute(
            "SELECT content_hash, path FROM files WHERE host = %s AND status = 'indexed' AND space_id = %s "
            "AND content_hash IS NOT NULL",
            (self.host, space.id),
        )
        return [(str(h), str(p)) for h, p in rows]

    def copy_indexed(
        self,
        *,
        folder_id: int,
        path: str,
        size: int,
        mtime: float,
        content_hash: str,
        space: Space,
        accept: Callable[[str], bool] = lambda source_path: True,
    ) -> int | None:
        """Index `path` with the chunks and vectors of a file of this machine with the same
        content (a rename, move or copy) that `accept`s, without embedding; one transaction."""
        with _writes(), self.conn.transaction():
            rows = self.conn.execute(
                "SELECT id, path FROM files WHERE host = %s AND content_hash = %s AND status = 'indexed' "
                "AND space_id = %s AND path <> %s AND EXISTS (SELECT 1 FROM chunks WHERE file_id = files.id)",
                (self.host, content_hash, space.id, path),
            ).fetchall()
            source = next((int(i) for i, p in rows if accept(str(p))), None)
            if source is None:
                return None
            with self.conn.cursor(binary=True) as cur:
                chunks = cur.execute(
                    "SELECT c.ordinal, c.text, c.page, c.start_char, c.end_char, "
                    "c.n_tokens, c.heading, v.embedding "
                    f"FROM chunks c JOIN {space.table_name} v ON v.chunk_id = c.id WHERE c.file_id = %s "
                    "ORDER BY c.ordinal",
                    (source,),
                ).fetchall()
            count = self.conn.execute("SELECT COUNT(*) FROM chunks WHERE file_id = %s", (source,)).fetchone()
            if count is None or len(chunks) != int(count[0]):
                return None  # a chunk without its vector: embed afresh rather than copy a gap
            file_id = self._upsert_file(folder_id, path, size, mtime, content_hash, "indexed", None, space.id)
            self.conn.execute("DELETE FROM chunks WHERE file_id = %s", (file_id,))
            self._insert_chunks(
                space, file_id, folder_id, [tuple(r[:7]) for r in chunks], [r[7] for r in chunks]
            )
        return len(chunks)

    def record_failure(
        self, *, folder_id: int, path: str, size: int, mtime: float, content_hash: str | None, reason: str
    ) -> None:
        with _writes(), self.conn.transaction():
            file_id = self._upsert_file(folder_id, path, size, mtime, content_hash, "failed", reason, None)
            self.conn.execute("DELETE FROM chunks WHERE file_id = %s", (file_id,))

    def touch_file(self, file_id: int, size: int, mtime: float) -> None:
        with _writes(), self.conn.transaction():
            self.conn.execute("UPDATE files SET size = %s, mtime = %s WHERE id = %s", (size, mtime, file_id))

    def delete_file(self, path: str) -> None:
        with _writes(), self.conn.transaction():
            self.conn.execute("DELETE FROM files WHERE host = %s AND path = %s", (self.host, path))

    # -- the meaning lane ----------------------------------------------------
    def nearest_chunks(
        self, space: Space, vector: np.ndarray, want_files: int, filters: Filters
    ) -> list[ChunkHit]:
        """Nearest chunks by cosine (HNSW), best first, until they cover `want_files` files.
        Filters and row-level security are applied after the graph search, so when they
        leave too few, the candidates widen and, past the graph's limit, the scan is exact."""
        query = np.asarray(vector, dtype=np.float32)
        where, params = _filter_sql(filters)
        n = max(want_files * self.candidates_per_file, 64)
        while True:
            exact = n > EF_SEARCH_MAX
            # "+ 0" keeps the planner off the HNSW index: an exact scan in cosine order.
            order = "(v.embedding <#> %s) + 0" if exact else "v.embedding <#> %s"
            with self.conn.transaction(), self.conn.cursor() as cur:
                if not exact:
                    cur.execute(f"SET LOCAL hnsw.ef_search = {max(40, n)}")
                rows = cur.execute(
                    f"SELECT c.id, 1 + (v.embedding <#> %s), f.path, {_HIT_COLUMNS} "
                    f"FROM {space.table_name} v "
                    "JOIN chunks c ON c.id = v.chunk_id JOIN files f ON f.id = c.file_id "
                    f"WHERE {where} ORDER BY {order} LIMIT %s",
                    (query, *params, query, n),
                ).fetchall()
            hits = [hit_from_row(r[0], r[1], r[2], r[3:]) for r in rows]
            if exact or len({h.path for h in hits}) >= want_files:
                return hits
            n *= 4

    def coarse_candidates(
        self, space: Space, code: bytes, n: int, filters: Filters = NO_FILTERS
    ) -> tuple[np.ndarray, np.ndarray]:
        """The SQLite lane's first stage, for completeness: the searcher asks nearest_chunks
        here. Binary codes are made from the stored vectors and ranked by hamming distance."""
        where, params = _filter_sql(filters)
        with self.conn.cursor(binary=True) as cur:
            rows = cur.execute(
                f"SELECT v.chunk_id, v.embedding FROM {space.table_name} v JOIN "
                "chunks c ON c.id = v.chunk_id "
                f"JOIN files f ON f.id = c.file_id WHERE {where}",
                params,
            ).fetchall()
        if not rows or n <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros((0, space.code_bytes), dtype=np.uint8)
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        codes = binary_codes(np.stack([r[1] for r in rows]))
        query = np.unpackbits(np.frombuffer(code, dtype=np.uint8), bitorder="little")
        distance = (np.unpackbits(codes, axis=1, bitorder="little") != query).sum(axis=1)
        top = np.argsort(distance, kind="stable")[:n]
        return ids[top], codes[top]

    def chunk_vectors(self, space: Space, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        ids, matrix = self.chunk_vector_matrix(space, chunk_ids)
        return {int(c): matrix[i] for i, c in enumerate(ids)}

    def chunk_vector_matrix(self, space: Space, chunk_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        if not len(chunk_ids):
            return np.zeros(0, dtype=np.int64), np.zeros((0, space.dimensions), dtype=np.float32)
        with self.conn.cursor(binary=True) as cur:
            rows = cur.execute(
                f"SELECT chunk_id, embedding FROM {space.table_name} WHERE chunk_id = ANY(%s)",
                ([int(c) for c in chunk_ids],),
            ).fetchall()
        return self._matrix(space, rows)

    @staticmethod
    def _matrix(space: Space, rows: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        if not rows:
            return ids, np.zeros((0, space.dimensions), dtype=np.float32)
        return ids, np.stack([r[1] for r in rows]).astype(np.float32, copy=False)

    def all_vectors(self, space: Space) -> tuple[np.ndarray, np.ndarray]:
        with self.conn.cursor(binary=True) as cur:
            rows = cur.execute(
                f"SELECT chunk_id, embedding FROM {space.table_name} ORDER BY chunk_id"
            ).fetchall()
        return self._matrix(space, rows)

    def all_codes(self, space: Space, *, after: int = 0) -> tuple[np.ndarray, np.ndarray]:
        with self.conn.cursor(binary=True) as cur:
            rows = cur.execute(
                f"SELECT chunk_id, embedding FROM {space.table_name} WHERE chunk_id > %s ORDER BY chunk_id",
                (after,),
            ).fetchall()
        ids, matrix = self._matrix(space, rows)
        return ids, binary_codes(matrix) if len(ids) else np.zeros((0, space.code_bytes), dtype=np.uint8)

    def code_count(self, space: Space) -> int:
        row = self.conn.execute(f"SELECT COUNT(*) FROM {space.table_name}").fetchone()
        return int(row[0]) if row else 0

    # -- the words lane ------------------------------------------------------
    def _fresh(self) -> None:
        """Forget the counts when anyone wrote since they were read (once per public call)."""
        version = self.data_version()
        if version != self._version:
            self._memo.clear()
            self._version = version

    def _memoized(self, key: object, compute: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def _lexeme_counts(self, lexemes: Sequence[str]) -> dict[str, int]:
        """How many visible chunks hold each lexeme, from the per-folder word statistics."""
        total = self._totals()[0]
        missing = sorted({t for t in lexemes if ("df", (t,)) not in self._memo})
        if missing:
            found = dict(
                self.conn.execute(
                    "SELECT lexeme, SUM(chunks) FROM term_stats WHERE lexeme = ANY(%s) GROUP BY lexeme",
                    (missing,),
                ).fetchall()
            )
            # Writers commit between statements: a count is never more than the total it is
            # read against (BM25's IDF takes the log of their difference).
            for t in missing:
                self._memo[("df", (t,))] = min(total, int(found.get(t) or 0))
        return {t: int(self._memo[("df", (t,))]) for t in lexemes}

    def _phrase_count(self, phrase: Sequence[str]) -> int:
        if len(phrase) == 1:
            return self._lexeme_counts(phrase)[phrase[0]]
        query = " <-> ".join(f"'{t}'" for t in phrase)

        def count() -> int:  # a phrase's chunks are counted through the GIN index
            row = self.conn.execute(
                "SELECT COUNT(*) FROM chunks WHERE terms @@ %s::tsquery", (query,)
            ).fetchone()
            return min(self._totals()[0], int(row[0]) if row else 0)

        return int(self._memoized(("df", tuple(phrase)), count))

    def _totals(self) -> tuple[int, float]:
        """Visible chunks and their mean length in tokens (BM25's N and avgdl)."""

        def totals() -> tuple[int, float]:
            row = self.conn.execute(
                "SELECT COALESCE(SUM(chunks), 0), COALESCE(SUM(tokens), 0) FROM term_stats WHERE lexeme = ''"
            ).fetchone()
            chunks, words = (int(row[0]), int(row[1])) if row else (0, 0)
            return chunks, (words / chunks if chunks else 0.0)

        found: tuple[int, float] = self._memoized("totals", totals)
        return found

    def chunk_total(self) -> int:
        self._fresh()
        return self._totals()[0]

    def index_tokens(self, texts: Sequence[str]) -> list[list[str]]:
        return [tokens(text) for text in texts]

    def term_counts(self, terms: Sequence[str]) -> dict[str, int]:
        """How many visible chunks hold each term (a term of several tokens: its rarest)."""
        self._fresh()
        split = self.index_tokens(terms)
        counts = self._lexeme_counts([w for words in split for w in words])
        return {
            term: min(counts[w] for w in words) for term, words in zip(terms, split, strict=True) if words
        }

    def terms_held(self, terms: Sequence[str], texts: dict[int, str]) -> dict[int, set[str]]:
        """Which terms each text holds, every token of a term somewhere in it (as the SQLite
        index answers it: no positions)."""
        wanted = {t: set(w) for t, w in zip(terms, self.index_tokens(terms), strict=True) if w}
        held: dict[int, set[str]] = {}
        for chunk_id, text in texts.items():
            present = set(tokens(text))
            found = {t for t, need in wanted.items() if need <= present}
            if found:
                held[chunk_id] = found
        return held

    def keyword_chunks(self, match: str, k: int, filters: Filters = NO_FILTERS) -> list[ChunkHit]:
        """Chunks matching an FTS5 expression (translated to a tsquery), best BM25 first;
        distance is FTS5's bm25() (negative, lower is better) over the visible chunks."""
        tsquery, phrases = translate(match)
        if not phrases:
            return []
        self._fresh()
        total, mean_length = self._totals()
        weights: dict[str, float] = {}
        self._lexeme_counts([t for phrase in phrases if len(phrase) == 1 for t in phrase])  # one query
        for phrase in phrases:  # each phrase of the expression counts, repeats too, as in FTS5
            n = self._phrase_count(phrase)
            idf = math.log((total - n + 0.5) / (n + 0.5)) if total else 0.0
            idf = idf if idf > 0 else 1e-6
            for token in phrase:  # a phrase's weight shared by its tokens
                weights[token] = weights.get(token, 0.0) + idf / len(phrase)
        lexemes = sorted(weights)
        where, params = _filter_sql(filters)
        norm = K1 * B / (mean_length or 1.0)
        join = "JOIN files f ON f.id = c.file_id" if filters.active else ""
        # Each matching chunk's tsvector cut down to the query's lexemes (weight A marks
        # them, ts_filter keeps them) before its term frequencies are read: five times
        # quicker than unnesting every lexeme of every match (bench/pg_scale.py).
        rows = self.conn.execute(
            "WITH q AS (SELECT * FROM unnest(%s::text[], %s::float8[]) AS q(lexeme, weight)), "
            "m AS (SELECT c.id, c.n_terms, ts_filter(setweight(c.terms, 'A', %s::text[]), '{a}') AS terms "
            f"FROM chunks c {join} WHERE c.terms @@ %s::tsquery AND {where}), "
            "s AS (SELECT m.id, -SUM(q.weight * (cardinality(u.positions) * %s) "
            "/ (cardinality(u.positions) + %s + %s * m.n_terms)) AS rank "
            "FROM m CROSS JOIN LATERAL unnest(m.terms) u JOIN q ON q.lexeme = u.lexeme "
            "GROUP BY m.id ORDER BY rank, m.id LIMIT %s) "
            f"SELECT c.id, s.rank, f.path, {_HIT_COLUMNS} FROM s JOIN chunks c ON c.id = s.id "
            "JOIN files f ON f.id = c.file_id ORDER BY s.rank, c.id",
            (
                lexemes,
                [weights[t] for t in lexemes],
                lexemes,
                tsquery,
                *params,
                K1 + 1,
                K1 * (1 - B),
                norm,
                k,
            ),
        ).fetchall()
        return [hit_from_row(r[0], r[1], r[2], r[3:]) for r in rows]

    # -- rows of results -----------------------------------------------------
    def chunk_hits(
        self,
        chunk_ids: Sequence[int],
        filters: Filters = NO_FILTERS,
        *,
        distances: Sequence[float] | None = None,
    ) -> dict[int, ChunkHit]:
        if not chunk_ids:
            return {}
        where, params = _filter_sql(filters)
        distance = dict(zip(chunk_ids, distances, strict=True)) if distances is not None else {}
        rows = self.conn.execute(
            f"SELECT c.id, f.path, {_HIT_COLUMNS} FROM chunks c JOIN files f ON f.id = c.file_id "
            f"WHERE c.id = ANY(%s) AND {where}",
            ([int(c) for c in chunk_ids], *params),
        ).fetchall()
        return {int(r[0]): hit_from_row(r[0], distance.get(r[0], 0.0), r[1], r[2:]) for r in rows}

    def chunk_hit(self, chunk_id: int) -> ChunkHit | None:
        row = self.conn.execute(
            f"SELECT c.id, f.path, {_HIT_COLUMNS} FROM chunks c JOIN files f ON "
            "f.id = c.file_id WHERE c.id = %s",
            (chunk_id,),
        ).fetchone()
        return hit_from_row(row[0], 0.0, row[1], row[2:]) if row else None

    def file_chunk_ids(self, path: str) -> list[int]:
        """The chunks of the file at `path`: this machine's, else another machine's the role sees."""
        row = self.conn.execute(
            "SELECT id FROM files WHERE path = %s ORDER BY (host = %s) DESC, host LIMIT 1", (path, self.host)
        ).fetchone()
        if row is None:
            return []
        rows = self.conn.execute("SELECT id FROM chunks WHERE file_id = %s ORDER BY ordinal", (row[0],))
        return [int(r[0]) for r in rows]

    def file_chunks(self, file_id: int, space: Space) -> tuple[list[ChunkRecord], np.ndarray]:
        """A file's chunks in order with their vectors (see storage.Index.file_chunks)."""
        with self.conn.cursor(binary=True) as cur:
            rows = cur.execute(
                "SELECT c.ordinal, c.text, c.page, c.start_char, c.end_char, c.n_tokens, c.heading, "
                f"v.embedding FROM chunks c JOIN {space.table_name} v ON v.chunk_id = c.id "
                "WHERE c.file_id = %s ORDER BY c.ordinal",
                (file_id,),
            ).fetchall()
        vectors = (
            np.stack([r[7] for r in rows]) if rows else np.zeros((0, space.dimensions), dtype=np.float32)
        )
        return [ChunkRecord(*r[:7]) for r in rows], vectors

    # -- status --------------------------------------------------------------
    def is_empty(self) -> bool:
        return self.conn.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None

    def counts(self) -> dict[str, int]:
        """What this role sees, on every machine."""
        one = self.conn.execute
        values = [
            one("SELECT COUNT(*) FROM folders").fetchone(),
            one("SELECT COUNT(*) FROM files WHERE status = 'indexed'").fetchone(),
            one("SELECT COUNT(*) FROM chunks").fetchone(),
        ]
        folders, files, chunks = (int(v[0]) if v else 0 for v in values)
        return {"folders": folders, "files": files, "chunks": chunks}

    def failures(self) -> list[tuple[str, str]]:
        """This machine's files that could not be indexed, with the reason."""
        rows = self.conn.execute(
            "SELECT path, reason FROM files WHERE host = %s AND status = 'failed' ORDER BY path", (self.host,)
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def storage_bytes(self) -> dict[str, int]:
        """Bytes on the server by table, indexes and TOAST included."""
        rows = self.conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r' "
            "AND (c.relname IN ('folders', 'files', 'chunks', 'embedding_spaces') "
            "OR c.relname ~ '^vectors_[0-9]+$')"
        ).fetchall()
        return {str(name): int(size) for name, size in rows}

    def data_version(self) -> int:
        """Changes whenever anyone writes to the server: the next transaction id."""
        row = self.conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint").fetchone()
        return int(row[0]) if row else 0
