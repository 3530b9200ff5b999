"""The same behaviour on both index backends: SQLite (the embedded default) and the shared
index on PostgreSQL + pgvector, against a real server (conftest.pg_server). Each test
runs on both (the `store` fixture), and one builds both from the same files and asserts
the very same JSON, so the backends cannot drift apart."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from localsearch.core.indexer import Indexer, IndexOptions, IndexProgress
from localsearch.core.pg.index import PostgresIndex
from localsearch.core.searcher import Searcher
from localsearch.core.storage import Filters, Index
from localsearch.core.store_protocol import IndexStore, NearestChunks
from tests.fakes import FakeEmbedder

DOCS = {
    "notes/invoice.txt": "Invoice XJ-4471 from Acme Tools is due on the last day of March.",
    "notes/garden.md": "# Garden\n\nThe tomatoes need water every morning. Prune the vines weekly.",
    "notes/sub/poem.txt": "The quick brown fox jumps over the lazy dog near the river bank.",
    "work/report.txt": "Quarterly revenue grew. The brown fox logo was redesigned for the river campaign.",
    "work/plan.md": "Plan: water the office plants, order new tools, renew the passport before travel.",
    "work/blob.txt": "\x00\x01binary",
}


def _write_docs(root: Path) -> Path:
    for name, text in DOCS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    os.utime(root / "notes/invoice.txt", (1_600_000_000, 1_600_000_000))
    os.utime(root / "work/report.txt", (1_700_000_000, 1_700_000_000))
    return root


def _run(store: Any, embedder: FakeEmbedder, *roots: Path) -> IndexProgress:
    space = store.ensure_space(embedder.name, embedder.dimensions)
    *_, last = Indexer(store, embedder, space, IndexOptions(chunk_tokens=64)).run(list(roots))
    return last


def _searcher(store: Any, embedder: FakeEmbedder) -> Searcher:
    return Searcher(store, embedder, store.ensure_space(embedder.name, embedder.dimensions))


def test_both_backends_satisfy_the_storage_protocol(tmp_path: Path, pg_url: str) -> None:
    sqlite_index: IndexStore = Index.open(tmp_path / "i.sqlite3")  # checked by mypy too
    pg_index: IndexStore = PostgresIndex.open(pg_url, host="laptop")
    try:
        assert isinstance(sqlite_index, IndexStore) and isinstance(pg_index, IndexStore)
        # Only the server has its own nearest-neighbour index for the meaning lane.
        assert isinstance(pg_index, NearestChunks) and not isinstance(sqlite_index, NearestChunks)
    finally:
        sqlite_index.close()
        pg_index.close()


def test_index_reindex_reuse_delete_and_failure(
    store: Any, tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    root = _write_docs(tmp_path / "root")
    first = _run(store, fake_embedder, root)
    assert (first.files_indexed, first.files_failed) == (5, 1)
    assert store.counts() == {"folders": 1, "files": 5, "chunks": 5}
    assert store.failures() == [
        (str(root / "work/blob.txt"), "not text: the file holds binary data (NUL bytes)")
    ]

    embedded = fake_embedder.embedded_sequences
    again = _run(store, fake_embedder, root)
    assert again.files_unchanged == 6 and again.files_indexed == 0
    assert fake_embedder.embedded_sequences == embedded

    # A copy is indexed from the stored vectors of the same content: nothing embedded.
    shutil.copy(root / "notes/garden.md", root / "notes/garden-copy.md")
    reused = _run(store, fake_embedder, root)
    assert reused.files_reused == 1 and fake_embedder.embedded_sequences == embedded
    assert len(store.file_chunk_ids(str(root / "notes/garden-copy.md"))) == 1

    # An edit replaces exactly that file's chunks; a deletion takes the file out.
    (root / "work/plan.md").write_text("Plan: learn the cello.", encoding="utf-8")
    (root / "notes/sub/poem.txt").unlink()
    edited = _run(store, fake_embedder, root)
    assert (edited.files_indexed, edited.files_removed) == (1, 1)
    assert store.file_state(str(root / "notes/sub/poem.txt")) is None
    [chunk] = store.file_chunk_ids(str(root / "work/plan.md"))
    hit = store.chunk_hit(chunk)
    assert hit is not None and hit.text == "Plan: learn the cello."

    # A failed file that becomes readable is indexed and leaves the failures.
    (root / "work/blob.txt").write_text("Now plain text about bicycles.", encoding="utf-8")
    _run(store, fake_embedder, root)
    assert store.failures() == []
    assert store.remove_folder(str(root)) and store.counts() == {"folders": 0, "files": 0, "chunks": 0}


QUERIES = [
    "water fox invoice passport tomatoes revenue",
    "brown fox",
    '"brown fox" river',
    "XJ-4471",
    "renewing passports",
    "nothing matches zyzzyva",
]


def _results(store: Any, root: Path) -> dict[str, Any]:
    searcher = _searcher(store, FakeEmbedder())
    found: dict[str, Any] = {}
    for mode in ("hybrid", "semantic", "keyword"):
        for query in QUERIES:
            found[f"{mode} {query}"] = [h.as_dict() for h in searcher.search(query, 10, mode=mode)]
        for name, filters in {
            "folder": Filters(folders=(str(root / "notes"),)),
            "extension": Filters(extensions=(".md",)),
            "dates": Filters(after=1_600_000_001, before=1_700_000_001),
        }.items():
            hits = searcher.search("water fox invoice passport revenue", 10, mode=mode, filters=filters)
            found[f"{mode} {name}"] = [h.as_dict() for h in hits]
    found["more_like"] = [h.as_dict() for h in searcher.more_like(str(root / "notes/sub/poem.txt"), 3)]
    found["more_like chunk"] = [
        h.as_dict() for h in searcher.more_like(str(root / "work/plan.md"), 3, chunk=0)
    ]
    return found


def test_search_gives_the_same_json_on_both_backends(tmp_path: Path, pg_url: str) -> None:
    root = _write_docs(tmp_path / "root")
    sqlite_index = Index.open(tmp_path / "i.sqlite3")
    pg_index = PostgresIndex.open(pg_url, host="laptop")
    try:
        for store in (sqlite_index, pg_index):
            _run(store, FakeEmbedder(), root)
        on_sqlite, on_postgres = _results(sqlite_index, root), _results(pg_index, root)
    finally:
        sqlite_index.close()
        pg_index.close()
    assert on_sqlite["hybrid brown fox"] and on_sqlite["keyword XJ-4471"] and on_sqlite["more_like"]
    for key, expected in on_sqlite.items():
        # The shared index says which machine holds each file; this computer's own index, "".
        assert {hit.pop("host") for hit in on_postgres[key]} <= {"laptop"}
        assert {hit.pop("host") for hit in expected} <= {""}
        # Same files, order, scores, snippets, marks, BM25 and keyword shares.
        assert json.dumps(on_postgres[key], sort_keys=True) == json.dumps(expected, sort_keys=True), key


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (lambda root: Filters(folders=(str(root / "notes"),)), {"invoice.txt", "garden.md", "poem.txt"}),
        (lambda root: Filters(folders=(str(root / "note"),)), set()),  # a prefix of a name is not a folder
        (lambda root: Filters(extensions=(".md",)), {"garden.md", "plan.md"}),
        (lambda root: Filters(before=1_650_000_000), {"invoice.txt"}),
        (lambda root: Filters(after=1_600_000_001, before=1_700_000_001), {"report.txt"}),
    ],
)
@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_filters_on_both_backends(
    store: Any, tmp_path: Path, filters: Any, expected: set[str], mode: str
) -> None:
    root = _write_docs(tmp_path / "root")
    _run(store, FakeEmbedder(), root)
    hits = _searcher(store, FakeEmbedder()).search(
        "water fox invoice passport tomatoes revenue", 20, mode=mode, filters=filters(root)
    )
    assert {h.name for h in hits} == expected


def test_words_lane_stems_phrases_and_counts_alike(store: Any, tmp_path: Path) -> None:
    root = _write_docs(tmp_path / "root")
    _run(store, FakeEmbedder(), root)
    searcher = _searcher(store, FakeEmbedder())
    assert [h.name for h in searcher.search("renewing", mode="keyword")] == ["plan.md"]
    assert {h.name for h in searcher.search('"brown fox"', mode="keyword")} == {"poem.txt", "report.txt"}
    assert [h.name for h in searcher.search('"fox brown"', mode="keyword")] == []
    assert store.term_counts(["fox", "renewing", "xj-4471", "zyzzyva"]) == {
        "fox": 2,
        "renewing": 1,
        "xj-4471": 1,
        "zyzzyva": 0,
    }
    assert store.index_tokens(["Renewing the café"]) == [["renew", "the", "cafe"]]


def test_more_like_this_on_both_backends(store: Any, tmp_path: Path) -> None:
    root = _write_docs(tmp_path / "root")
    _run(store, FakeEmbedder(), root)
    path = str(root / "notes/sub/poem.txt")
    hits = _searcher(store, FakeEmbedder()).more_like(path, 3)
    assert hits and path not in [h.path for h in hits]
    assert hits[0].name == "report.txt"
