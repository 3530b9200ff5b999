"""The index database: every SQL statement of localsearch lives here and in
migrations.py, which builds the schema.

SQLite (through sqlean, a sqlite3 build that can load extensions on every platform)
with sqlite-vec for vectors. WAL, foreign keys, a busy timeout, the schema migrated on
open (migrations.py), one transaction per file.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import sqlean as sqlite3
import sqlite_vec

from localsearch.core.codes import binary_codes
from localsearch.core.migrations import Connection, create_vector_tables
from localsearch.core.migrations import migrate as migrate_index
from localsearch.errors import DamagedIndexError, DiskFullError, StorageError

DatabaseError: type[Exception] = sqlite3.DatabaseError


def connect(path: Path | str, *, migrate: bool = True) -> Connection:
    """Open the index: load sqlite-vec, set WAL, foreign keys and a busy timeout, migrate."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=True, timeout=30)
        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
        conn.enable_load_extension(False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        # Reads through a memory map: rescoring reads a thousand or more vectors at random
        # per query, and without a system call each they took 2.2 ms instead of 3-4.5 ms
        # (1,000 of 100,000 chunks, warm). 2 GB is SQLite's usual ceiling for the map.
        conn.execute("PRAGMA mmap_size = 2147418112")
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"Cannot open the index {path}: {exc}") from exc
    if migrate:
        migrate_index(conn, path)
    return conn


@dataclass(frozen=True)
class ChunkRecord:
    ordinal: int
    text: str
    page: int | None
    start_char: int
    end_char: int
    n_tokens: int
    heading: str | None = None


@dataclass(frozen=True)
class FileState:
    id: int
    size: int
    mtime: float
    content_hash: str | None
    status: str
    reason: str | None
    space_id: int | None


PRECISIONS = ("float32", "float16")
_DTYPES = {"float32": np.float32, "float16": np.float16}


@dataclass(frozen=True)
class Space:
    """Vectors of one (model, dimensions): full vectors in `table_name` (vectors_<id>) at
    `precision`, and their binary codes in `codes_table` for the first search stage."""

    id: int
    model: str
    dimensions: int
    table_name: str
    precision: str = "float32"

    @property
    def codes_table(self) -> str:
        return f"codes_{self.id}"

    @property
    def code_bytes(self) -> int:
        return (self.dimensions + 7) // 8

    @property
    def bytes_per_vector(self) -> int:
        """Stored vector bytes per chunk: the full vector plus its binary code."""
        return self.dimensions * np.dtype(_DTYPES[self.precision]).itemsize + self.code_bytes

    def encode(self, matrix: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(matrix, dtype=_DTYPES[self.precision])

    def decode(self, blobs: Sequence[bytes]) -> np.ndarray:
        """Stored vectors as float32 rows."""
        if not blobs:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        raw = np.frombuffer(b"".join(blobs), dtype=_DTYPES[self.precision])
        return raw.reshape(len(blobs), self.dimensions).astype(np.float32, copy=False)


@dataclass(frozen=True)
class Filters:
    """Restrictions on which files a search may return."""

    folders: tuple[str, ...] = ()  # path prefixes
    extensions: tuple[str, ...] = ()  # lower-case, with the dot
    after: float | None = None  # mtime bounds, seconds since the epoch
    before: float | None = None
    exclude_chunks: tuple[int, ...] = ()

    def sql(self) -> tuple[str, list[object]]:
        """A condition on `f` (files) and `c` (chunks), with its parameters."""
        clauses: list[str] = []
        params: list[object] = []
        if self.folders:
            parts = []
            for folder in self.folders:
                prefix = folder.rstrip("/\\")
                parts.append("(f.path = ? OR substr(f.path, 1, ?) = ?)")
                params += [prefix, len(prefix) + 1, prefix + os.sep]
            clauses.append("(" + " OR ".join(parts) + ")")
        if self.extensions:
            parts = []
            for ext in self.extensions:
                parts.append("lower(substr(f.path, -?)) = ?")
                params += [len(ext), ext.lower()]
            clauses.append("(" + " OR ".join(parts) + ")")
        if self.after is not None:
            clauses.append("f.mtime >= ?")
            params.append(self.after)
        if self.before is not None:
            clauses.append("f.mtime < ?")
            params.append(self.before)
        if self.exclude_chunks:
            clauses.append(f"c.id NOT IN ({','.join('?' * len(self.exclude_chunks))})")
            params += list(self.exclude_chunks)
        return (" AND ".join(clauses) or "1"), params

    @property
    def active(self) -> bool:
        return bool(
            self.folders
            or self.extensions
            or self.after is not None
            or self.before is not None
            or self.exclude_chunks
        )


NO_FILTERS = Filters()


@dataclass(frozen=True)
class ChunkHit:
    chunk_id: int
    distance: float
    path: str
    text: str
    page: int | None
    start_char: int
    end_char: int
    ordinal: int
    file_id: int = 0
    mtime: float = 0.0
    heading: str | None = None
    host: str = ""  # the machine the file is on, in a shared index (pg/index.py); "" here


_HIT_COLUMNS = "c.text, c.page, c.start_char, c.end_char, c.ordinal, c.file_id, f.mtime, c.heading"


def hit_from_row(chunk_id: int, distance: float, path: str, row: Sequence[Any]) -> ChunkHit:
    """A hit from the columns of _HIT_COLUMNS (a shared index adds the host after them)."""
    return ChunkHit(
        int(chunk_id),
        float(distance),
        str(path),
        str(row[0]),
        row[1],
        int(row[2]),
        int(row[3]),
        int(row[4]),
        int(row[5]),
        float(row[6]),
        row[7],
        host=str(row[8]) if len(row) > 8 else "",
    )


_FTS_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # unicode61 splits words at "_" too
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_RUN_TAIL = re.compile(r"(?:[A-Za-z0-9]|[^\x00-\x7f])*")


@functools.lru_cache(maxsize=1024)
def _words_from(prefix: str) -> re.Pattern[str]:
    """Words of lower-cased text starting with `prefix`, with no ASCII letter or digit and
    no other character than ASCII on either side. The prefix leads the pattern, so the
    regular expression engine looks for it as a literal string."""
    escaped = re.escape(prefix)
    not_before = r"[^\x00-\x2f\x3a-\x60\x7b-\x7f]"  # a lower-case letter, a digit, not ASCII
    return re.compile(f"{escaped}(?<!{not_before}{escaped})[a-z0-9]*+(?![^\\x00-\\x7f])")


def _mixed_runs(text: str) -> set[str]:
    """The runs of characters other than ASCII, each with the ASCII letters and digits
    (and further such characters) it touches: what unicode61 may read as one token."""
    runs: set[str] = set()
    end = 0
    for match in _NON_ASCII.finditer(text):
        if match.start() < end:
            continue  # inside the run before
        start = match.start()
        while start > 0 and text[start - 1].isascii() and text[start - 1].isalnum():
            start -= 1
        tail = _RUN_TAIL.match(text, match.end())
        end = tail.end() if tail else match.end()
        runs.add(text[start:end])
    return runs


class WriterLock:
    """One indexing run per index across processes (the window's indexing child, the
    command line, a second window): a lock file beside the database, held while a run
    writes. The system releases it when its holder dies, even by SIGKILL."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self, timeout: float = 0.0) -> bool:
        """True once held; False if another process still holds it after `timeout` s."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                os.close(fd)
                return False
            time.sleep(0.1)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """The pid written by the holder, for messages ("" when unknown)."""
        try:
            return self.path.read_text().strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        with contextlib.suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def damage(path: Path) -> str | None:
    """What SQLite's quick check finds wrong with the database file, or None when it is
    sound (or does not exist yet)."""
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        try:
            rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)").fetchall()]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if rows == ["ok"] else "; ".join(rows)


def _checked_file(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".checked")


def _file_stamp(db_path: Path) -> str:
    """Size, modification time and inode of the database and its write-ahead log: any
    write by any program (SQLite, a sync tool, a truncation) changes it."""
    parts = []
    for suffix in ("", "-wal"):
        try:
            st = os.stat(str(db_path) + suffix)
        except FileNotFoundError:
            parts.append("-")
        else:
            parts.append(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
    return " ".join(parts)


def damage_since_checked(path: Path) -> str | None:
    """damage(), skipped when the file is exactly as it was when it last passed the check.
    The check reads the whole file (1.3 s at 100k passages: bench/quick_check.py), too slow
    for every one-shot search; a file nobody wrote since it was found sound needs no new one.
    (Bytes that rot without a write are caught by SQLite when a search reads them.)"""
    with contextlib.suppress(OSError):
        if _checked_file(path).read_text(encoding="ascii") == _file_stamp(path):
            return None
    return damage(path)


def _record_sound(path: Path, stamp: str) -> None:
    """Remember that the file, as it is now (stamp taken before its check), passed the check."""
    with contextlib.suppress(OSError):
        marker = _checked_file(path)
        partial = marker.with_name(marker.name + ".tmp")
        partial.write_text(stamp, encoding="ascii")
        os.chmod(partial, 0o600)
        os.replace(partial, marker)


def _folders_file(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".folders.json")


def _salvage_folders(db_path: Path) -> list[str]:
    """The indexed folders of a damaged database: its folders table if still readable,
    else the copy kept beside it."""
    found: list[str] = []
    with contextlib.suppress(sqlite3.DatabaseError):
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            found = [str(r[0]) for r in conn.execute("SELECT path FROM folders ORDER BY id")]
        finally:
            conn.close()
    if not found:
        with contextlib.suppress(OSError, ValueError, TypeError):
            found = [str(p) for p in json.loads(_folders_file(db_path).read_text(encoding="utf-8"))]
    return found


def recover(path: Path, problem: str) -> str:
    """Set a damaged index aside (renamed, never deleted), start a new one with the same
    folders, and return what to tell the user. Run under the writer lock, so one process
    does it; the indexer then rebuilds the index from the files."""
    folders = _salvage_folders(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(path) + suffix)
        if source.exists():
            os.replace(source, Path(str(aside) + suffix))
    index = Index(connect(path), path)
    try:
        for folder in folders:
            index.add_folder(folder)
    finally:
        index.close()
    return (
        f"The index was damaged ({problem}). It was kept aside as {aside.name} and a new one "
        f"is being built from your files; your {len(folders)} folder(s) and settings are kept."
    )


class Index:
    """Typed access to one index database through one connection (one per thread)."""

    def __init__(self, conn: Connection, path: Path | None = None) -> None:
        self.conn = conn
        self.path = path  # where it was opened from, so another thread can open it too
        self.recovered: str | None = None  # what to tell the user when open() rebuilt it
        self._stem_memo: dict[str, tuple[str, ...]] = {}  # word -> its tokens (see _stems)

    @classmethod
    def open(cls, path: Path | str, *, check: bool | Literal["if changed"] = False) -> Index:
        """Open (and migrate) the index. With `check`, a damaged file found by SQLite's
        quick check is set aside and replaced by a new index with the same folders (see
        recover); `recovered` then says so. "if changed" checks only a file written since
        it last passed the check (see damage_since_checked)."""
        path = Path(path)
        notice = None
        stamp = _file_stamp(path)  # before the check: a write during it means checking again
        if check == "if changed":
            problem = damage_since_checked(path)
        elif check:
            problem = damage(path)
        else:
            problem = None
        if problem is not None:
            lock = WriterLock(path)
            if not lock.acquire(timeout=60):
                raise DamagedIndexError(
                    f"The index {path} is damaged ({problem}) and another localsearch is using it; "
                    "close it and start again to rebuild the index."
                )
            try:
                problem = damage(path)  # another process may have rebuilt it meanwhile
                if problem is not None:
                    notice = recover(path, problem)
            finally:
                lock.release()
        index = cls(connect(path), path)
        if check and problem is None:  # sound, opened and of a schema this version knows
            _record_sound(path, stamp)
        index.recovered = notice
        return index

    def close(self) -> None:
        self.conn.close()

    def writer_lock(self) -> WriterLock:
        if self.path is None:
            raise StorageError("an index opened without a path has no writer lock")
        return WriterLock(self.path)

    # -- folders -------------------------------------------------------------
    def _keep_folder_list(self) -> None:
        """A copy of the folder list beside the database, to rebuild from if it is damaged."""
        if self.path is None:
            return
        target = _folders_file(self.path)
        with contextlib.suppress(OSError):
            tmp = target.with_name(target.name + ".tmp")
            # It names the user's folders: theirs alone, like the index, whatever the umask.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(json.dumps([p for _, p in self.folders()], ensure_ascii=False))
            os.chmod(tmp, 0o600)  # an older copy may have been created wider
            os.replace(tmp, target)

    def add_folder(self, path: str) -> int:
        with self.transaction():
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO folders (path, added_at) VALUES (?, ?)", (path, time.time())
            )
            row = self.conn.execute("SELECT id FROM folders WHERE path = ?", (path,)).fetchone()
        if cur.rowcount:
            self._keep_folder_list()
        return int(row[0])

    def folders(self) -> list[tuple[int, str]]:
        return [
            (int(r[0]), str(r[1])) for r in self.conn.execute("SELECT id, path FROM folders ORDER BY path")
        ]

    def remove_folder(self, path: str) -> bool:
        row = self.conn.execute("SELECT id FROM folders WHERE path = ?", (path,)).fetchone()
        if row is None:
            return False
        with self.transaction():  # files, chunks, vectors and codes follow by ON DELETE CASCADE
            self.conn.execute("DELETE FROM folders WHERE id = ?", (row[0],))
        self._keep_folder_list()
        return True

    # -- embedding spaces ----------------------------------------------------
    def ensure_space(self, model: str, dimensions: int, precision: str = "float32") -> Space:
        """The vector tables for (model, dimensions), created on first use. A space stored
        at another precision is converted in place (no re-embedding; going back up to
        float32 keeps the float16 rounding of vectors already stored)."""
        if precision not in PRECISIONS:
            raise StorageError(f"Unknown vector precision {precision!r}; choose {', '.join(PRECISIONS)}")
        row = self.conn.execute(
            "SELECT id, precision FROM embedding_spaces WHERE model = ? AND dimensions = ?",
            (model, dimensions),
        ).fetchone()
        if row is None:
            with self.transaction():
                cur = self.conn.execute(
                    "INSERT INTO embedding_spaces (model, dimensions, table_name, created_at, precision) "
                    "VALUES (?, ?, '', ?, ?)",
                    (model, dimensions, time.time(), precision),
                )
                space_id = int(cur.lastrowid or 0)
                self.conn.execute(
                    "UPDATE embedding_spaces SET table_name = ? WHERE id = ?",
                    (f"vectors_{space_id}", space_id),
                )
                create_vector_tables(self.conn, space_id, dimensions)
            return Space(space_id, model, dimensions, f"vectors_{space_id}", precision)
        space = Space(int(row[0]), model, dimensions, f"vectors_{int(row[0])}", str(row[1]))
        if space.precision != precision:
            space = self._convert_precision(space, precision)
        return space

    def _convert_precision(self, space: Space, precision: str) -> Space:
        converted = Space(space.id, space.model, space.dimensions, space.table_name, precision)
        with self.transaction():
            rows = self.conn.execute(f"SELECT chunk_id, embedding FROM {space.table_name}").fetchall()
            vectors = converted.encode(space.decode([r[1] for r in rows]))
            self.conn.executemany(
                f"UPDATE {space.table_name} SET embedding = ? WHERE chunk_id = ?",
                ((vector.tobytes(), r[0]) for r, vector in zip(rows, vectors, strict=True)),
            )
            self.conn.execute("UPDATE embedding_spaces SET precision = ? WHERE id = ?", (precision, space.id))
        return converted

    def find_space(self, model: str, dimensions: int = 0) -> Space | None:
        """The space `ensure_space` would pick for a model and a dimensions setting, without
        loading the model: `dimensions` when such a space exists; else (0, or at least the
        model's native size) the widest, since every cut is narrower than the native one."""
        rows = self.conn.execute(
            "SELECT id, model, dimensions, table_name, precision FROM embedding_spaces WHERE model = ? "
            "ORDER BY dimensions DESC, id DESC",
            (model,),
        ).fetchall()
        if not rows:
            return None
        widest = rows[0]
        if dimensions <= 0 or dimensions >= int(widest[2]):
            chosen = widest
        else:
            chosen = next((r for r in rows if int(r[2]) == dimensions), None)
            if chosen is None:
                return None  # that cut has not been indexed yet
        return Space(int(chosen[0]), str(chosen[1]), int(chosen[2]), str(chosen[3]), str(chosen[4]))

    # -- files ---------------------------------------------------------------
    def file_state(self, path: str) -> FileState | None:
        row = self.conn.execute(
            "SELECT id, size, mtime, content_hash, status, reason, space_id FROM files WHERE path = ?",
            (path,),
        ).fetchone()
        return FileState(*row) if row else None

    def files_under(self, path: str) -> list[str]:
        """Indexed files at `path` or anywhere below it."""
        prefix = path.rstrip("/\\") + os.sep
        rows = self.conn.execute(
            "SELECT path FROM files WHERE path = ? OR substr(path, 1, ?) = ?", (path, len(prefix), prefix)
        )
        return [str(r[0]) for r in rows]

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
        """Replace a file's chunks and vectors in one transaction: a crash leaves old or new."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        codes = binary_codes(vectors)
        stored = space.encode(vectors)
        with self.transaction():
            file_id = self._upsert_file(folder_id, path, size, mtime, content_hash, "indexed", None, space.id)
            self._delete_chunks_of_file(file_id)
            for chunk, vector, code in zip(chunks, stored, codes, strict=True):
                chunk_id = self._insert_chunk(
                    file_id,
                    chunk.ordinal,
                    chunk.text,
                    chunk.page,
                    chunk.start_char,
                    chunk.end_char,
                    chunk.n_tokens,
                    chunk.heading,
                )
                self._insert_vector(space, chunk_id, vector.tobytes(), code.tobytes())

    def _insert_chunk(self, file_id: int, *values: object) -> int:
        """Insert a chunk under a fresh id (never one a deleted chunk had); returns the id."""
        (chunk_id,) = self.conn.execute("UPDATE chunk_id_next SET id = id + 1 RETURNING id - 1").fetchone()
        self.conn.execute(
            "INSERT INTO chunks (id, file_id, ordinal, text, page, start_char, end_char, n_tokens, "
            "heading) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (chunk_id, file_id, *values),
        )
        return int(chunk_id)

    def _insert_vector(self, space: Space, chunk_id: int, vector: bytes, code: bytes) -> None:
        self.conn.execute(
            f"INSERT INTO {space.table_name} (chunk_id, embedding) VALUES (?, ?)", (chunk_id, vector)
        )
        self.conn.execute(f"INSERT INTO {space.codes_table} (chunk_id, code) VALUES (?, ?)", (chunk_id, code))

    def file_states(self, folder_id: int) -> dict[str, FileState]:
        """Every known file of a folder with what reconciliation compares, by path."""
        rows = self.conn.execute(
            "SELECT path, id, size, mtime, content_hash, status, reason, space_id FROM files "
            "WHERE folder_id = ?",
            (folder_id,),
        )
        return {str(r[0]): FileState(*r[1:]) for r in rows}

    def indexed_hashes(self, space: Space) -> set[str]:
        """Content hashes of the files indexed in a space (whose vectors can be reused)."""
        rows = self.conn.execute(
            "SELECT DISTINCT content_hash FROM files WHERE status = 'indexed' AND space_id = ? "
            "AND content_hash IS NOT NULL",
            (space.id,),
        )
        return {str(r[0]) for r in rows}

    def indexed_contents(self, space: Space) -> list[tuple[str, str]]:
        """(content hash, path) of the files indexed in a space (whose vectors can be reused)."""
        rows = self.conn.execute(
            "SELECT content_hash, path FROM files WHERE status = 'indexed' AND space_id = ? "
            "AND content_hash IS NOT NULL",
            (space.id,),
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
        """Index `path` with the chunks and vectors of another file with the same content
        (a rename, move or copy) whose path `accept`s, without embedding; in one transaction.
        Returns the number of chunks copied, or None when no such file is indexed in this
        space."""
        with self.transaction():
            rows = self.conn.execute(
                "SELECT id, path FROM files WHERE content_hash = ? AND status = 'indexed' AND space_id = ? "
                "AND path != ? AND EXISTS (SELECT 1 FROM chunks WHERE file_id = files.id)",
                (content_hash, space.id, path),
            ).fetchall()
            source_id = next((int(i) for i, p in rows if accept(str(p))), None)
            if source_id is None:
                return None
            source = source_id
            chunks = self.conn.execute(
                f"SELECT c.ordinal, c.text, c.page, c.start_char, c.end_char, c.n_tokens, c.heading, "
                f"v.embedding, b.code FROM chunks c JOIN {space.table_name} v ON v.chunk_id = c.id "
                f"JOIN {space.codes_table} b ON b.chunk_id = c.id "
                "WHERE c.file_id = ? ORDER BY c.ordinal",
                (source,),
            ).fetchall()
            count = self.conn.execute("SELECT COUNT(*) FROM chunks WHERE file_id = ?", (source,)).fetchone()
            if len(chunks) != int(count[0]):
                return None  # a chunk without its vector: embed afresh rather than copy a gap
            file_id = self._upsert_file(folder_id, path, size, mtime, content_hash, "indexed", None, space.id)
            self._delete_chunks_of_file(file_id)
            for ordinal, text, page, start_char, end_char, n_tokens, heading, embedding, code in chunks:
                chunk_id = self._insert_chunk(
                    file_id, ordinal, text, page, start_char, end_char, n_tokens, heading
                )
                self._insert_vector(space, chunk_id, embedding, code)
        return len(chunks)

    def record_failure(
        self, *, folder_id: int, path: str, size: int, mtime: float, content_hash: str | None, reason: str
    ) -> None:
        """Mark a file failed with a reason; its old chunks go (they no longer match the file)."""
        with self.transaction():
            file_id = self._upsert_file(folder_id, path, size, mtime, content_hash, "failed", reason, None)
            self._delete_chunks_of_file(file_id)

    def touch_file(self, file_id: int, size: int, mtime: float) -> None:
        """Same content under a new mtime (e.g. touched or copied back): just remember it."""
        with self.transaction():
            self.conn.execute("UPDATE files SET size = ?, mtime = ? WHERE id = ?", (size, mtime, file_id))

    def delete_file(self, path: str) -> None:
        row = self.conn.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        if row is None:
            return
        with self.transaction():
            self._delete_chunks_of_file(int(row[0]))
            self.conn.execute("DELETE FROM files WHERE id = ?", (row[0],))

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
        self.conn.execute(
            "INSERT INTO files (folder_id, path, size, mtime, content_hash, status, reason, space_id, "
            "indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET folder_id = excluded.folder_id, size = excluded.size, "
            "mtime = excluded.mtime, content_hash = excluded.content_hash, status = excluded.status, "
            "reason = excluded.reason, space_id = excluded.space_id, indexed_at = excluded.indexed_at",
            (folder_id, path, size, mtime, content_hash, status, reason, space_id, time.time()),
        )
        row = self.conn.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        return int(row[0])

    def _delete_chunks_of_file(self, file_id: int) -> None:
        # Vectors and codes go with their chunks (ON DELETE CASCADE).
        self.conn.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))

    # -- search --------------------------------------------------------------
    def coarse_candidates(
        self, space: Space, code: bytes, n: int, filters: Filters = NO_FILTERS
    ) -> tuple[np.ndarray, np.ndarray]:
        """First stage: ids and binary codes of the n chunks whose codes are nearest the
        query's (hamming distance, computed by sqlite-vec)."""
        if n <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros((0, space.code_bytes), dtype=np.uint8)
        if not filters.active:
            rows = self.conn.execute(
                f"SELECT chunk_id, code FROM {space.codes_table} "
                "ORDER BY vec_distance_hamming(vec_bit(code), vec_bit(?)) LIMIT ?",
                (code, n),
            ).fetchall()
        else:
            where, params = filters.sql()
            rows = self.conn.execute(
                f"SELECT b.chunk_id, b.code FROM {space.codes_table} b JOIN chunks c ON c.id = b.chunk_id "
                f"JOIN files f ON f.id = c.file_id WHERE {where} "
                "ORDER BY vec_distance_hamming(vec_bit(b.code), vec_bit(?)) LIMIT ?",
                (*params, code, n),
            ).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        codes = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.uint8).reshape(
            len(rows), space.code_bytes
        )
        return ids, codes

    def keyword_chunks(self, match: str, k: int, filters: Filters = NO_FILTERS) -> list[ChunkHit]:
        """Chunks matching an FTS5 expression, best BM25 first (distance = bm25, lower is better)."""
        if not filters.active:
            # The best k first, then their rows: joining every match before the sort costs
            # two lookups per matching chunk.
            rows = self.conn.execute(
                "WITH top AS (SELECT rowid AS id, bm25(chunks_fts) AS rank FROM chunks_fts "
                "WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?) "
                f"SELECT c.id, top.rank, f.path, {_HIT_COLUMNS} FROM top JOIN chunks c ON c.id = top.id "
                "JOIN files f ON f.id = c.file_id ORDER BY top.rank",
                (match, k),
            ).fetchall()
        else:
            where, params = filters.sql()
            rows = self.conn.execute(
                f"SELECT c.id, bm25(chunks_fts) AS rank, f.path, {_HIT_COLUMNS} "
                "FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid JOIN files f ON f.id = c.file_id "
                f"WHERE chunks_fts MATCH ? AND {where} ORDER BY rank LIMIT ?",
                (match, *params, k),
            ).fetchall()
        return [hit_from_row(r[0], r[1], r[2], r[3:]) for r in rows]

    def terms_held(self, terms: Sequence[str], texts: dict[int, str]) -> dict[int, set[str]]:
        """Which of the terms each text holds, matched as the index matches them (the same
        unicode61 tokenizer and Porter stemmer) without tokenizing whole passages: each
        query word's stem comes from FTS5 itself, and only the text's words that could
        share a stem are stemmed, by FTS5 too, once per connection (see _stems). The
        answers are those of a scratch full-text table of the texts (_terms_held_by_table),
        which cost 25-30 ms a query for a few hundred passages."""
        wanted: dict[str, tuple[str, ...]] = {}  # term -> the stems it needs, all of them
        stems = self._stems({w for t in terms for w in _FTS_WORD.findall(t.lower())})
        for term in terms:
            term_words = _FTS_WORD.findall(term.lower())
            # A word the tokenizer still cuts in several (or no) tokens is a phrase, which
            # a table without positions cannot match: such a term is held nowhere.
            if term_words and all(len(stems[w]) == 1 for w in term_words):
                wanted[term] = tuple(stems[w][0] for w in term_words)
        held: dict[int, set[str]] = {}
        if not wanted:
            return held
        # Porter rewrites at most the last two letters of what it keeps of a word (y -> i,
        # an added e), so a word with stem s starts with s less its last two letters. Each
        # finder takes the words starting so, with no letter, digit or other character
        # than ASCII on either side (such runs go to FTS5 whole, below).
        prefixes = sorted({s[: max(1, len(s) - 2)] for need in wanted.values() for s in need})
        finders = [(prefix, _words_from(prefix)) for prefix in prefixes]
        words_of: dict[int, set[str]] = {}
        mixed_of: dict[int, set[str]] = {}
        for cid, text in texts.items():
            if text.isascii():
                low = text.lower()
            else:
                # An ASCII character other than a letter or digit always ends a token; runs
                # holding other characters are tokenized by FTS5 as they stand. Only ASCII
                # is lowered here, so no other character turns into an ASCII letter.
                mixed_of[cid] = _mixed_runs(text)
                low = text.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")
            words: set[str] = set()
            for prefix, finder in finders:
                if prefix in low:
                    words.update(finder.findall(low))
            words_of[cid] = words
        stem_of = self._stems({w for words in words_of.values() for w in words})
        mixed_stems = self._stems({run for runs in mixed_of.values() for run in runs})
        for cid, words in words_of.items():
            present = {t for w in words for t in stem_of[w]}
            present.update(t for run in mixed_of.get(cid, ()) for t in mixed_stems[run])
            found = {term for term, need in wanted.items() if present.issuperset(need)}
            if found:
                held[cid] = found
        return held

    # Words stemmed per connection (see _stems); past this many the memo starts afresh.
    STEM_MEMO = 200_000

    def _stems(self, words: set[str]) -> dict[str, tuple[str, ...]]:
        """Each word's tokens as the index's tokenizer and stemmer make them (one for an
        ordinary word), read back through fts5vocab from a scratch table; memoized."""
        memo = self._stem_memo
        missing = sorted(w for w in words if w not in memo)
        if missing:
            if len(memo) + len(missing) > self.STEM_MEMO:
                memo.clear()
            conn = self.conn
            conn.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.stem_words USING fts5(word, tokenize = "
                "'porter unicode61 remove_diacritics 2')"
            )
            conn.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.stem_words_vocab "
                "USING fts5vocab(temp, stem_words, 'instance')"
            )
            conn.execute("DELETE FROM temp.stem_words")
            conn.executemany("INSERT INTO temp.stem_words (rowid, word) VALUES (?, ?)", enumerate(missing))
            tokens: dict[int, list[tuple[int, str]]] = {}
            for row, offset, token in conn.execute("SELECT doc, offset, term FROM temp.stem_words_vocab"):
                tokens.setdefault(int(row), []).append((int(offset), str(token)))
            conn.execute("DELETE FROM temp.stem_words")
            for i, word in enumerate(missing):
                memo[word] = tuple(t for _, t in sorted(tokens.get(i, [])))
        return {w: memo[w] for w in words}

    def _terms_held_by_table(self, terms: Sequence[str], texts: dict[int, str]) -> dict[int, set[str]]:
        """terms_held through a scratch full-text table of the texts themselves. For a few
        hundred candidate passages this is far quicker than asking the index itself: FTS5
        does not seek by rowid for an IN list, it scans every match per value."""
        conn = self.conn
        if not any(row[1] == "scratch" for row in conn.execute("PRAGMA database_list")):
            conn.execute("ATTACH DATABASE ':memory:' AS scratch")  # never touches the disk
        # Contentless, without positions, made afresh: the cheapest to fill and to empty.
        conn.execute("DROP TABLE IF EXISTS scratch.candidate_text")
        conn.execute(
            "CREATE VIRTUAL TABLE scratch.candidate_text USING fts5(text, content = '', detail = none, "
            "tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        conn.executemany("INSERT INTO scratch.candidate_text (rowid, text) VALUES (?, ?)", texts.items())
        held: dict[int, set[str]] = {}
        for term in terms:
            words = _FTS_WORD.findall(term.lower())
            if not words:
                continue
            # Without positions there are no phrases: a term of several tokens (KX-4471)
            # is held where all its tokens are; one the tokenizer still reads as a phrase
            # is left out.
            try:
                rows = conn.execute(
                    "SELECT rowid FROM scratch.candidate_text WHERE candidate_text MATCH ?",
                    (" AND ".join(f'"{w}"' for w in words),),
                ).fetchall()
            except sqlite3.OperationalError:
                continue
            for (rowid,) in rows:
                held.setdefault(int(rowid), set()).add(term)
        conn.execute("DROP TABLE scratch.candidate_text")
        return held

    def chunk_total(self) -> int:
        """Rows of the full-text index: the N of BM25's inverse document frequency."""
        return int(self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def index_tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """Each text cut into tokens and stemmed exactly as the full-text index does it
        (its tokenizer and Porter stemmer), through a scratch table of this connection."""
        conn = self.conn
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_terms USING fts5(term, tokenize = "
            "'porter unicode61 remove_diacritics 2')"
        )
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_terms_vocab "
            "USING fts5vocab(temp, query_terms, 'instance')"
        )
        conn.execute("DELETE FROM temp.query_terms")
        conn.executemany("INSERT INTO temp.query_terms (rowid, term) VALUES (?, ?)", enumerate(texts))
        tokens: list[list[str]] = [[] for _ in texts]
        for row, token in conn.execute("SELECT doc, term FROM temp.query_terms_vocab ORDER BY doc, offset"):
            tokens[int(row)].append(str(token))
        conn.execute("DELETE FROM temp.query_terms")
        return tokens

    def term_counts(self, terms: Sequence[str]) -> dict[str, int]:
        """How many chunks hold each term, from the full-text index's own vocabulary (no
        posting list is read). Each term is first cut and stemmed by the index's tokenizer
        (index_tokens); a term of several tokens counts as its rarest one."""
        conn = self.conn
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab USING fts5vocab(main, chunks_fts, 'row')"
        )
        tokens = self.index_tokens(terms)
        stems = sorted({token for found in tokens for token in found})
        counts = (
            dict(
                conn.execute(
                    f"SELECT term, doc FROM temp.chunks_vocab WHERE term IN ({','.join('?' * len(stems))})",
                    stems,
                ).fetchall()
            )
            if stems
            else {}
        )
        return {
            term: min(int(counts.get(token, 0)) for token in found)
            for term, found in zip(terms, tokens, strict=True)
            if found
        }

    def chunk_vectors(self, space: Space, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Full-precision vectors (as float32) of the given chunks, by id."""
        ids, matrix = self.chunk_vector_matrix(space, chunk_ids)
        return {int(c): matrix[i] for i, c in enumerate(ids)}

    def chunk_vector_matrix(self, space: Space, chunk_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The ids of those chunks that exist and their vectors, one float32 row each."""
        if not chunk_ids:
            return np.zeros(0, dtype=np.int64), np.zeros((0, space.dimensions), dtype=np.float32)
        rows = self.conn.execute(
            f"SELECT chunk_id, embedding FROM {space.table_name} "
            f"WHERE chunk_id IN ({','.join('?' * len(chunk_ids))})",
            list(chunk_ids),
        ).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, space.decode([r[1] for r in rows])

    def all_vectors(self, space: Space) -> tuple[np.ndarray, np.ndarray]:
        """Every (chunk id, vector) of a space, as an id array and a float32 matrix."""
        rows = self.conn.execute(f"SELECT chunk_id, embedding FROM {space.table_name}").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, space.decode([r[1] for r in rows])

    def all_codes(self, space: Space, *, after: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Every (chunk id, binary code) of a space with an id above `after`, ids ascending,
        codes as uint8 rows."""
        rows = self.conn.execute(
            f"SELECT chunk_id, code FROM {space.codes_table} WHERE chunk_id > ? ORDER BY chunk_id", (after,)
        ).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        codes = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.uint8).reshape(
            len(rows), space.code_bytes
        )
        return ids, codes

    def code_count(self, space: Space) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {space.codes_table}").fetchone()[0])

    def storage_bytes(self) -> dict[str, int]:
        """Bytes on disk by table, with each table's indexes and shadow tables counted in."""
        try:
            rows = self.conn.execute(
                "SELECT coalesce(m.tbl_name, d.name), SUM(d.pgsize) FROM dbstat d "
                "LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY 1"
            ).fetchall()
        except DatabaseError:  # a SQLite built without the dbstat table
            return {}
        sizes: dict[str, int] = {}
        for name, size in rows:
            owner = re.sub(r"_(data|idx|content|docsize|config)$", "", str(name))
            sizes[owner] = sizes.get(owner, 0) + int(size)
        return sizes

    def data_version(self) -> int:
        """Changes whenever another connection commits (SQLite's PRAGMA data_version)."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def chunk_hits(
        self,
        chunk_ids: Sequence[int],
        filters: Filters = NO_FILTERS,
        *,
        distances: Sequence[float] | None = None,
    ) -> dict[int, ChunkHit]:
        """Rows of the given chunks that still exist and pass the filters, by id, each
        with its distance when `distances` (in the order of `chunk_ids`) is given."""
        if not chunk_ids:
            return {}
        where, params = filters.sql()
        distance = dict(zip(chunk_ids, distances, strict=True)) if distances is not None else {}
        rows = self.conn.execute(
            f"SELECT c.id, f.path, {_HIT_COLUMNS} FROM chunks c JOIN files f ON f.id = c.file_id "
            f"WHERE c.id IN ({','.join('?' * len(chunk_ids))}) AND {where}",
            (*chunk_ids, *params),
        ).fetchall()
        return {int(r[0]): hit_from_row(r[0], distance.get(r[0], 0.0), r[1], r[2:]) for r in rows}

    def file_chunk_ids(self, path: str) -> list[int]:
        rows = self.conn.execute(
            "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = ? ORDER BY c.ordinal",
            (path,),
        )
        return [int(r[0]) for r in rows]

    def chunk_hit(self, chunk_id: int) -> ChunkHit | None:
        row = self.conn.execute(
            f"SELECT c.id, 0.0, f.path, {_HIT_COLUMNS} FROM chunks c JOIN files f ON f.id = c.file_id "
            "WHERE c.id = ?",
            (chunk_id,),
        ).fetchone()
        return hit_from_row(row[0], row[1], row[2], row[3:]) if row else None

    def file_chunks(self, file_id: int, space: Space) -> tuple[list[ChunkRecord], np.ndarray]:
        """A file's chunks in order with their vectors (float32): what moving the index to
        another backend copies (core/pg/transfer.py), nothing re-embedded."""
        rows = self.conn.execute(
            "SELECT c.ordinal, c.text, c.page, c.start_char, c.end_char, c.n_tokens, c.heading, v.embedding "
            f"FROM chunks c JOIN {space.table_name} v ON v.chunk_id = c.id "
            "WHERE c.file_id = ? ORDER BY c.ordinal",
            (file_id,),
        ).fetchall()
        return [ChunkRecord(*r[:7]) for r in rows], space.decode([r[7] for r in rows])

    # -- status --------------------------------------------------------------
    def is_empty(self) -> bool:
        """No passage indexed yet: one row looked at, where counts() scans three tables."""
        return self.conn.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None

    def counts(self) -> dict[str, int]:
        one = self.conn.execute
        return {
            "folders": int(one("SELECT COUNT(*) FROM folders").fetchone()[0]),
            "files": int(one("SELECT COUNT(*) FROM files WHERE status = 'indexed'").fetchone()[0]),
            "chunks": int(one("SELECT COUNT(*) FROM chunks").fetchone()[0]),
        }

    def failures(self) -> list[tuple[str, str]]:
        rows = self.conn.execute("SELECT path, reason FROM files WHERE status = 'failed' ORDER BY path")
        return [(str(r[0]), str(r[1])) for r in rows]

    # -- transactions --------------------------------------------------------
    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)


_SQLITE_FULL = 13


def is_disk_full(exc: BaseException) -> bool:
    """SQLite's "database or disk is full", or the system's "no space left on device"."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    if isinstance(exc, sqlite3.DatabaseError):
        code = getattr(exc, "sqlite_errorcode", None)
        return code == _SQLITE_FULL or "database or disk is full" in str(exc)
    return False


def _disk_full(exc: BaseException) -> DiskFullError:
    return DiskFullError(
        f"The disk holding the index is full ({exc}). Nothing was half-written; "
        "indexing goes on when space is freed."
    )


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception; nests as a no-op. A full
    disk surfaces as DiskFullError, after the rollback (SQLite may have rolled back already)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.outer = False

    def __enter__(self) -> Connection:
        if not self.conn.in_transaction:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                if is_disk_full(exc):
                    raise _disk_full(exc) from exc
                raise
            self.outer = True
        return self.conn

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if not self.outer:
            return
        if exc is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.DatabaseError as failed:
                exc = failed
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        if is_disk_full(exc):
            raise _disk_full(exc) from exc
        if exc_type is None:
            raise exc
