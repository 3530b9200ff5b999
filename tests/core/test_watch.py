"""Watching: the watcher reports changed paths; Indexer.update applies just those."""

from __future__ import annotations

import os
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
