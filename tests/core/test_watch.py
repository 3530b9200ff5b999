"""Watching: the watcher reports changed paths; Indexer.update applies just those."""

from __future__ import annotations

import os
import time
from pathlib import Path

from localsearch.core.indexer import Indexer, IndexOptions
from localsearch.core.searcher import Searcher
from localsearch.core.storage import Index
from localsearch.core.watch import FolderWatcher
from tests.fakes import FakeEmbedder


def _setup(tmp_path: Path, index: Index, embedder: FakeEmbedder) -> tuple[Indexer, Searcher, Path]:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("apples and pears")
    (root / "sub" / "b.txt").write_text("boats on the river")
    space = index.ensure_space(embedder.name, embedder.dimensions)
    indexer = Indexer(index, embedder, space, IndexOptions())
    for _ in indexer.run([root]):
        pass
    return indexer, Searcher(index, embedder, space), root


def _apply(indexer: Indexer, *paths: Path) -> None:
    for _ in indexer.update(paths):
        pass


def _names(searcher: Searcher, query: str) -> list[str]:
    return [h.name for h in searcher.search(query, 10, mode="keyword")]


def test_update_reflects_create_edit_rename_move_and_delete(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    indexer, searcher, root = _setup(tmp_path, index, fake_embedder)
    (root / "c.md").write_text("cherries in summer")
    _apply(indexer, root / "c.md")
    assert _names(searcher, "cherries") == ["c.md"]

    (root / "a.txt").write_text("apricots now")
    _apply(indexer, root / "a.txt")
    assert _names(searcher, "apricots") == ["a.txt"] and _names(searcher, "pears") == []

    (root / "c.md").rename(root / "sub" / "moved.md")
    _apply(indexer, root / "c.md", root / "sub" / "moved.md")
    assert _names(searcher, "cherries") == ["moved.md"]

    (root / "sub" / "b.txt").unlink()
    _apply(indexer, root / "sub" / "b.txt")
    assert _names(searcher, "boats") == []

    restored = root / "sub" / "b.txt"
    restored.write_text("boats on the river")
    _apply(indexer, restored)
    assert _names(searcher, "boats") == ["b.txt"]


def test_update_of_a_deleted_folder_removes_everything_below_it(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    indexer, searcher, root = _setup(tmp_path, index, fake_embedder)
    for path in (root / "sub").iterdir():
        path.unlink()
    (root / "sub").rmdir()
    _apply(indexer, root / "sub")
    assert _names(searcher, "boats") == []
    assert _names(searcher, "apples") == ["a.txt"]


def test_update_ignores_paths_outside_indexed_folders_and_hidden_files(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    indexer, searcher, root = _setup(tmp_path, index, fake_embedder)
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("zebras")
    (root / ".secret.txt").write_text("zebras")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "z.txt").write_text("zebras")
    _apply(indexer, outside, root / ".secret.txt", root / "node_modules" / "z.txt", root / "node_modules")
    assert _names(searcher, "zebras") == []


def test_an_unchanged_file_is_not_embedded_again(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    indexer, _, root = _setup(tmp_path, index, fake_embedder)
    before = fake_embedder.embedded_sequences
    os.utime(root / "a.txt")
    _apply(indexer, root / "a.txt", root)
    assert fake_embedder.embedded_sequences == before


def test_watcher_reports_changes_in_a_batch_after_a_quiet_moment(tmp_path: Path) -> None:
    root = tmp_path / "w"
    (root / "sub").mkdir(parents=True)
    (root / "old.txt").write_text("x")
    watcher = FolderWatcher([str(root)])
    watcher.start()
    try:
        (root / "new.txt").write_text("hello")
        with open(root / "new.txt", "a") as handle:
            handle.write(" again")
        (root / "old.txt").rename(root / "sub" / "renamed.txt")
        batch = watcher.next_batch(quiet=0.3, timeout=10)
        assert str(root / "new.txt") in batch
        assert str(root / "old.txt") in batch and str(root / "sub" / "renamed.txt") in batch
        (root / "new.txt").unlink()
        assert str(root / "new.txt") in watcher.next_batch(quiet=0.3, timeout=10)
        assert watcher.next_batch(quiet=0.1, timeout=0.5) == set()
    finally:
        watcher.stop()


def test_watching_a_missing_folder_is_refused_quietly(tmp_path: Path) -> None:
    watcher = FolderWatcher([str(tmp_path / "missing")])
    assert watcher.watch(str(tmp_path / "missing")) is False


def _two_roots(tmp_path: Path, index: Index, embedder: FakeEmbedder) -> tuple[Indexer, Searcher, Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "a.txt").write_text("apples and pears")
    (second / "b.txt").write_text("boats on the river")
    space = index.ensure_space(embedder.name, embedder.dimensions)
    indexer = Indexer(index, embedder, space, IndexOptions())
    for _ in indexer.run([first, second]):
        pass
    return indexer, Searcher(index, embedder, space), first, second


def test_a_move_across_indexed_folders_reuses_vectors(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    indexer, searcher, first, second = _two_roots(tmp_path, index, fake_embedder)
    before = fake_embedder.embedded_sequences
    (first / "a.txt").rename(second / "a-moved.txt")
    _apply(indexer, first / "a.txt", second / "a-moved.txt")
    assert fake_embedder.embedded_sequences == before
    hits = searcher.search("apples", 10, mode="keyword")
    assert [h.path for h in hits] == [str(second / "a-moved.txt")]
    folder_of = dict(
        index.conn.execute("SELECT f.path, d.path FROM files f JOIN folders d ON d.id = f.folder_id")
    )
    assert folder_of[str(second / "a-moved.txt")] == str(second)


def test_a_root_that_disappears_keeps_its_index_until_it_returns(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    indexer, searcher, root = _setup(tmp_path, index, fake_embedder)
    watcher = FolderWatcher([str(root)])
    watcher.start()
    try:
        unplugged = tmp_path / "unplugged"
        root.rename(unplugged)  # the drive goes away
        _apply(indexer, root, root / "a.txt", root / "sub" / "b.txt")  # what the watcher reports
        assert _names(searcher, "apples") == ["a.txt"] and _names(searcher, "boats") == ["b.txt"]
        assert watcher.check_roots([str(root)]) == []  # gone: no longer watched
        (unplugged / "a.txt").write_text("apricots while away")
        (unplugged / "sub" / "b.txt").unlink()
        unplugged.rename(root)  # it comes back, changed meanwhile
        assert watcher.check_roots([str(root)]) == [str(root)]
        _apply(indexer, root)  # reconciled in full
        assert _names(searcher, "apricots") == ["a.txt"] and _names(searcher, "boats") == []
        # And it is watched again.
        watcher.next_batch(quiet=0.2, timeout=0.5)
        (root / "back.txt").write_text("welcome back")
        assert str(root / "back.txt") in watcher.next_batch(quiet=0.2, timeout=10)
    finally:
        watcher.stop()


def test_live_watching_reflects_every_kind_of_change_in_search(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    """The real watcher feeding Indexer.update, as `localsearch watch` and the window do."""
    indexer, searcher, first, second = _two_roots(tmp_path, index, fake_embedder)
    watcher = FolderWatcher([str(first), str(second)])
    watcher.start()

    def where(word: str) -> list[str]:
        return [h.path for h in searcher.search(word, 10, mode="keyword")]

    def settle(word: str, expected: list[Path]) -> None:
        """Apply the watcher's batches until search shows the change. (A move between two
        watched folders arrives as two events from two emitters, the deletion up to half a
        second after the creation.)"""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            batch = watcher.next_batch(quiet=0.3, timeout=1.0)
            if batch:
                _apply(indexer, *(Path(p) for p in batch))
            if where(word) == [str(p) for p in expected]:
                return
        assert where(word) == [str(p) for p in expected]

    try:
        (first / "new.md").write_text("cherries in summer")  # create
        settle("cherries", [first / "new.md"])
        (first / "new.md").write_text("damsons in autumn")  # edit
        settle("damsons", [first / "new.md"])
        assert where("cherries") == []
        (first / "new.md").rename(first / "renamed.md")  # rename
        settle("damsons", [first / "renamed.md"])
        (first / "renamed.md").rename(second / "moved.md")  # move across folders
        settle("damsons", [second / "moved.md"])
        saved = (second / "moved.md").read_bytes()
        (second / "moved.md").unlink()  # delete
        settle("damsons", [])
        (second / "moved.md").write_bytes(saved)  # restore
        settle("damsons", [second / "moved.md"])
        (first / "folder").mkdir()  # a whole folder, moved to the other root
        (first / "folder" / "deep.txt").write_text("elderberries deep inside")
        settle("elderberries", [first / "folder" / "deep.txt"])
        (first / "folder").rename(second / "folder")
        settle("elderberries", [second / "folder" / "deep.txt"])
    finally:
        watcher.stop()


def test_an_empty_mount_point_keeps_the_index(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    """An unmounted drive leaves an empty folder behind: that is not 'every file deleted'."""
    indexer, searcher, root = _setup(tmp_path, index, fake_embedder)
    root.rename(tmp_path / "mounted-elsewhere")
    root.mkdir()
    for _ in indexer.run([root]):
        pass
    _apply(indexer, root)
    assert _names(searcher, "apples") == ["a.txt"] and _names(searcher, "boats") == ["b.txt"]
    (root / "new.txt").write_text("a new file in a real, not empty, folder")
    _apply(indexer, root)
    assert _names(searcher, "apples") == []
