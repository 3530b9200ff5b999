"""The shared index on PostgreSQL + pgvector, against a real server (conftest.pg_server):
its schema and migrations, how it is chosen and where credentials come from, several
machines writing and searching at once, who sees what (row-level security), and moving an
index between SQLite and PostgreSQL without re-embedding."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from localsearch import settings as settings_module
from localsearch.cli import main
from localsearch.core.indexer import Indexer, IndexOptions
from localsearch.core.pg import schema
from localsearch.core.pg.index import PostgresIndex
from localsearch.core.pg.transfer import transfer
from localsearch.core.pg.url import PASSWORD_REFUSED, checked, without_password
from localsearch.core.searcher import Searcher
from localsearch.core.service import LocalSearch
from localsearch.core.storage import ChunkRecord, Index
from localsearch.errors import StorageError, UserFacingError
from localsearch.settings import Settings
from tests.core.test_backends import _write_docs
from tests.fakes import FakeEmbedder


def _index_folder(store: Any, root: Path, embedder: FakeEmbedder | None = None) -> None:
    embedder = embedder or FakeEmbedder()
    space = store.ensure_space(embedder.name, embedder.dimensions)
    for _ in Indexer(store, embedder, space, IndexOptions(chunk_tokens=64)).run([root]):
        pass


def _searcher(store: Any) -> Searcher:
    embedder = FakeEmbedder()
    return Searcher(store, embedder, store.ensure_space(embedder.name, embedder.dimensions))


# -- schema ------------------------------------------------------------------
def test_migrations_are_recorded_and_a_newer_schema_is_refused(pg_url: str) -> None:
    PostgresIndex.open(pg_url).close()
    PostgresIndex.open(pg_url).close()  # a second open finds it current and changes nothing
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
        assert [r[0] for r in rows] == list(range(1, schema.SCHEMA_VERSION + 1))
        conn.execute(
            "INSERT INTO schema_migrations VALUES (%s, 'from the future', 0)", (schema.SCHEMA_VERSION + 1,)
        )
    with pytest.raises(StorageError, match="newer localsearch"):
        PostgresIndex.open(pg_url)


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="Cannot reach the shared index"):
        PostgresIndex.open(f"postgresql://nobody@/none?host={tmp_path}&connect_timeout=2")


# -- choosing it, and credentials ---------------------------------------------
def test_a_password_in_the_address_is_refused_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_password = "postgresql://alice:s3cret@db.example/index"
    for url in (with_password, "postgresql://alice@db.example/index?password=s3cret"):
        with pytest.raises(UserFacingError, match="pgpass"):
            checked(url)
        with pytest.raises(UserFacingError, match="PGPASSWORD"):
            settings_module.validate("index_url", url)
    assert without_password(with_password) == "postgresql://alice@db.example/index"
    assert main(["--index-url", with_password, "status"]) == 1
    assert PASSWORD_REFUSED in capsys.readouterr().err
    # A password already saved by hand is not used (nor kept in memory); the log says why.
    saved = tmp_path / "settings.toml"
    saved.write_text(f'index_url = "{with_password}"\n', encoding="utf-8")
    assert settings_module.load(saved).index_url == "postgresql://alice@db.example/index"
    with pytest.raises(UserFacingError, match="not a PostgreSQL address"):
        settings_module.validate("index_url", "mysql://x@y/z")


def test_index_url_selects_the_shared_index_in_the_service_and_the_cli(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _write_docs(tmp_path / "root")
    settings = Settings(index_url=pg_url, machine="laptop")
    with LocalSearch(settings, embedder_factory=lambda s, queries: FakeEmbedder()) as service:
        assert isinstance(service.index, PostgresIndex)
        for _ in service.index_paths([root]):
            pass
        hits = service.search("brown fox", 5)
        assert {h.name for h in hits[:2]} == {"poem.txt", "report.txt"} and hits[0].host == "laptop"
        status = service.status()
        assert status["database"] == pg_url and status["files"] == 5
        assert {"chunks", "files", "vectors_1"} <= set(status["storage"]["tables"])  # type: ignore[index]
    # The command line: --index-url for one run; the local SQLite index stays empty.
    monkeypatch.setenv("LOCALSEARCH_TEST_EMBEDDER", "tests.fakes:FakeEmbedder")
    assert main(["--index-url", pg_url, "search", "brown fox", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert {h["name"] for h in found[:2]} == {"poem.txt", "report.txt"} and found[0]["host"] == "laptop"
    assert main(["search", "brown fox", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


# -- several machines ---------------------------------------------------------
def test_two_machines_index_into_one_index_while_others_search(tmp_path: Path, pg_url: str) -> None:
    laptop_docs = _write_docs(tmp_path / "laptop")
    nas_docs = tmp_path / "nas"
    (nas_docs / "archive").mkdir(parents=True)
    for i in range(30):
        (nas_docs / "archive" / f"letter{i}.txt").write_text(
            f"Letter {i} about the brown fox and invoices {i}."
        )
    # The same path on two machines is two files.
    (nas_docs / "shared.txt").write_text("A note about tomatoes.")
    laptop = PostgresIndex.open(pg_url, host="laptop")
    nas = PostgresIndex.open(pg_url, host="nas")
    reader = PostgresIndex.open(pg_url, host="phone")
    errors: list[BaseException] = []
    searches = [0]
    done = threading.Event()

    def write(store: PostgresIndex, root: Path) -> None:
        try:
            _index_folder(store, root)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def search() -> None:
        try:
            while not done.is_set():
                _searcher(reader).search("brown fox invoices", 5)
                searches[0] += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    try:
        _index_folder(laptop, laptop_docs)  # the laptop's folder first, so its lock is its own
        writers = [threading.Thread(target=write, args=(nas, nas_docs))]
        searcher_thread = threading.Thread(target=search)
        searcher_thread.start()
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        done.set()
        searcher_thread.join()
        assert not errors and searches[0] > 0
        assert reader.counts()["files"] == 5 + 31
        assert [p for _, p in laptop.folders()] == [str(laptop_docs)]  # each machine walks its own
        assert [p for _, p in nas.folders()] == [str(nas_docs)]
        hits = _searcher(reader).search("brown fox", 40, mode="keyword")
        hosts = {h.host for h in hits}
        assert hosts == {"laptop", "nas"}
        assert all(h.path.startswith(str(laptop_docs if h.host == "laptop" else nas_docs)) for h in hits)
        # A writer lock per machine: a second run on the same machine waits, another machine does not.
        held = laptop.writer_lock()
        assert held.acquire()
        second_laptop = PostgresIndex.open(pg_url, host="laptop")
        try:
            assert not second_laptop.writer_lock().acquire(timeout=0.2)
            assert "database server" in second_laptop.writer_lock().holder()
            assert nas.writer_lock().acquire()
        finally:
            held.release()
            second_laptop.close()
    finally:
        for store in (laptop, nas, reader):
            store.close()


def test_the_same_path_on_two_machines_is_two_files(tmp_path: Path, pg_url: str) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("The passport renewal form.")
    a, b = PostgresIndex.open(pg_url, host="a"), PostgresIndex.open(pg_url, host="b")
    try:
        _index_folder(a, docs)
        (docs / "note.txt").write_text("A recipe for tomato soup.")
        _index_folder(b, docs)
        assert a.counts()["files"] == 2
        assert [h.host for h in _searcher(a).search("passport", 5, mode="keyword")] == ["a"]
        assert [h.host for h in _searcher(a).search("tomato soup", 5, mode="keyword")] == ["b"]
        b.delete_file(str(docs / "note.txt"))  # b's file goes; a's stays
        assert a.file_state(str(docs / "note.txt")) is not None and a.counts()["files"] == 1
    finally:
        a.close()
        b.close()


# -- who sees what -------------------------------------------------------------
def _roles(pg_server: Any, pg_url: str) -> dict[str, str]:
    """alice and bob in group `team`; carol outside it. Each role's index_url."""
    database = pg_url.split("/")[3].split("?")[0]
    pg_server.psql(
        "DO $$ BEGIN "
        "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'team') THEN CREATE ROLE team; END IF; "
        "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'alice') THEN CREATE ROLE alice LOGIN; END IF; "
        "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bob') THEN CREATE ROLE bob LOGIN; END IF; "
        "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'carol') THEN CREATE ROLE carol LOGIN; END IF; "
        "END $$; GRANT team TO alice, bob;",
        database,
    )
    return {user: pg_server.url(user=user, database=database) for user in ("alice", "bob", "carol")}


def _chunk_statistics(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT most_common_vals::text, histogram_bounds::text FROM pg_stats WHERE tablename = 'chunks'"
        ).fetchall()
    return str(rows)


SECRET = "The merger with Zyxcorp closes in March; the board approved quietly."


def test_row_level_security_keeps_private_folders_private(
    tmp_path: Path, pg_server: Any, pg_url: str
) -> None:
    PostgresIndex.open(pg_url).close()  # the administrator creates the schema (and pgvector)
    admin = PostgresIndex.open(pg_url)
    admin.ensure_space("fake", 64)  # spaces too: their vector tables then belong to the administrator
    admin.close()
    urls = _roles(pg_server, pg_url)
    private, shared = tmp_path / "private", tmp_path / "shared"
    private.mkdir()
    shared.mkdir()
    (private / "merger.txt").write_text(SECRET)
    (shared / "menu.txt").write_text("Team lunch on Friday: tomato soup and bread. Zyxcorp visitors welcome.")
    alice = PostgresIndex.open(urls["alice"], host="alice-laptop")
    bob = PostgresIndex.open(urls["bob"], host="bob-laptop")
    carol = PostgresIndex.open(urls["carol"], host="carol-laptop")
    try:
        _index_folder(alice, private)
        _index_folder(alice, shared)
        pg_server.psql("ANALYZE", pg_url.split("/")[3].split("?")[0])  # statistics exist
        assert alice.share_folder(str(shared), "team")
        assert not bob.share_folder(str(shared), "carol")  # not bob's folder to share
        secret_ids = alice.file_chunk_ids(str(private / "merger.txt"))
        assert secret_ids

        # Alice sees both; bob (in team) the shared one; carol nothing.
        assert alice.counts()["files"] == 2
        assert bob.counts()["files"] == 1 and carol.counts()["files"] == 0
        for viewer, expected in ((bob, {"menu.txt"}), (carol, set())):
            for mode in ("hybrid", "semantic", "keyword"):
                for query in ("merger Zyxcorp board", '"merger with Zyxcorp"', "Zyxcorp"):
                    hits = _searcher(viewer).search(query, 10, mode=mode)
                    assert {h.name for h in hits} <= expected, (mode, query)
                    dumped = json.dumps([h.as_dict() for h in hits])
                    assert "merger" not in dumped and "board approved" not in dumped
            # Not by id, not by path, not through more-like-this, not through its vectors.
            assert all(viewer.chunk_hit(i) is None for i in secret_ids)
            assert viewer.chunk_hits(secret_ids) == {}
            assert viewer.file_chunk_ids(str(private / "merger.txt")) == []
            space = viewer.ensure_space("fake", 64)
            assert viewer.chunk_vectors(space, secret_ids) == {}
            assert _searcher(viewer).more_like(str(private / "merger.txt"), 5) == []
            more = _searcher(viewer).more_like(str(shared / "menu.txt"), 5)
            assert all(h.name != "merger.txt" for h in more)
            # Word counts (BM25's weights) are taken over what the role sees: "merger" is
            # nowhere for them, so not even its existence leaks.
            assert viewer.term_counts(["merger"]) == {"merger": 0}
            # Not through the planner's statistics of the text column either.
            assert "merger" in _chunk_statistics(pg_url)  # the administrator's view holds it
            assert "merger" not in _chunk_statistics(viewer.url)
            # And no writing into another's folder: deletes touch nothing, inserts are refused.
            assert viewer.conn.execute("DELETE FROM folders WHERE owner_role = 'alice'").rowcount == 0
            assert viewer.conn.execute("DELETE FROM chunks").rowcount == 0
            folder_id = alice.folders()[0][0]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                viewer.conn.execute(
                    "INSERT INTO files (folder_id, host, path, size, mtime, status, indexed_at) "
                    "VALUES (%s, 'x', '/x', 0, 0, 'indexed', 0)",
                    (folder_id,),
                )
        assert alice.counts()["files"] == 2  # nothing of alice's was deleted
        # Private again: bob loses the shared folder too.
        assert alice.share_folder(str(shared), None)
        assert bob.counts()["files"] == 0
        with pytest.raises(StorageError, match="no database role"):
            alice.share_folder(str(shared), "nosuchrole")
    finally:
        for store in (alice, bob, carol):
            store.close()


# -- moving an index -------------------------------------------------------------
def test_an_index_moves_to_postgres_and_back_without_re_embedding(tmp_path: Path, pg_url: str) -> None:
    root = _write_docs(tmp_path / "root")
    embedder = FakeEmbedder()
    original = Index.open(tmp_path / "original.sqlite3")
    _index_folder(original, root, embedder)
    embedded = embedder.embedded_sequences
    shared = PostgresIndex.open(pg_url, host="laptop")
    back = Index.open(tmp_path / "back.sqlite3")
    try:
        there = transfer(original, shared, embedder.name)
        assert (there.folders, there.files, there.failed, there.chunks) == (1, 5, 1, 5)
        home = transfer(shared, back, embedder.name)
        assert home.as_dict() == there.as_dict()
        space_a = original.find_space(embedder.name)
        space_b = back.find_space(embedder.name)
        assert space_a is not None and space_b is not None
        for store in (shared, back):
            assert store.counts() == original.counts() and store.failures() == original.failures()
        # Vectors copied bit for bit; files unchanged, so indexing again embeds nothing.
        space_c = shared.find_space(embedder.name)
        assert space_c is not None
        pairs = ((original, space_a), (shared, space_c), (back, space_b))
        rows = [sorted(v.tobytes() for v in store.all_vectors(space)[1]) for store, space in pairs]
        assert rows[0] == rows[1] == rows[2] and len(rows[0]) == 5
        for store in (shared, back):
            _index_folder(store, root, embedder)
        assert embedder.embedded_sequences == embedded
        for mode in ("hybrid", "keyword", "semantic"):
            expected = [h.as_dict() for h in _searcher(original).search("brown fox water", 5, mode=mode)]
            assert [h.as_dict() for h in _searcher(back).search("brown fox water", 5, mode=mode)] == expected
    finally:
        for store in (original, shared, back):
            store.close()


def test_chunk_records_round_trip_through_the_server(pg_url: str) -> None:
    store = PostgresIndex.open(pg_url, host="h")
    try:
        space = store.ensure_space("m", 3, "float16")
        assert space.precision == "float32"  # pgvector 0.6 has no half precision: kept whole
        folder = store.add_folder("/f")
        vectors = np.array([[1, 0, 0], [0.6, 0.8, 0]], dtype=np.float32)
        chunks = [
            ChunkRecord(0, "Ünïcode café ß", 2, 0, 14, 5, "Heading"),
            ChunkRecord(1, "second", None, 14, 20, 1),
        ]
        store.replace_file(
            folder_id=folder, path="/f/a.txt", size=1, mtime=2.5, content_hash="h1", space=space,
            chunks=chunks, vectors=vectors,
        )  # fmt: skip
        state = store.file_state("/f/a.txt")
        assert state is not None
        got, matrix = store.file_chunks(state.id, space)
        assert got == chunks and np.array_equal(matrix, vectors)
        assert store.term_counts(["cafe", "Ünïcode"]) == {"cafe": 1, "Ünïcode": 1}
        with pytest.raises(ValueError):
            store.replace_file(
                folder_id=folder, path="/f/b.txt", size=1, mtime=1, content_hash="h", space=space,
                chunks=chunks, vectors=vectors[:1],
            )  # fmt: skip
    finally:
        store.close()


def test_index_export_and_import_commands(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALSEARCH_TEST_EMBEDDER", "tests.fakes:FakeEmbedder")
    root = _write_docs(tmp_path / "root")
    assert main(["index", str(root)]) == 0
    assert main(["search", "brown fox", "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main(["index-export", pg_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "folders": 1, "files": 5, "failed": 1, "chunks": 5, "skipped": 0,
    }  # fmt: skip
    assert main(["--index-url", pg_url, "search", "brown fox", "--json"]) == 0
    shared = json.loads(capsys.readouterr().out)
    assert [h["path"] for h in shared] == [h["path"] for h in local]
    back = tmp_path / "back.sqlite3"
    assert main(["--index-url", pg_url, "index-export", str(back), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chunks"] == 5
    assert main(["--index-url", str(back), "status"]) == 1  # a file is not an index_url...
    assert "not a PostgreSQL address" in capsys.readouterr().err
    assert main(["--index-url", pg_url, "index-import", str(back), "--json"]) == 0  # ...but a source
    assert json.loads(capsys.readouterr().out)["files"] == 5
    copied = Index.open(back)
    try:
        assert copied.counts() == {"folders": 1, "files": 5, "chunks": 5}
    finally:
        copied.close()


def _counts_by_scan(store: PostgresIndex, lexemes: list[str]) -> dict[str, int]:
    counts = {}
    for t in lexemes:
        row = store.conn.execute(
            "SELECT COUNT(*) FROM chunks WHERE terms @@ %s::tsquery", (f"'{t}'",)
        ).fetchone()
        counts[t] = int(row[0]) if row else 0
    return counts


def test_word_statistics_follow_every_change_and_an_older_schema_is_upgraded(
    tmp_path: Path, pg_url: str
) -> None:
    root = _write_docs(tmp_path / "root")
    # A database at schema 1 (before the word statistics) with an index in it...
    with psycopg.connect(pg_url, autocommit=True) as conn:
        schema.migrate(conn, "test", target=1)
    old = PostgresIndex(
        psycopg.connect(pg_url, autocommit=True), pg_url, "laptop"
    )  # opened without migrating
    space = old.ensure_space("fake", 64)
    folder = old.add_folder(str(root))
    old.replace_file(
        folder_id=folder, path=str(root / "a.txt"), size=1, mtime=1, content_hash="a", space=space,
        chunks=[ChunkRecord(0, "brown fox river", None, 0, 15, 3)],
        vectors=np.ones((1, 64), dtype=np.float32) / 8,
    )  # fmt: skip
    old.close()
    # ...is upgraded on open, its statistics made from the chunks already there.
    store = PostgresIndex.open(pg_url, host="laptop")
    try:
        assert store.term_counts(["fox", "river", "cat"]) == {"fox": 1, "river": 1, "cat": 0}
        _index_folder(store, root)
        (root / "work/plan.md").write_text("The fox again, and a cat.", encoding="utf-8")
        (root / "notes/sub/poem.txt").unlink()
        _index_folder(store, root)
        words = ["fox", "river", "cat", "water", "brown", "the"]
        assert store.term_counts(words) == _counts_by_scan(store, words)
        total = store.conn.execute("SELECT COUNT(*), SUM(n_terms) FROM chunks").fetchone()
        assert store.chunk_total() == total[0]  # type: ignore[index]
        store.remove_folder(str(root))
        assert store.term_counts(words) == dict.fromkeys(words, 0) and store.chunk_total() == 0
    finally:
        store.close()


def test_share_command(tmp_path: Path, pg_server: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALSEARCH_TEST_EMBEDDER", "tests.fakes:FakeEmbedder")
    _roles(pg_server, pg_url)
    root = _write_docs(tmp_path / "root")
    assert main(["--index-url", pg_url, "index", str(root)]) == 0
    assert main(["--index-url", pg_url, "share", str(root), "team"]) == 0
    store = PostgresIndex.open(pg_url)
    try:
        assert [f["readers"] for f in store.all_folders()] == ["team"]
        assert main(["--index-url", pg_url, "share", str(root), "--private"]) == 0
        assert [f["readers"] for f in store.all_folders()] == [None]
        assert main(["--index-url", pg_url, "share", str(tmp_path), "team"]) == 1  # not an indexed folder
        assert main(["share", str(root), "team"]) == 1  # this computer's own index has no roles
    finally:
        store.close()
