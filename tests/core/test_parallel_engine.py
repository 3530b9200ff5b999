"""The data-parallel engine: several single-thread contexts over one model give the vectors
of one context, in order; their memory is bounded; an abort in one context costs only the
input that caused it; the indexer feeds such an engine several files at a time and still
commits, pauses and cancels file by file."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from localsearch.core.embedding import EngineCrashed, LlamaEmbedder
from localsearch.core.engine_process import ProcessEmbedder
from localsearch.core.indexer import IndexControl, Indexer, IndexOptions
from localsearch.core.service import LocalSearch, default_embedder_factory
from localsearch.core.storage import Index
from localsearch.settings import Settings
from tests.fakes import FakeEmbedder

WORDS = "aspirin stroke heart cell protein gene tumour virus dose trial blood brain".split()


def _texts(count: int) -> list[str]:
    """Inputs of many lengths (3 to about 230 tokens), so a call makes several batches."""
    return [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(3 + (i * 37) % 220)) for i in range(count)]


@pytest.fixture(scope="module")
def one_context(default_model: Path) -> Iterator[LlamaEmbedder]:
    engine = LlamaEmbedder(default_model, max_tokens=256, threads=1)
    yield engine
    engine.close()


def test_several_contexts_give_the_vectors_of_one_in_order(
    default_model: Path, one_context: LlamaEmbedder
) -> None:
    texts = _texts(40)
    expected = one_context.embed_texts(texts)
    engine = LlamaEmbedder(default_model, max_tokens=256, threads=1, contexts=3)
    try:
        assert engine.contexts == 3 and engine.threads == 1
        lanes: list[int] = []
        engine.before_batch = lambda indices, lane: lanes.append(lane) if indices else None
        np.testing.assert_allclose(engine.embed_texts(texts), expected, atol=1e-6)
        assert len(set(lanes)) > 1  # the batches really went to several contexts
        # Roles (prompts) and a single query-sized call, on the caller's thread.
        query = engine.embed_tokens([engine.tokenize("aspirin")], role="query")
        np.testing.assert_allclose(
            query, one_context.embed_tokens([one_context.tokenize("aspirin")]), atol=1e-6
        )
        # Late chunking runs on its own context beside them.
        tokens = engine.tokenize(texts[5])
        spans = [(0, 10), (10, len(tokens))]
        np.testing.assert_allclose(
            engine.embed_late(tokens, spans), one_context.embed_late(tokens, spans), atol=1e-6
        )
    finally:
        engine.close()


def _peak_mb(model: Path, contexts: int, budget: int) -> tuple[int, float]:
    """(contexts made, peak RSS in MB) of a fresh process that builds and uses the engine."""
    script = (
        "import json, resource, sys\n"
        "from localsearch.core.embedding import LlamaEmbedder\n"
        f"e = LlamaEmbedder({str(model)!r}, max_tokens=256, threads=1, contexts={contexts}, "
        f"context_memory_mb={budget})\n"
        "e.embed_texts(['aspirin lowers the risk of stroke ' * 40] * 16)\n"
        "print(json.dumps([e.contexts, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    made, peak = json.loads(out)
    return int(made), float(peak)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in kilobytes")
def test_the_contexts_memory_is_bounded_whatever_their_number(default_model: Path) -> None:
    single, single_peak = _peak_mb(default_model, 1, 0)
    many, many_peak = _peak_mb(default_model, 16, 100)
    assert single == 1 and 2 <= many < 16
    # The contexts beyond the first fit the budget (a context's own pages are measured
    # with a margin for allocator slack).
    assert many_peak - single_peak <= 100 + 25


def test_an_abort_in_one_context_costs_its_batch_and_the_engine_restarts(
    default_model: Path, one_context: LlamaEmbedder
) -> None:
    poison = one_context.tokenize("zebra")[0]
    texts = [f"{word} " * 200 for word in WORDS[:6]]
    with ProcessEmbedder(
        default_model, max_tokens=256, threads=1, contexts=2, abort_on_token=poison
    ) as engine:
        assert engine.contexts == 2
        good = engine.embed_texts(texts)
        np.testing.assert_allclose(good, one_context.embed_texts(texts), atol=1e-6)
        with pytest.raises(EngineCrashed, match="zebra zebra"):
            engine.embed_texts([*texts[:3], "zebra " * 200, *texts[3:]])
        # The next call starts a fresh child with its contexts and gets the same answers.
        np.testing.assert_allclose(engine.embed_texts(texts), good, atol=1e-6)
        assert engine.restarts == 1 and engine.contexts == 2


def test_the_app_indexes_with_one_single_thread_context_per_core(default_model: Path) -> None:
    engine = default_embedder_factory(Settings(threads=2), False)
    try:
        assert isinstance(engine, ProcessEmbedder)
        assert (engine.options.contexts, engine.options.threads, engine.contexts) == (2, 1, 2)
    finally:
        engine.close()  # type: ignore[attr-defined]


class ParallelFake(FakeEmbedder):
    """The fake engine, saying it has two contexts: the indexer sends it groups of files."""

    contexts = 2
    batch_tokens = 32

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[int] = []

    def embed_tokens(self, sequences: Sequence[Sequence[int]], role: str = "document") -> np.ndarray:
        self.requests.append(len(sequences))
        return super().embed_tokens(sequences, role)


def _folder(root: Path, count: int = 24) -> Path:
    docs = root / "docs"
    docs.mkdir()
    for i in range(count):
        (docs / f"note{i:02}.txt").write_text(
            f"Note {i}: " + " ".join(WORDS[i % 7 :] + WORDS[: i % 5]) + ".\n"
        )
    return docs


def _vectors(index: Index, embedder: FakeEmbedder) -> dict[str, np.ndarray]:
    space = index.ensure_space(embedder.name, embedder.dimensions)
    rows = list(
        index.conn.execute(
            "SELECT c.id, f.path, c.ordinal FROM chunks c JOIN files f ON f.id = c.file_id ORDER BY f.path"
        )
    )
    vectors = index.chunk_vectors(space, [row[0] for row in rows])
    return {f"{path}#{ordinal}": vectors[chunk_id] for chunk_id, path, ordinal in rows}


def _index(index: Index, embedder: FakeEmbedder, docs: Path, control: IndexControl | None = None) -> Indexer:
    space = index.ensure_space(embedder.name, embedder.dimensions)
    return Indexer(index, embedder, space, IndexOptions(chunk_tokens=40, chunk_overlap=8), control=control)


def test_the_indexer_embeds_several_files_per_request_with_the_same_vectors(tmp_path: Path) -> None:
    docs = _folder(tmp_path)
    grouped, plain = ParallelFake(), FakeEmbedder()
    with (
        closing(Index.open(tmp_path / "grouped.sqlite3")) as a,
        closing(Index.open(tmp_path / "plain.sqlite3")) as b,
    ):
        *_, last = _index(a, grouped, docs).run([docs])
        *_, plain_last = _index(b, plain, docs).run([docs])
        assert last.files_indexed == plain_last.files_indexed == 24
        assert last.tokens_embedded == plain_last.tokens_embedded
        assert len(grouped.requests) < 24 and max(grouped.requests) > 1
        mine, theirs = _vectors(a, grouped), _vectors(b, plain)
        assert mine.keys() == theirs.keys() and len(mine) == 24
        for key, vector in mine.items():
            np.testing.assert_allclose(vector, theirs[key], atol=1e-6)


def test_pause_and_cancel_still_act_between_files(tmp_path: Path) -> None:
    docs = _folder(tmp_path)
    embedder = ParallelFake()
    control = IndexControl()
    with closing(Index.open(tmp_path / "index.sqlite3")) as index:
        phases: list[str] = []
        run = _index(index, embedder, docs, control).run([docs])
        for progress in run:
            phases.append(progress.phase)
            if progress.phase == "indexing" and progress.files_done == 3 and "paused" not in phases:
                control.pause()
                paused = next(run)
                assert paused.paused == "paused" and paused.files_done == 3  # waits mid-group
                phases.append("paused")
                control.resume()
            if progress.phase == "indexing" and progress.files_done == 5:
                control.cancel()
        assert phases[-1] == "cancelled"
        # Only whole files were committed: each indexed file has its one chunk.
        files = index.conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        chunks = index.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        assert 5 <= files < 24 and chunks == files
        # A new run picks up the rest.
        *_, last = _index(index, embedder, docs).run([docs])
        assert last.files_indexed + last.files_unchanged == 24 and last.files_indexed == 24 - files


def test_a_file_that_kills_a_grouped_request_costs_only_itself(
    tmp_path: Path, default_model: Path, one_context: LlamaEmbedder
) -> None:
    docs = _folder(tmp_path, 16)
    (docs / "note07.txt").write_text("A zebra has black and white stripes.")
    poison = one_context.tokenize("zebra")[0]
    engines: list[ProcessEmbedder] = []

    def factory(settings: Settings, for_queries: bool = False) -> ProcessEmbedder:
        engine = ProcessEmbedder(
            default_model, max_tokens=256, threads=1, contexts=2, batch_tokens=256, abort_on_token=poison
        )
        engines.append(engine)
        return engine

    settings = Settings(chunk_tokens=256)
    with LocalSearch(settings, db_path=tmp_path / "index.sqlite3", embedder_factory=factory) as service:
        progress = list(service.index_paths([docs]))[-1]
        assert progress.files_indexed == 15 and progress.files_failed == 1
        failed = service.status()["failed"]
        assert isinstance(failed, list) and [f["path"] for f in failed] == [str(docs / "note07.txt")]
        assert "zebra" in failed[0]["reason"]
    # The group that held it died once; then that file alone, twice (tried once more).
    assert engines[0].restarts >= 2
