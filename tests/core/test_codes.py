"""Binary codes: the layout sqlite-vec reads, the asymmetric shortlist, and a long-lived
search lane's in-memory codes, which stay equal to the database's while another
connection (the indexing child) rewrites files."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from localsearch.core import codes as codes_module
from localsearch.core.codes import CodeCache, binary_codes, shortlist
from localsearch.core.searcher import Searcher
from localsearch.core.storage import ChunkRecord, Index, Space
from tests.fakes import FixedQueryEmbedder

DIMENSIONS = 64
FILES = 10000


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _store(index: Index, folder_id: int, space: Space, path: str, text: str, vector: np.ndarray) -> None:
    index.replace_file(
        folder_id=folder_id,
        path=path,
        size=len(text),
        mtime=1.0,
        content_hash=path + text,
        space=space,
        chunks=[ChunkRecord(0, text, None, 0, len(text), 4)],
        vectors=vector.reshape(1, -1),
    )


def test_code_cache_follows_a_rewritten_file_whose_chunk_ids_were_the_highest(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite3"
    rng = np.random.default_rng(7)
    topic = _unit(rng.standard_normal(DIMENSIONS))
    writer = Index.open(db)  # the indexing side: its own connection, as the child has
    folder_id = writer.add_folder("/docs")
    space = writer.ensure_space("fixed", DIMENSIONS)
    with writer.transaction():
        for i in range(FILES):
            _store(
                writer,
                folder_id,
                space,
                f"/docs/file{i:05d}.txt",
                f"file {i}",
                _unit(rng.standard_normal(DIMENSIONS)),
            )
    # The note saved last holds the highest chunk id; first about the opposite of the topic,
    # so its old code is as far as a code can be from the new one.
    _store(writer, folder_id, space, "/docs/note.txt", "old note", -topic)

    reader = Index.open(db)
    searcher = Searcher(reader, FixedQueryEmbedder(topic), space, keep_vectors=True)
    try:
        assert "note.txt" not in [h.name for h in searcher.search("topic", 5, mode="semantic")]
        cache = searcher._codes
        assert cache is not None and len(cache.ids) == FILES + 1

        _store(writer, folder_id, space, "/docs/note.txt", "new note on the topic", topic)
        time.sleep(1.1)  # the cache catches up at most once a second
        hits = searcher.search("topic", 5, mode="semantic")

        # Every code the cache holds for a live chunk is that chunk's code in the database.
        ids, codes = reader.all_codes(space)
        stored = dict(zip(ids.tolist(), (bytes(c) for c in codes), strict=True))
        words = -(-space.code_bytes // 8)
        cached_codes = np.ascontiguousarray(cache.columns[:words].T).view(np.uint8)[:, : space.code_bytes]
        stale = [
            int(i)
            for i, code in zip(cache.ids, cached_codes, strict=True)
            if int(i) in stored and stored[int(i)] != bytes(code)
        ]
        assert stale == []
        assert set(stored) <= set(cache.ids.tolist())
        # The shortlist is a small part of the index, so a stale code would hide the note.
        assert Searcher.PRESELECT * Searcher.CANDIDATES < FILES
        assert hits and hits[0].name == "note.txt"
    finally:
        searcher.close()
        reader.close()
        writer.close()


def test_binary_codes_are_sqlite_vecs(index: Index) -> None:
    vector = np.random.default_rng(3).standard_normal(56).astype(np.float32)
    ours = binary_codes(vector)[0].tobytes()
    theirs = index.conn.execute("SELECT vec_quantize_binary(?)", (vector.tobytes(),)).fetchone()[0]
    assert ours == theirs


def test_shortlist_scores_codes_against_the_query_vector() -> None:
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((300, 20)).astype(np.float32)
    query = rng.standard_normal(20).astype(np.float32)
    codes = binary_codes(vectors)
    expected = (vectors > 0).astype(np.float32) @ query
    best = set(np.argsort(-expected)[:25].tolist())
    assert set(shortlist(np.arange(300), codes, query, 25)) == best


def test_nearest_codes_over_several_blocks_are_the_closest_by_hamming() -> None:
    """CodeCache.nearest counts distances block by block: across block edges too, it
    returns n of the chunks nearest the query, each with its own code."""
    rng = np.random.default_rng(11)
    total = 2 * codes_module._BLOCK + 123
    codes = binary_codes(rng.standard_normal((total, 384)).astype(np.float32))
    cache = CodeCache()
    cache.ids, cache.columns = np.arange(total) * 3 + 1, CodeCache._words(codes)
    query = binary_codes(rng.standard_normal(384).astype(np.float32))[0]
    distances = np.unpackbits(codes ^ query, axis=1).sum(axis=1)
    for n in (1, 5000, total, total + 10):
        ids, found = cache.nearest(query, n)
        rows = (ids - 1) // 3
        assert len(set(ids.tolist())) == len(ids) == min(n, total)
        assert (found == codes[rows]).all()
        assert sorted(distances[rows].tolist()) == sorted(distances.tolist())[: min(n, total)]
