"""Passages embedded after their file's name words (IndexOptions.file_names): only the
vector sees the name; the stored text, snippets and keyword lane do not."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from localsearch.core.indexer import Indexer, IndexOptions, name_words
from localsearch.core.service import LocalSearch
from localsearch.core.storage import Index
from localsearch.settings import Settings
from tests.fakes import FakeEmbedder


@pytest.mark.parametrize(
    ("file_name", "words"),
    [
        ("performance-review-notes.md", "performance review notes"),
        ("2024-02-12-budget-review.md", "budget review"),
        ("10009203.txt", ""),  # an id says nothing
        ("todo.txt", "todo"),
        ("myCamelCase_File.tar.gz", "my camel case file tar"),
        (".bashrc", "bashrc"),
        ("README", "readme"),
        ("Résumé 2023.pdf", "résumé"),
    ],
)
def test_name_words(file_name: str, words: str) -> None:
    assert name_words(file_name) == words


class RecordingEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.sequences: list[list[str]] = []

    def embed_tokens(self, sequences: Sequence[Sequence[int]], role: str = "document") -> np.ndarray:
        self.sequences += [[self._words[t] for t in s] for s in sequences]
        return super().embed_tokens(sequences, role)


def _index(index: Index, root: Path, options: IndexOptions) -> RecordingEmbedder:
    embedder = RecordingEmbedder()
    space = index.ensure_space(embedder.name, embedder.dimensions)
    for _ in Indexer(index, embedder, space, options).run([root]):
        pass
    return embedder


def test_the_vector_reads_the_name_and_nothing_else_does(index: Index, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "apartment-move.md").write_text("Book the van, pack the kitchen, forward the post.")
    (root / "10009203.txt").write_text("Gene expression in the liver.")
    long_text = " ".join(f"word{i}" for i in range(300))
    (root / "long-notes.txt").write_text(long_text)
    embedder = _index(index, root, IndexOptions(chunk_tokens=40, chunk_overlap=8, file_names=True))
    by_first = {s[0]: s for s in embedder.sequences}
    assert by_first["apartment"][:3] == ["apartment", "move", "book"]
    assert by_first["gene"][0] == "gene"  # no words in an id: nothing added
    # A full chunk gives up its last tokens to the name, never going past the chunk size.
    long_chunks = [s for s in embedder.sequences if s[:2] == ["long", "notes"]]
    assert long_chunks and all(len(s) <= 40 - embedder.special_tokens for s in long_chunks)
    assert long_chunks[0][2] == "word0"
    # Stored text and the keyword lane know nothing of the name.
    texts = [t for (t,) in index.conn.execute("SELECT text FROM chunks")]
    assert not any("apartment" in t for t in texts)
    assert index.keyword_chunks('"apartment"', 10) == []
    # The stored vector is the one of the name and the text together.
    space = index.ensure_space(embedder.name, embedder.dimensions)
    (chunk_id,) = [c for c, t in index.conn.execute("SELECT id, text FROM chunks") if t.startswith("Book")]
    expected = FakeEmbedder.embed_texts(
        embedder, ["apartment move Book the van, pack the kitchen, forward the post."]
    )
    assert np.allclose(index.chunk_vectors(space, [chunk_id])[chunk_id], expected[0], atol=1e-6)


def test_without_file_names_the_chunk_alone_is_embedded(index: Index, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "apartment-move.md").write_text("Book the van, pack the kitchen, forward the post.")
    embedder = _index(index, root, IndexOptions(chunk_tokens=40, chunk_overlap=8))
    assert embedder.sequences[0][0] == "book"


def test_the_space_says_how_passages_were_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Vectors made with and without the names never meet: each recipe is its own space,
    and changing the setting re-embeds (see Indexer: a file in another space is embedded)."""
    assert Settings().file_names
    with LocalSearch(settings=Settings()) as ls:
        assert ls.space_key == "all-minilm-l6-v2+names"
    with LocalSearch(settings=Settings(file_names=False)) as ls:
        assert ls.space_key == "all-minilm-l6-v2"
    with LocalSearch(settings=Settings(late_chunking=True)) as ls:
        assert ls.space_key == "all-minilm-l6-v2+late"


EVERYDAY = Path(__file__).resolve().parents[2] / "bench" / "everyday" / "docs"
MOVING_FOLDER = [
    "notes/apartment-move.md",
    "notes/spare-keys.txt",
    "meetings/hoa-annual.md",
    "notes/car-service.md",
]


def test_a_file_is_found_by_what_its_name_says(tmp_path: Path, default_model: Path) -> None:
    """Real model: "Moving out of Elm Street" never says house or checklist; its name,
    apartment-move.md, brings it closer to the query than its text alone does."""
    docs = tmp_path / "docs"
    for name in MOVING_FOLDER:
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_bytes((EVERYDAY / name).read_bytes())
    found = {}
    for file_names in (True, False):
        settings = Settings(file_names=file_names)
        with LocalSearch(settings, db_path=tmp_path / f"index-{file_names}.sqlite3", for_queries=True) as ls:
            for _ in ls.index_paths([docs]):
                pass
            found[file_names] = ls.search("checklist for changing house", 4)
    with_names = found[True]
    assert with_names[0].name == "apartment-move.md"
    cosine = {
        flag: next(h.cosine for h in hits if h.name == "apartment-move.md") for flag, hits in found.items()
    }
    assert cosine[True] > cosine[False]


def test_a_copy_reuses_vectors_only_under_the_same_name_words(index: Index, tmp_path: Path) -> None:
    """Copies reuse vectors only where the name's words are the same too: a copy under
    another name is embedded with its own name, so the index never depends on which copy
    was indexed first (a killed and resumed run ends where a clean one does)."""
    root = tmp_path / "docs"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    text = "Book the van, pack the kitchen, forward the post."
    (root / "a" / "apartment-move.md").write_text(text)
    options = IndexOptions(chunk_tokens=40, chunk_overlap=8, file_names=True)
    _index(index, root, options)
    (root / "b" / "apartment-move.md").write_text(text)  # same name words: reused
    (root / "b" / "moving-day.md").write_text(text)  # other words: embedded with them
    embedder = RecordingEmbedder()
    space = index.ensure_space(embedder.name, embedder.dimensions)
    *_, last = Indexer(index, embedder, space, options).run([root])
    assert (last.files_reused, last.files_indexed) == (1, 1)
    assert [s[:2] for s in embedder.sequences] == [["moving", "day"]]
    vectors = {}
    for path in ("a/apartment-move.md", "b/apartment-move.md", "b/moving-day.md"):
        (cid,) = [
            c
            for (c,) in index.conn.execute(
                "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = ?",
                (str(root / path),),
            )
        ]
        vectors[path] = index.chunk_vectors(space, [cid])[cid]
    assert np.allclose(vectors["a/apartment-move.md"], vectors["b/apartment-move.md"])
    assert not np.allclose(vectors["a/apartment-move.md"], vectors["b/moving-day.md"])
