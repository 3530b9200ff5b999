"""Hybrid, keyword and semantic search, filters and hostile input (fake embedder)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from localsearch.core import storage
from localsearch.core.indexer import Indexer, IndexOptions
from localsearch.core.query import parse_query
from localsearch.core.searcher import Searcher
from localsearch.core.storage import Filters, Index
from tests.fakes import FakeEmbedder, FixedQueryEmbedder

DOCS = {
    "notes/invoice.txt": "Invoice XJ-4471 from Acme Tools is due on the last day of March.",
    "notes/garden.md": "# Garden\n\nThe tomatoes need water every morning. Prune the vines weekly.",
    "notes/sub/poem.txt": "The quick brown fox jumps over the lazy dog near the river bank.",
    "work/report.txt": "Quarterly revenue grew. The brown fox logo was redesigned for the river campaign.",
    "work/plan.md": "Plan: water the office plants, order new tools, renew the passport before travel.",
}


@pytest.fixture
def searcher(tmp_path: Path, index: Index) -> Searcher:
    root = tmp_path / "root"
    for name, text in DOCS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    os.utime(root / "notes/invoice.txt", (1_600_000_000, 1_600_000_000))  # 2020-09-13
    os.utime(root / "work/report.txt", (1_700_000_000, 1_700_000_000))  # 2023-11-14
    embedder = FakeEmbedder()
    space = index.ensure_space(embedder.name, embedder.dimensions)
    for _ in Indexer(index, embedder, space, IndexOptions(chunk_tokens=64)).run([root]):
        pass
    s = Searcher(index, embedder, space)
    s.root = root  # type: ignore[attr-defined]
    return s


def _names(hits: list) -> list[str]:
    return [h.name for h in hits]


def test_exact_phrase_must_match_literally(searcher: Searcher) -> None:
    hits = searcher.search('"quick brown fox"', mode="keyword")
    assert _names(hits) == ["poem.txt"]  # report.txt has "brown fox" but not the phrase
    for mode in ("hybrid", "semantic"):
        assert _names(searcher.search('"quick brown fox" river', mode=mode)) == ["poem.txt"]
    assert searcher.search('"fox quick brown"', mode="hybrid") == []


def test_keyword_only_query_finds_its_file(searcher: Searcher) -> None:
    for mode in ("keyword", "hybrid"):
        assert _names(searcher.search("XJ-4471", mode=mode))[0] == "invoice.txt"


def test_stemming_finds_other_forms(searcher: Searcher) -> None:
    assert "plan.md" in _names(searcher.search("renewing passports", mode="keyword"))


def test_results_carry_score_snippet_offsets_and_marks(searcher: Searcher) -> None:
    hit = searcher.search("tomatoes water", mode="hybrid")[0]
    assert hit.name == "garden.md"
    assert 0 < hit.score <= 1 and hit.rank_score > 0
    marked = [hit.snippet[a:b].lower() for a, b in hit.highlights]
    assert "tomatoes" in marked and "water" in marked
    assert hit.page is None and hit.end_char > hit.start_char


def test_hybrid_ranks_files_found_by_both_lanes_first(searcher: Searcher) -> None:
    hybrid = searcher.search("brown fox river", mode="hybrid")
    assert set(_names(hybrid)[:2]) == {"poem.txt", "report.txt"}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (lambda root: Filters(folders=(str(root / "notes"),)), {"invoice.txt", "garden.md", "poem.txt"}),
        (lambda root: Filters(folders=(str(root / "notes" / "sub"),)), {"poem.txt"}),
        (lambda root: Filters(folders=(str(root / "note"),)), set()),  # a prefix of a name is not a folder
        (lambda root: Filters(extensions=(".md",)), {"garden.md", "plan.md"}),
        (lambda root: Filters(before=1_650_000_000), {"invoice.txt"}),
        (lambda root: Filters(after=1_600_000_001, before=1_700_000_001), {"report.txt"}),
    ],
)
@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_filters_include_and_exclude(searcher: Searcher, filters, expected: set[str], mode: str) -> None:  # type: ignore[no-untyped-def]
    query = "water fox invoice passport tomatoes revenue"
    hits = searcher.search(query, 20, mode=mode, filters=filters(searcher.root))  # type: ignore[attr-defined]
    # Every file holds a word of the query: keyword mode too finds each one the filter lets through.
    assert set(_names(hits)) == expected


def test_sort_by_date_puts_the_newest_first(searcher: Searcher) -> None:
    hits = searcher.search("invoice revenue fox water", 10, sort="date")
    times = [h.modified for h in hits]
    assert times == sorted(times, reverse=True)


def test_metrics_report_the_same_ranking(searcher: Searcher) -> None:
    cosine = searcher.search("brown fox", mode="semantic", metric="cosine")
    euclid = searcher.search("brown fox", mode="semantic", metric="euclidean")
    dot = searcher.search("brown fox", mode="semantic", metric="dot")
    assert _names(cosine) == _names(euclid) == _names(dot)
    for c, e, d in zip(cosine, euclid, dot, strict=True):
        assert e.score == pytest.approx(math.sqrt(2 - 2 * c.score), abs=1e-5)
        assert d.score == pytest.approx(c.score, abs=1e-6)


def test_more_like_this_excludes_the_file_itself(searcher: Searcher) -> None:
    path = str(searcher.root / "notes/sub/poem.txt")  # type: ignore[attr-defined]
    hits = searcher.more_like(path, 3)
    assert hits and path not in [h.path for h in hits]
    assert hits[0].name == "report.txt"


HOSTILE = [
    "",
    " ",
    '"',
    '""',
    '"unbalanced quote',
    "NEAR(fox river)",
    "fox NEAR river",
    "* fox*",
    "-fox",
    "fox AND OR NOT",
    "text:fox",
    "^fox",
    "(fox",
    "'; DROP TABLE chunks; --",
    "1 OR 1=1",
    "\x00\x01",
    "🦊 fox 狐狸",
    "word " * 2500,  # about 12 KB
    "a" * 10_000,
]


@pytest.mark.parametrize("query", HOSTILE)
@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_hostile_queries_never_raise(searcher: Searcher, query: str, mode: str) -> None:
    hits = searcher.search(query, 5, mode=mode)
    assert isinstance(hits, list)
    assert searcher.index.counts()["chunks"] > 0


def test_semantic_search_orders_by_cosine(index: Index) -> None:
    space = index.ensure_space("m", 3)
    folder = index.add_folder("/f")
    vectors = np.array([[1, 0, 0], [0.8, 0.6, 0], [0, 0, 1]], dtype=np.float32)
    for i, v in enumerate(vectors):
        index.replace_file(
            folder_id=folder,
            path=f"/f/{i}",
            size=1,
            mtime=1.0,
            content_hash=str(i),
            space=space,
            chunks=[storage.ChunkRecord(0, f"t{i}", None, 0, 2, 2)],
            vectors=v[None, :],
        )
    searcher = Searcher(index, FixedQueryEmbedder(vectors[0]), space)  # type: ignore[arg-type]
    hits = searcher.search("t", 3, mode="semantic")
    assert [h.path for h in hits] == ["/f/0", "/f/1", "/f/2"]
    assert [h.cosine for h in hits] == pytest.approx([1.0, 0.8, 0.0], abs=1e-6)


def test_parse_query_quotes_every_word() -> None:
    parsed = parse_query('fox NEAR "lazy dog" -cat*')
    assert parsed.phrases == ("lazy dog",)
    assert parsed.fts() == '("lazy dog") AND ("fox" OR "near" OR "cat" OR "lazy dog")'
    assert parse_query("the of").terms == ("the", "of")  # only stopwords: keep them


def test_keyword_index_follows_chunk_changes(index: Index) -> None:
    space = index.ensure_space("m", 2)
    folder = index.add_folder("/f")
    records = [storage.ChunkRecord(0, "alpha bravo", None, 0, 11, 4)]
    index.replace_file(
        folder_id=folder,
        path="/f/a",
        size=1,
        mtime=1,
        content_hash="1",
        space=space,
        chunks=records,
        vectors=np.ones((1, 2), dtype=np.float32),
    )
    assert len(index.keyword_chunks('"alpha"', 5)) == 1
    records = [storage.ChunkRecord(0, "charlie delta", None, 0, 13, 4)]
    index.replace_file(
        folder_id=folder,
        path="/f/a",
        size=1,
        mtime=2,
        content_hash="2",
        space=space,
        chunks=records,
        vectors=np.ones((1, 2), dtype=np.float32),
    )
    assert index.keyword_chunks('"alpha"', 5) == []
    assert len(index.keyword_chunks('"charlie"', 5)) == 1
    index.remove_folder("/f")
    assert index.keyword_chunks('"charlie"', 5) == []


@pytest.mark.parametrize("mode", ["hybrid", "semantic"])
def test_in_memory_vectors_give_the_same_results_as_sqlite_vec(searcher: Searcher, mode: str) -> None:
    kept = Searcher(searcher.index, searcher.embedder, searcher.space, keep_vectors=True)
    for query in ["brown fox river", "water plants", "invoice due", "passport"]:
        for filters in (Filters(), Filters(extensions=(".txt",))):
            exact = searcher.search(query, 5, mode=mode, filters=filters)
            cached = kept.search(query, 5, mode=mode, filters=filters)
            assert [(h.path, h.chunk) for h in cached] == [(h.path, h.chunk) for h in exact]
            assert [h.score for h in cached] == pytest.approx([h.score for h in exact], abs=1e-5)


def test_in_memory_vectors_follow_index_changes(searcher: Searcher, tmp_path: Path) -> None:
    from localsearch.core.storage import Index as Idx

    kept = Searcher(searcher.index, searcher.embedder, searcher.space, keep_vectors=True)
    kept._codes._min_interval = 0  # type: ignore[union-attr]
    assert "zebra.txt" not in _names(kept.search("zebra stripes savanna", 10, mode="semantic"))
    other = Idx.open(
        searcher.index.db_path if hasattr(searcher.index, "db_path") else tmp_path / "index.sqlite3"
    )
    root = searcher.root  # type: ignore[attr-defined]
    (root / "zebra.txt").write_text("Zebra stripes on the savanna.")
    for _ in Indexer(other, searcher.embedder, searcher.space, IndexOptions(chunk_tokens=64)).run([root]):
        pass
    other.close()
    assert _names(kept.search("zebra stripes savanna", 10, mode="semantic"))[0] == "zebra.txt"


def _clustered(rng: np.random.Generator, n: int, dimensions: int) -> np.ndarray:
    """Vectors around a few hundred centres, like embeddings of related passages."""
    centres = rng.standard_normal((max(8, n // 20), dimensions)).astype(np.float32)
    rows = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, dimensions))
    return storage_normalize(rows.astype(np.float32))


def storage_normalize(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


@pytest.mark.parametrize("keep_vectors", [False, True])
def test_two_stage_search_equals_exact_search(index: Index, keep_vectors: bool) -> None:
    """Binary-code candidates rescored with full vectors give the exact cosine ranking."""
    rng = np.random.default_rng(7)
    dimensions, files, per_file = 96, 600, 4
    space = index.ensure_space("m", dimensions)
    folder = index.add_folder("/d")
    vectors = _clustered(rng, files * per_file, dimensions)
    for f in range(files):
        index.replace_file(
            folder_id=folder,
            path=f"/d/{f}.txt",
            size=1,
            mtime=1.0,
            content_hash=str(f),
            space=space,
            chunks=[storage.ChunkRecord(i, f"text {f} {i}", None, 0, 1, 3) for i in range(per_file)],
            vectors=vectors[f * per_file : (f + 1) * per_file],
        )
    searcher = Searcher(index, FakeEmbedder(), space, keep_vectors=keep_vectors)
    ids, matrix = index.all_vectors(space)
    paths = {cid: index.chunk_hit(int(cid)).path for cid in ids}  # type: ignore[union-attr]
    agree = 0
    # Queries near stored passages (cosine about 0.7), as a real query is to its answers.
    near = vectors[rng.integers(0, len(vectors), 40)]
    queries = storage_normalize(near + 0.1 * rng.standard_normal(near.shape).astype(np.float32))
    for query in queries:
        scores = matrix @ query
        exact: list[str] = []
        for row in np.argsort(-scores):
            if paths[ids[row]] not in exact:
                exact.append(paths[ids[row]])
            if len(exact) == 10:
                break
        got = [h.path for h in searcher._semantic(query, 10, Filters())][:40]
        first_ten: list[str] = []
        for path in got:
            if path not in first_ten:
                first_ten.append(path)
        agree += len(set(first_ten[:10]) & set(exact))
        # Every score is the exact cosine of its chunk.
        top = searcher._semantic(query, 10, Filters())[0]
        assert 1.0 - top.distance == pytest.approx(float(scores.max()), abs=1e-5)
    assert agree / (10 * len(queries)) >= 0.99


def test_term_counts_use_the_index_stemmer(searcher: Searcher) -> None:
    counts = searcher.index.term_counts(["brown", "renewing", "zzzz", "the"])
    assert counts["brown"] == 2  # poem.txt and report.txt
    assert counts["renewing"] == 1  # "renew" in plan.md, stemmed alike
    assert counts["zzzz"] == 0
    assert counts["the"] >= 4


def test_common_words_rank_but_rare_words_decide_matches(searcher: Searcher) -> None:
    """With a tiny postings budget only the rarest term selects chunks; the others still
    rank them."""
    searcher.KEYWORD_POSTINGS = 1
    hits = searcher.search("river fox passport", mode="keyword")
    assert _names(hits) == ["plan.md"]  # "passport" is the rarest term: only its chunk matches
    searcher.KEYWORD_POSTINGS = 10_000
    assert set(_names(searcher.search("river fox passport", mode="keyword"))) == {
        "plan.md",
        "poem.txt",
        "report.txt",
    }
