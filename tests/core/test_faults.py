"""Faults of the disk and the database, in process: a full disk (SQLite's own page limit
stands in for it here; tests/test_faults.py fills a real tmpfs), a damaged or truncated
database file, a write-ahead log lost mid-transaction, and the writer lock."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from localsearch import settings as settings_module
from localsearch.core.indexer import DISK_FULL_REASON, Indexer
from localsearch.core.service import LocalSearch
from localsearch.core.storage import Index, WriterLock, damage
from localsearch.settings import Settings
from tests.fakes import FakeEmbedder

REPO = Path(__file__).resolve().parents[2]
WORDS = (
    "river mountain lantern copper violet harbor meadow signal orbit canyon ember glacier "
    "thunder velvet marble quartz saffron tundra willow zephyr basalt cobalt delta falcon"
).split()


def _corpus(root: Path, files: int, seed: int = 3) -> Path:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        paragraphs = [" ".join(rng.choice(WORDS) for _ in range(60)) + f" note{i}." for _ in range(6)]
        (root / f"doc{i:03d}.txt").write_text("\n\n".join(paragraphs))
        os.utime(root / f"doc{i:03d}.txt", (1_700_000_000, 1_700_000_000))
    return root


def _service(db: Path) -> LocalSearch:
    return LocalSearch(
        Settings(), db_path=db, embedder_factory=lambda settings, queries=False: FakeEmbedder()
    )


def _content(db: Path) -> tuple[list[tuple], list[tuple]]:
    """What defines the index, by path: files, and chunks with their vectors."""
    index = Index.open(db)
    try:
        conn = index.conn
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        (table,) = conn.execute("SELECT table_name FROM embedding_spaces").fetchone()
        files = sorted(
            tuple(r) for r in conn.execute("SELECT path, status, reason, content_hash, size FROM files")
        )
        chunks = sorted(
            tuple(r)
            for r in conn.execute(
                "SELECT f.path, c.ordinal, c.text, v.embedding FROM chunks c "
                f"JOIN files f ON f.id = c.file_id LEFT JOIN {table} v ON v.chunk_id = c.id"
            )
        )
        assert all(c[-1] is not None for c in chunks)
        n_chunks = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        assert conn.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0] == n_chunks
        return files, chunks
    finally:
        index.close()


def _clean(tmp_path: Path, docs: Path) -> tuple[list[tuple], list[tuple]]:
    db = tmp_path / "clean" / "index.sqlite3"
    with _service(db) as service:
        assert list(service.index_paths([docs]))[-1].phase == "done"
    return _content(db)


# -- disk full ---------------------------------------------------------------


def test_a_full_disk_pauses_indexing_and_it_goes_on_when_space_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's max_page_count makes every write that needs a new page fail as a full disk
    does (SQLITE_FULL, "database or disk is full"): the same error path as ENOSPC."""
    monkeypatch.setattr(Indexer, "DISK_FULL_RETRY", 0.05)
    docs = _corpus(tmp_path / "docs", 40)
    db = tmp_path / "home" / "index.sqlite3"
    seen_full = 0
    messages: list[str] = []
    with _service(db) as service:
        conn = service.index.conn
        for progress in service.index_paths([docs]):
            messages += progress.messages
            progress.messages.clear()  # as the printers do: each message is told once
            if progress.files_done == 10 and not seen_full:
                # The disk fills: no page beyond those the file has now.
                (pages,) = conn.execute("PRAGMA page_count").fetchone()
                conn.execute(f"PRAGMA max_page_count = {pages}")
            if progress.paused == DISK_FULL_REASON:
                seen_full += 1
                assert progress.files_done < 40
                assert damage(db) is None  # nothing half-written, even while full
                if seen_full == 5:  # space comes back
                    conn.execute("PRAGMA max_page_count = 1073741823")
        assert progress.phase == "done" and progress.paused is None
        assert progress.files_indexed == 40 and progress.files_failed == 0
    assert seen_full >= 5
    assert sum("disk holding the index is full" in m for m in messages) == 1
    assert _content(db) == _clean(tmp_path, docs)


def test_cancel_while_the_disk_is_full_keeps_what_was_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Indexer, "DISK_FULL_RETRY", 0.05)
    docs = _corpus(tmp_path / "docs", 20)
    db = tmp_path / "home" / "index.sqlite3"
    from localsearch.core.indexer import IndexControl

    control = IndexControl()
    with _service(db) as service:
        conn = service.index.conn
        for progress in service.index_paths([docs], control=control):
            if progress.files_done == 5:
                (pages,) = conn.execute("PRAGMA page_count").fetchone()
                conn.execute(f"PRAGMA max_page_count = {pages}")
            if progress.paused == DISK_FULL_REASON:
                control.cancel()
        assert progress.phase == "cancelled"
        done = progress.files_indexed
    assert damage(db) is None
    files, _ = _content(db)
    assert len(files) == done >= 5


def test_a_disk_full_before_the_first_file_pauses_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes outside a file's transaction (registering a new folder) wait for room as well,
    instead of ending the run. The folder's row often fits in a page the file already has, so
    ENOSPC is injected at the storage layer (Index.add_folder raises DiskFullError)."""
    from localsearch.errors import DiskFullError

    monkeypatch.setattr(Indexer, "DISK_FULL_RETRY", 0.05)
    first, second = _corpus(tmp_path / "first", 3), _corpus(tmp_path / "second", 4, seed=5)
    db = tmp_path / "home" / "index.sqlite3"
    with _service(db) as service:
        list(service.index_paths([first]))
        real_add = Index.add_folder
        failures = iter(range(3))

        def add_folder(self: Index, path: str) -> int:
            if next(failures, None) is not None:
                raise DiskFullError("The disk holding the index is full (injected)")
            return real_add(self, path)

        monkeypatch.setattr(Index, "add_folder", add_folder)
        pauses = 0
        for progress in service.index_paths([second]):
            if progress.paused == DISK_FULL_REASON:
                pauses += 1
                assert progress.files_done == 0
        assert pauses >= 3
        assert progress.phase == "done" and progress.files_indexed == 4
        assert sorted(service.folders()) == sorted([str(first), str(second)])


def test_a_disk_full_while_forgetting_deleted_files_pauses_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting rows rarely needs a new page, so SQLite's page limit cannot stand in here:
    ENOSPC is injected at the storage layer (Index.delete_file raises DiskFullError)."""
    from localsearch.errors import DiskFullError

    monkeypatch.setattr(Indexer, "DISK_FULL_RETRY", 0.05)
    docs = _corpus(tmp_path / "docs", 6)
    db = tmp_path / "home" / "index.sqlite3"
    with _service(db) as service:
        list(service.index_paths([docs]))
        (docs / "doc002.txt").unlink()
        real_delete = Index.delete_file
        failures = iter(range(3))

        def delete_file(self: Index, key: str) -> None:
            if next(failures, None) is not None:
                raise DiskFullError("The disk holding the index is full (injected)")
            real_delete(self, key)

        monkeypatch.setattr(Index, "delete_file", delete_file)
        states = [(p.paused, p.phase) for p in service.index_paths([docs])]
        assert sum(paused == DISK_FULL_REASON for paused, _ in states) >= 3
        assert states[-1] == (None, "done")
        assert not any(path.endswith("doc002.txt") for path, _ in service.index.failures())
        assert service.index.file_state(str(docs / "doc002.txt")) is None
        assert service.index.counts()["files"] == 5


# -- a damaged database --------------------------------------------------------


def _flip_pages(db: Path) -> None:
    """Random bytes over the b-tree header and cell pointers of eight pages. (Bytes flipped
    inside a record's payload break no structure: SQLite keeps no page checksums, and no
    check finds them; RELIABILITY.md says so.)"""
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    rng = random.Random(11)
    for number in rng.sample(range(1, len(data) // page), 8):
        start = number * page
        data[start : start + 24] = bytes(rng.randrange(256) for _ in range(24))
    db.write_bytes(bytes(data))


def _truncate(db: Path) -> None:
    with open(db, "r+b") as handle:
        handle.truncate(db.stat().st_size // 2 + 1000)  # not on a page boundary


def _header(db: Path) -> None:
    with open(db, "r+b") as handle:
        handle.write(b"not an index at all")


@pytest.mark.parametrize("harm", [_flip_pages, _truncate, _header], ids=["flipped", "truncated", "header"])
def test_a_damaged_index_is_set_aside_and_rebuilt_with_folders_and_settings_kept(
    tmp_path: Path, harm: object
) -> None:
    docs = _corpus(tmp_path / "docs", 60)
    other = _corpus(tmp_path / "other", 5, seed=9)
    home = tmp_path / "home"
    db = home / "index.sqlite3"
    chosen = Settings(chunk_overlap=16, exclude=["*.log"])
    settings_module.save(chosen, home / "settings.toml")
    with _service(db) as service:
        list(service.index_paths([docs, other]))
        service.index.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    harm(db)  # type: ignore[operator]
    damaged = hashlib.sha256(db.read_bytes()).hexdigest()
    assert damage(db) is not None

    with _service(db) as service:
        notice = service.recovered
        assert notice is not None and "damaged" in notice and "kept aside" in notice
        assert service.status()["recovered"] == notice
        assert service.folders() == sorted([str(docs), str(other)])  # folders kept
        assert service.index.counts()["files"] == 0
        list(service.reindex_all())
    aside = [p for p in home.iterdir() if ".damaged-" in p.name and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and hashlib.sha256(aside[0].read_bytes()).hexdigest() == damaged  # never deleted
    assert aside[0].name in notice
    assert settings_module.load(home / "settings.toml") == chosen
    assert damage(db) is None
    files, chunks = _content(db)
    clean_files, clean_chunks = _clean(tmp_path, docs)
    assert [f for f in files if f[0].startswith(str(docs))] == clean_files
    assert [c for c in chunks if c[0].startswith(str(docs))] == clean_chunks
    with _service(db) as again:  # sound now: opened as it is
        assert again.recovered is None


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from localsearch.core.service import LocalSearch
    from localsearch.settings import Settings
    from tests.fakes import FakeEmbedder
    service = LocalSearch(
        Settings(), db_path=Path(sys.argv[1]), embedder_factory=lambda s, q=False: FakeEmbedder()
    )
    service.index.conn.execute("PRAGMA wal_autocheckpoint = 0")  # its commits stay in the log
    for _ in service.index_paths([sys.argv[2]]):
        pass
    service.index.conn.execute("BEGIN IMMEDIATE")
    service.index.conn.execute("DELETE FROM chunks")
    print("in transaction", flush=True)
    sys.stdin.read()
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_write_ahead_log_deleted_mid_transaction_loses_nothing_of_the_files(tmp_path: Path) -> None:
    """A writer commits re-indexed files into the log (not yet checkpointed), opens another
    transaction; the log is deleted and the writer killed. The index opens sound at its
    last checkpoint, and the next run brings back what the lost log held: the files are
    the truth."""
    docs = _corpus(tmp_path / "docs", 30)
    db = tmp_path / "home" / "index.sqlite3"
    with _service(db) as service:
        list(service.index_paths([docs]))
    for i in range(5):  # changed since: their new text will live only in the log that is lost
        (docs / f"doc{i:03d}.txt").write_text(f"rewritten note {i} about a glacier")
        os.utime(docs / f"doc{i:03d}.txt", (1_700_000_100, 1_700_000_100))
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db), str(docs)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == b"in transaction\n"
        wal = Path(str(db) + "-wal")
        assert wal.stat().st_size > 0
        wal.unlink()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
    with _service(db) as service:
        assert service.recovered is None  # sound, at its last checkpoint
        texts = " ".join(r[0] for r in service.index.conn.execute("SELECT text FROM chunks"))
        assert "rewritten note" not in texts  # what the log held is gone from the index...
        list(service.index_paths([docs]))
    files, chunks = _content(db)
    assert (files, chunks) == _clean(tmp_path, docs)  # ...and back from the files
    assert any("rewritten note 0" in c[2] for c in chunks)


# -- one writer at a time -------------------------------------------------------


_HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from localsearch.core.storage import WriterLock
    lock = WriterLock(Path(sys.argv[1]))
    assert lock.acquire()
    print("held", flush=True)
    sys.stdin.read()
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_the_writer_lock_is_held_across_processes_and_freed_when_its_holder_dies(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite3"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        lock = WriterLock(db)
        assert not lock.acquire(timeout=0.3)
        assert lock.holder() == str(holder.pid)
        holder.send_signal(signal.SIGKILL)  # no clean-up: the system frees the lock
        holder.wait(30)
        assert lock.acquire(timeout=5)
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)


def test_an_indexing_run_waits_for_the_one_holding_the_lock(tmp_path: Path) -> None:
    import threading

    docs = _corpus(tmp_path / "docs", 5)
    db = tmp_path / "home" / "index.sqlite3"
    other = WriterLock(db)  # stands for another process's run: flock locks per open file
    assert other.acquire()
    release = threading.Timer(0.8, other.release)
    release.start()
    with _service(db) as service:
        seen = list(service.index_paths([docs]))
    release.join()
    assert seen[0].paused == "another localsearch is indexing"
    assert "Another localsearch is indexing" in seen[0].messages[0]
    assert seen[-1].phase == "done" and seen[-1].files_indexed == 5


def test_the_command_line_says_the_index_was_rebuilt(
    tmp_path: Path, isolated_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from localsearch.cli import main

    monkeypatch.setenv("LOCALSEARCH_TEST_EMBEDDER", "tests.fakes:FakeEmbedder")
    docs = _corpus(tmp_path / "docs", 5)
    assert main(["index", str(docs)]) == 0
    db = isolated_home / "data" / "index.sqlite3"
    _truncate(db)
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    captured = capsys.readouterr()
    assert "The index was damaged" in captured.err and "localsearch index" in captured.err
    assert str(docs) in captured.out  # its folder is kept
    assert main(["index", str(docs)]) == 0
    assert main(["search", "glacier", "--mode", "keyword", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 5


@pytest.mark.parametrize("harm", [_flip_pages, _truncate, _header], ids=["flipped", "truncated", "header"])
def test_a_one_shot_search_finds_a_damaged_index_at_start(
    tmp_path: Path,
    isolated_home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    harm: object,
) -> None:
    from localsearch.cli import main

    monkeypatch.setenv("LOCALSEARCH_TEST_EMBEDDER", "tests.fakes:FakeEmbedder")
    docs = _corpus(tmp_path / "docs", 5)
    assert main(["index", str(docs)]) == 0
    assert main(["search", "glacier", "--json"]) == 0  # sound: checked and remembered as such
    db = isolated_home / "data" / "index.sqlite3"
    assert callable(harm)
    harm(db)
    capsys.readouterr()
    main(["search", "glacier", "--json"])
    captured = capsys.readouterr()
    assert "The index was damaged" in captured.err and "localsearch index" in captured.err
    assert list(db.parent.glob("index.sqlite3.damaged-*"))  # kept aside, not deleted
    assert main(["status", "--json"]) == 0 and str(docs) in capsys.readouterr().out  # folders kept


def test_a_one_shot_search_checks_only_a_file_written_since_its_last_check(
    tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localsearch.cli import main
    from localsearch.core import storage

    monkeypatch.setenv("LOCALSEARCH_TEST_EMBEDDER", "tests.fakes:FakeEmbedder")
    docs = _corpus(tmp_path / "docs", 5)
    assert main(["index", str(docs)]) == 0
    checks: list[Path] = []
    real_damage = storage.damage
    monkeypatch.setattr(storage, "damage", lambda path: checks.append(path) or real_damage(path))
    for _ in range(3):
        assert main(["search", "glacier", "--json"]) == 0
    assert len(checks) == 1  # the index was written after its last check; then never again
    (docs / "new.txt").write_text("a new note about glaciers")
    assert main(["index", str(docs)]) == 0  # indexing always checks
    checks.clear()
    for _ in range(2):
        assert main(["search", "glacier", "--json"]) == 0
    assert len(checks) == 1


def test_an_index_from_a_newer_version_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    from localsearch.errors import StorageError

    docs = _corpus(tmp_path / "docs", 3)
    db = tmp_path / "home" / "index.sqlite3"
    with _service(db) as service:
        list(service.index_paths([docs]))
        service.index.conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in db.parent.iterdir()}
    with pytest.raises(StorageError, match="newer localsearch"):
        _service(db)  # checked (sound), then refused: not rebuilt, not migrated
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in db.parent.iterdir()}
    assert after == before
