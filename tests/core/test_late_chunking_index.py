"""Late chunking as an indexing option: the stored vectors are the engine's pooled spans of
one pass over each file, they live in their own space, search works on them, and an
engine abort costs only the file it was reading."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from localsearch.core import extract
from localsearch.core.chunking import Chunk, chunk_document
from localsearch.core.embedding import (
    LlamaEmbedder,
    late_windows,
    normalize_rows,
    reserved_tokens,
)
from localsearch.core.engine_process import ProcessEmbedder
from localsearch.core.indexer import IndexControl, IndexProgress, late_layout
from localsearch.core.service import LocalSearch, resolve_model_path
from localsearch.errors import ModelError
from localsearch.settings import Settings
from tests.fakes import FakeEmbedder

CHUNK_TOKENS = 48  # small chunks, so each file has several and their context matters

DOCS = {
    "lighthouse.txt": (
        "The lighthouse on the northern cape was built in 1871 from granite blocks. "
        "Its keeper lived in a cottage at the foot of the tower with his family. "
        "Every evening he climbed the spiral staircase to light the lamp. "
        "The lamp burned whale oil at first and later paraffin. "
        "In storms the beam could be seen thirty kilometres out at sea. "
        "It was automated in 1964, and the cottage became a small museum. "
        "Visitors can still climb it on summer weekends."
    ),
    "sourdough.md": (
        "# Sourdough\n\n"
        "A starter is a culture of wild yeast and lactic acid bacteria kept in flour and water. "
        "Feed it every day with equal weights of flour and water. "
        "It is ready when it doubles within six hours of a feed.\n\n"
        "Mix the flour and water first and let them rest for an hour. "
        "Then add the starter and salt and fold the dough every half hour. "
        "After shaping, it proves overnight in the fridge. "
        "Bake it in a covered pot at a high temperature for the best crust."
    ),
    # Longer than the model's 512-token context: read in more than one window.
    "history.txt": " ".join(
        f"In year {year} the village council met {n} times and discussed the bridge, the school "
        f"roof and the mill on the river; the minutes record {n * 3} motions and a long debate."
        for n, year in enumerate(range(1850, 1880), start=2)
    ),
}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _settings(late: bool) -> Settings:
    # Passages alone in the plain space (file_names adds the name; see test_file_names.py).
    return Settings(
        late_chunking=late, chunk_tokens=CHUNK_TOKENS, chunk_overlap=12, extract_workers=0, file_names=False
    )


def _index(service: LocalSearch, *roots: Path, control: IndexControl | None = None) -> IndexProgress:
    *_, last = service.index_paths(list(roots), control=control)
    return last


def _stored(service: LocalSearch, path: Path) -> tuple[list[str], np.ndarray]:
    """A file's chunk texts and vectors, in chunk order."""
    ids = service.index.file_chunk_ids(str(path))
    vectors = service.index.chunk_vectors(service.space, ids)
    texts = [hit.text for hit in (service.index.chunk_hit(i) for i in ids) if hit is not None]
    return texts, np.vstack([vectors[i] for i in ids])


def _raw_token_states(model_file: Path, stream: Sequence[int]) -> np.ndarray:
    """The model's last-layer output for each token of one pass over [CLS] stream [SEP],
    through llama-cpp-python's C API directly (not localsearch's engine): an independent
    reference for late chunks."""
    import ctypes

    import llama_cpp

    llama_cpp.llama_backend_init()
    model = llama_cpp.llama_model_load_from_file(
        str(model_file).encode(), llama_cpp.llama_model_default_params()
    )
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = params.n_batch = params.n_ubatch = 512
    params.n_threads = params.n_threads_batch = 2
    params.embeddings = True
    params.pooling_type = llama_cpp.LLAMA_POOLING_TYPE_NONE
    ctx = llama_cpp.llama_init_from_model(model, params)
    try:
        vocab = llama_cpp.llama_model_get_vocab(model)
        tokens = [llama_cpp.llama_vocab_bos(vocab), *stream, llama_cpp.llama_vocab_eos(vocab)]
        array = (llama_cpp.llama_token * len(tokens))(*tokens)
        assert llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(array, len(tokens))) == 0
        width = llama_cpp.llama_model_n_embd(model)
        pointer = ctypes.cast(llama_cpp.llama_get_embeddings(ctx), ctypes.POINTER(ctypes.c_float))
        return np.ctypeslib.as_array(pointer, shape=(len(tokens), width)).copy()
    finally:
        llama_cpp.llama_free(ctx)
        llama_cpp.llama_model_free(model)


def _chunks(path: Path, tokenize: object, max_tokens: int, overlap: int) -> list[Chunk]:
    """The chunks the indexer makes of `path` (same extractor, chunker and limits)."""
    document = extract.extract(path, path.read_bytes())
    return chunk_document(document, tokenize, max_tokens=max_tokens, overlap=overlap)  # type: ignore[arg-type]


# -- with the real default model ----------------------------------------------------------
@pytest.fixture(scope="module")
def late_home(tmp_path_factory: pytest.TempPathFactory, default_model: Path) -> Iterator[Path]:
    """One late-chunked index of DOCS, shared by the real-model tests that only read it."""
    root = tmp_path_factory.mktemp("late")
    folder = root / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    yield root


def test_stored_vectors_are_the_engines_late_chunks_of_each_file(late_home: Path) -> None:
    folder = late_home / "docs"
    with LocalSearch(_settings(True), db_path=late_home / "index.sqlite3") as service:
        last = _index(service, folder)
        assert (last.phase, last.files_indexed, last.files_failed) == ("done", 3, 0)
        assert service.space.model.endswith("+late")
        engine = service.embedder
        model_file = Path(getattr(engine, "model_path", resolve_model_path(service.settings)))
        max_tokens = CHUNK_TOKENS - reserved_tokens(engine)
        reference = LlamaEmbedder(model_file, max_tokens=CHUNK_TOKENS)
        try:
            expected_tokens = 0
            independent = 0
            for name in DOCS:
                path = folder / name
                chunks = _chunks(path, reference.tokenize, max_tokens, 12)
                assert len(chunks) > 1
                texts, stored = _stored(service, path)
                assert texts == [c.text for c in chunks]
                stream, spans = late_layout(chunks)
                # Each chunk's carried overlap is laid on the tail it repeats, once.
                assert len(stream) == sum(len(c.tokens) - c.overlap_tokens for c in chunks)
                late = reference.embed_late(stream, spans)
                np.testing.assert_allclose(stored, late, atol=2e-5)
                for chunk, (start, stop) in zip(chunks, spans, strict=True):
                    assert stream[start:stop] == list(chunk.tokens)  # each span is its chunk
                if len(stream) + 2 <= reference.late_tokens:
                    # One pass: the expectation from llama.cpp's own per-token outputs, read
                    # here without the engine, each chunk the mean of its tokens' rows.
                    states = _raw_token_states(model_file, stream)  # [CLS] stream [SEP]
                    expected = normalize_rows(
                        np.vstack([states[1 + a : 1 + b].mean(axis=0) for a, b in spans])
                    )
                    np.testing.assert_allclose(stored, expected, atol=1e-4)
                    independent += 1
                room = reference.late_tokens - reserved_tokens(reference)
                windows = late_windows(spans, room, len(stream))
                if name == "history.txt":
                    assert len(stream) > reference.late_tokens and len(windows) > 1
                expected_tokens += sum(stop - start + reference.special_tokens for start, stop, _ in windows)
                # Late chunks are not the chunks embedded alone: each carries the text read
                # with it (a chunk alone in the last window of a long file has no company).
                alone = reference.embed_tokens([c.tokens for c in chunks])
                agreement = (stored * alone).sum(axis=1)
                in_company = [i for _, _, members in windows if len(members) > 1 for i in members]
                assert len(in_company) >= len(chunks) - 1
                assert agreement[in_company].max() < 0.985 and agreement.min() > 0.4, (name, agreement)
            # Progress counts what the engine read: each window once, overlaps not twice.
            assert last.tokens_embedded == expected_tokens
            assert independent == 2  # lighthouse.txt and sourdough.md fit one pass
        finally:
            reference.close()


def test_search_works_end_to_end_on_late_chunks(late_home: Path) -> None:
    folder = late_home / "docs"
    db = late_home / "index.sqlite3"
    with LocalSearch(_settings(True), db_path=db) as service:
        if service.index.counts()["chunks"] == 0:  # run alone: build the index here
            _index(service, folder)
    # Queries are embedded as usual, by the query engine, and searched in the late space.
    with LocalSearch(_settings(True), db_path=db, for_queries=True) as searcher:
        for query, expected in (
            ("who looked after the beacon tower on the coast", "lighthouse.txt"),
            ("how often should I feed my yeast culture", "sourdough.md"),
            ("council minutes about repairing the bridge", "history.txt"),
        ):
            hits = searcher.search(query, limit=3, mode="semantic")
            assert hits and Path(hits[0].path).name == expected, (query, [h.path for h in hits])
        assert searcher.status()["late_chunking"] is True


def test_an_engine_abort_fails_only_that_file(tmp_path: Path, docs: Path, default_model: Path) -> None:
    # Named to come first: the files after it show that the engine restarts.
    (docs / "animals.txt").write_text(
        "The zoo opened a new enclosure. A zebra arrived from the savanna park last spring. "
        "Keepers say it has settled in well and visitors love it.",
        encoding="utf-8",
    )
    settings = _settings(True)
    model_file = resolve_model_path(settings)
    vocab = LlamaEmbedder(model_file, max_tokens=CHUNK_TOKENS)
    poison = vocab.tokenize("zebra")[0]
    vocab.close()
    engines: list[ProcessEmbedder] = []

    def factory(settings: Settings, for_queries: bool) -> ProcessEmbedder:
        engine = ProcessEmbedder(model_file, max_tokens=settings.chunk_tokens, abort_on_token=poison)
        engines.append(engine)
        return engine

    with LocalSearch(settings, db_path=tmp_path / "index.sqlite3", embedder_factory=factory) as service:
        last = _index(service, docs)
        assert (last.phase, last.files_indexed, last.files_failed) == ("done", 3, 1)
        [(path, reason)] = service.index.failures()
        assert Path(path).name == "animals.txt"
        assert "late chunking" in reason and "the zoo opened" in reason.lower()
        if sys.platform != "win32":
            assert "SIGABRT" in reason
        # The file was tried once more on a fresh engine (it aborted again), and the next
        # file got a fresh engine too.
        assert engines[0].restarts == 2
        for name in DOCS:
            assert service.index.file_chunk_ids(str(docs / name))


# -- where the model is not the point -------------------------------------------------------
class FakeLateEmbedder(FakeEmbedder):
    """The fake bag of words, with late chunking: each span's vector is its own words plus
    a share of the whole document's, so it differs from the span embedded alone."""

    name = "fake-late"
    late_tokens = 128

    def __init__(self) -> None:
        super().__init__()
        self.late_calls = 0

    def embed_late(
        self, tokens: Sequence[int], spans: Sequence[tuple[int, int]], role: str = "document"
    ) -> np.ndarray:
        self.late_calls += 1
        context = self.embed_tokens([list(tokens)])[0]
        own = self.embed_tokens([list(tokens[a:b]) for a, b in spans])
        return normalize_rows(own + 0.5 * context)


def _fake_service(db: Path, late: bool, engine: FakeEmbedder) -> LocalSearch:
    return LocalSearch(_settings(late), db_path=db, embedder_factory=lambda settings, queries: engine)


def test_switching_late_chunking_makes_a_new_space_and_re_embeds(tmp_path: Path, docs: Path) -> None:
    db = tmp_path / "index.sqlite3"
    engine = FakeLateEmbedder()
    with _fake_service(db, False, engine) as plain:
        assert _index(plain, docs).files_indexed == 3
        plain_space = plain.space
        assert plain.space_key == "all-minilm-l6-v2" and engine.late_calls == 0
        assert _index(plain, docs).files_unchanged == 3
    with _fake_service(db, True, engine) as late:
        assert late.space_key == "all-minilm-l6-v2+late"
        assert late.space.id != plain_space.id
        last = _index(late, docs)
        # Nothing is kept or reused from the other space: every file is embedded again.
        assert (last.files_indexed, last.files_reused, last.files_unchanged) == (3, 0, 0)
        assert engine.late_calls == 3
        path = docs / "sourdough.md"
        _, stored = _stored(late, path)
        chunks = _chunks(path, engine.tokenize, CHUNK_TOKENS - engine.special_tokens, 12)
        stream, spans = late_layout(chunks)
        np.testing.assert_allclose(stored, engine.embed_late(stream, spans), atol=1e-6)
        assert _index(late, docs).files_unchanged == 3
        # A copy is reused within the late space (its vectors were made the same way) ...
        shutil.copy(path, docs / "copy.md")
        assert _index(late, docs).files_reused == 1
        np.testing.assert_allclose(_stored(late, docs / "copy.md")[1], stored)
    (docs / "copy2.md").write_bytes(path.read_bytes())
    with _fake_service(db, False, engine) as plain:
        # ... and back in the plain space nothing late-chunked is reused: each content is
        # embedded once more, and its copies reuse that plain embedding.
        last = _index(plain, docs)
        assert (last.files_indexed, last.files_reused) == (3, 2)
        assert plain.space.id == plain_space.id
        alone = engine.embed_tokens([c.tokens for c in chunks])
        for name in ("sourdough.md", "copy.md", "copy2.md"):
            np.testing.assert_allclose(_stored(plain, docs / name)[1], alone, atol=1e-6)


def test_late_chunking_honours_cancel_between_files(tmp_path: Path, docs: Path) -> None:
    engine = FakeLateEmbedder()
    control = IndexControl()
    with _fake_service(tmp_path / "index.sqlite3", True, engine) as service:
        seen = []
        for progress in service.index_paths([docs], control=control):
            seen.append(progress.phase)
            if progress.files_done == 1:
                control.cancel()
        assert seen[-1] == "cancelled"
        assert service.index.counts()["files"] == 1 and engine.late_calls == 1
        last = _index(service, docs)  # a rerun picks up where it stopped
        assert (last.files_unchanged, last.files_indexed) == (1, 2)


def test_an_engine_without_late_chunking_is_refused(tmp_path: Path, docs: Path) -> None:
    with (
        _fake_service(tmp_path / "index.sqlite3", True, FakeEmbedder()) as service,
        pytest.raises(ModelError, match="late chunking"),
    ):
        _index(service, docs)


def test_layout_follows_the_chunkers_overlap_not_matching_tokens() -> None:
    def chunk(ordinal: int, tokens: list[int], overlap: int) -> Chunk:
        return Chunk(ordinal, "", None, 0, 0, tokens, overlap_tokens=overlap)

    # No overlap, yet the next chunk starts with the token the last one ended with: both
    # are in the document, and guessing from the tokens would read one of them away.
    stream, spans = late_layout([chunk(0, [1, 2, 3], 0), chunk(1, [3, 4], 0)])
    assert (stream, spans) == ([1, 2, 3, 3, 4], [(0, 3), (3, 5)])
    stream, spans = late_layout([chunk(0, [1, 2, 3, 4], 0), chunk(1, [3, 4, 5], 2), chunk(2, [6], 0)])
    assert (stream, spans) == ([1, 2, 3, 4, 5, 6], [(0, 4), (2, 5), (5, 6)])
    # Overlapping chunks map to one token stream (from the engine's tests of the layout).
    stream, spans = late_layout([chunk(0, [1, 2, 3, 4], 0), chunk(1, [3, 4, 5, 6], 2), chunk(2, [7, 8], 0)])
    assert stream == [1, 2, 3, 4, 5, 6, 7, 8]
    assert spans == [(0, 4), (2, 6), (6, 8)]
