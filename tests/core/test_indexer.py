from __future__ import annotations

import os
from pathlib import Path

import pytest

from localsearch.core.indexer import IndexControl, Indexer, IndexOptions, IndexProgress, Outcome
from localsearch.core.searcher import Searcher
from localsearch.core.storage import Index
from tests.fakes import FakeEmbedder


def _run(index: Index, embedder: FakeEmbedder, *roots: Path) -> IndexProgress:
    space = index.ensure_space(embedder.name, embedder.dimensions)
    indexer = Indexer(index, embedder, space, IndexOptions(chunk_tokens=40, chunk_overlap=8))
    *_, last = indexer.run(list(roots))
    return last


def _chunk_rows(index: Index, path: Path) -> list[tuple[int, str]]:
    return list(
        index.conn.execute(
            "SELECT c.id, c.text FROM chunks c JOIN files f ON f.id = c.file_id "
            "WHERE f.path = ? ORDER BY c.ordinal",
            (str(path),),
        )
    )


def _make_folder(root: Path) -> Path:
    docs = root / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "garden.txt").write_text(
        "Tomatoes need sun and water. Prune the vines weekly.\n", encoding="utf-8"
    )
    (docs / "sub" / "engine.md").write_text("# Engines\n\nChange the oil every ten thousand miles.\n")
    (docs / "latin1.txt").write_bytes("Crème brûlée à la française, très bon café.".encode("latin-1"))
    (docs / "blob.txt").write_bytes(b"\x00\x01\x02binary\x00" * 50)
    (docs / ".hidden.txt").write_text("never indexed")
    (docs / "image.png").write_bytes(b"\x89PNG")
    (docs / "node_modules").mkdir()
    (docs / "node_modules" / "x.txt").write_text("never indexed")
    return docs


def test_index_finds_files_records_failures_and_skips_junk(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    docs = _make_folder(tmp_path)
    last = _run(index, fake_embedder, docs)
    assert last.phase == "done"
    assert last.files_total == 4
    assert last.files_indexed == 3
    assert last.files_failed == 1
    paths = {r[0] for r in index.conn.execute("SELECT path FROM files")}
    assert str(docs / ".hidden.txt") not in paths and str(docs / "node_modules" / "x.txt") not in paths
    assert index.failures() == [(str(docs / "blob.txt"), "not text: the file holds binary data (NUL bytes)")]
    text = _chunk_rows(index, docs / "latin1.txt")[0][1]
    assert "Crème brûlée" in text


def test_reindexing_an_unchanged_folder_embeds_nothing(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    docs = _make_folder(tmp_path)
    _run(index, fake_embedder, docs)
    before = fake_embedder.embedded_sequences
    assert before > 0
    last = _run(index, fake_embedder, docs)
    assert fake_embedder.embedded_sequences == before
    assert last.files_unchanged == 4 and last.files_indexed == 0
    # A touched file with the same content is recognised by its hash, not re-embedded.
    os.utime(docs / "garden.txt", (1_000_000, 1_000_000))
    _run(index, fake_embedder, docs)
    assert fake_embedder.embedded_sequences == before


def test_editing_a_file_replaces_exactly_its_chunks(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    docs = _make_folder(tmp_path)
    _run(index, fake_embedder, docs)
    engine_before = _chunk_rows(index, docs / "sub" / "engine.md")
    garden = docs / "garden.txt"
    garden.write_text("Roses like acid soil and morning light.\n", encoding="utf-8")
    last = _run(index, fake_embedder, docs)
    assert last.files_indexed == 1
    assert [t for _, t in _chunk_rows(index, garden)] == ["Roses like acid soil and morning light."]
    assert _chunk_rows(index, docs / "sub" / "engine.md") == engine_before
    total = index.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    space = index.ensure_space(fake_embedder.name, fake_embedder.dimensions)
    assert index.conn.execute(f"SELECT COUNT(*) FROM {space.table_name}").fetchone()[0] == total


def test_deleted_files_leave_the_index(tmp_path: Path, index: Index, fake_embedder: FakeEmbedder) -> None:
    docs = _make_folder(tmp_path)
    _run(index, fake_embedder, docs)
    (docs / "garden.txt").unlink()
    last = _run(index, fake_embedder, docs)
    assert last.files_removed == 1
    assert index.file_state(str(docs / "garden.txt")) is None


def test_unreachable_root_keeps_its_index(tmp_path: Path, index: Index, fake_embedder: FakeEmbedder) -> None:
    docs = _make_folder(tmp_path)
    _run(index, fake_embedder, docs)
    count = index.counts()["files"]
    docs.rename(tmp_path / "elsewhere")
    last = _run(index, fake_embedder, docs)
    assert index.counts()["files"] == count
    assert any("not reachable" in m for m in last.messages)


def test_a_failed_file_is_retried_when_it_changes(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    docs = _make_folder(tmp_path)
    _run(index, fake_embedder, docs)
    (docs / "blob.txt").write_text("Now it is plain text about bicycles.")
    _run(index, fake_embedder, docs)
    assert index.failures() == []
    assert "bicycles" in _chunk_rows(index, docs / "blob.txt")[0][1]


def test_cancel_stops_between_files_and_keeps_what_was_done(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    docs = _make_folder(tmp_path)
    space = index.ensure_space(fake_embedder.name, fake_embedder.dimensions)
    done: list[int] = []
    control = IndexControl()
    indexer = Indexer(index, fake_embedder, space, IndexOptions(), control=control)
    for progress in indexer.run([docs]):
        if progress.phase == "indexing":
            done.append(progress.files_done)
            if len(done) >= 2:
                control.cancel()  # as the window's or the command line's cancel does
    assert progress.phase == "cancelled"
    assert 0 < index.counts()["files"] + len(index.failures()) < 4


def test_search_returns_one_result_per_file_with_its_best_chunk(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    docs = tmp_path / "d"
    docs.mkdir()
    long_text = "\n\n".join(f"Paragraph {i} about assorted filler topics number {i}." for i in range(30))
    (docs / "long.txt").write_text(long_text + "\n\nThe submarine dives under the arctic ice.")
    (docs / "other.txt").write_text("A submarine is a watercraft.")
    (docs / "third.txt").write_text("Unrelated words entirely.")
    _run(index, fake_embedder, docs)
    space = index.ensure_space(fake_embedder.name, fake_embedder.dimensions)
    hits = Searcher(index, fake_embedder, space).search("submarine arctic ice", limit=10)
    assert [h.name for h in hits][:1] == ["long.txt"]
    assert len({h.path for h in hits}) == len(hits) == 3
    assert "arctic" in hits[0].snippet
    assert hits[0].score > hits[1].score > hits[2].score


def test_each_outcome_is_counted_once_and_a_file_still_changing_not_yet() -> None:
    counters = {
        Outcome.INDEXED: "files_indexed",
        Outcome.REUSED: "files_reused",
        Outcome.UNCHANGED: "files_unchanged",
        Outcome.FAILED: "files_failed",
        Outcome.GONE: "files_removed",
    }
    for outcome, counter in counters.items():
        progress = IndexProgress(phase="indexing")
        Indexer._count(progress, outcome)
        assert progress.files_done == 1
        assert {name: getattr(progress, name) for name in counters.values()} == {
            name: int(name == counter) for name in counters.values()
        }
    with pytest.raises(ValueError):  # retried once it settles, then counted by what it became
        Indexer._count(IndexProgress(phase="indexing"), Outcome.UNSTABLE)
