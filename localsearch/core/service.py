"""The application service used by both the command line and the GUI.

One instance per thread: it owns one database connection and, once needed, one
embedding context. Nothing here imports Qt.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from localsearch import paths
from localsearch.core.backends import describe as describe_index
from localsearch.core.backends import open_index
from localsearch.core.embedding import Embedder, LlamaEmbedder, default_threads, gpu_offload_available
from localsearch.core.engine_process import ProcessEmbedder
from localsearch.core.indexer import (
    BUSY_REASON,
    SETTLE_SECONDS,
    IndexControl,
    Indexer,
    IndexOptions,
    IndexProgress,
)
from localsearch.core.models.default import Report
from localsearch.core.models.spec import ModelSpec, keys_read_otherwise, resolve_model
from localsearch.core.models.spec import space_key as model_space_key
from localsearch.core.power import PowerPolicy
from localsearch.core.searcher import Searcher, SearchHit
from localsearch.core.storage import NO_FILTERS, Filters, Space
from localsearch.settings import Settings
from localsearch.settings import load as load_settings

EmbedderFactory = Callable[[Settings, bool], Embedder]


def resolve_model_path(settings: Settings, report: Report | None = None) -> Path:
    """The GGUF file for the configured model (see models.spec.resolve_model)."""
    return resolve_model(settings, report=report or (lambda message: None)).path


def model_engine(model: ModelSpec, settings: Settings, for_queries: bool = False) -> Embedder:
    """The engine the app runs `model` in: for queries, or for indexing documents."""
    if for_queries:
        # A query is a few tokens: one thread embeds it in about 5 ms, while two threads
        # spin against a running indexer for 200 ms (measured on 2 cores). It stays in
        # this process: a child would add a start-up second and a round trip per query for
        # no safety gained, since the aborts seen come from context geometry and oversized
        # batches, which check_geometry refuses and the engine's input cut rules out.
        # Read into memory, not mapped: a model file truncated in place while the window
        # runs would otherwise kill this process (SIGBUS) at the next query.
        return LlamaEmbedder(model.engine_options(threads=1, max_tokens=settings.chunk_tokens, mmap=False))
    # Documents are embedded in a child process: a llama.cpp abort costs the file in
    # flight (recorded as failed), not the indexing run. A context the size of one chunk
    # measured fastest. On the CPU, one single-thread context per core (data parallel,
    # bounded by memory): no thread waits at ggml's barriers for a partner that lost its
    # core to another program (bench/results/engine_throughput*.json). A GPU takes the
    # whole batch itself: one context.
    cores = settings.threads or default_threads()
    if cores > 1 and not gpu_offload_available():
        options = model.engine_options(threads=1, contexts=cores, max_tokens=settings.chunk_tokens)
    else:
        options = model.engine_options(threads=settings.threads, max_tokens=settings.chunk_tokens)
    return ProcessEmbedder(options)


def default_embedder_factory(settings: Settings, for_queries: bool = False) -> Embedder:
    return model_engine(resolve_model(settings), settings, for_queries)


class LocalSearch:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        db_path: Path | None = None,
        embedder_factory: EmbedderFactory | None = None,
        keep_vectors: bool = False,
        for_queries: bool = False,
    ) -> None:
        """embedder_factory: makes the engine from the settings (tests give a fake); by
        default the app's engine for this service's model, resolved once (model()).
        keep_vectors: hold the index's vectors in memory for fast repeated searches
        (the window's search lane, batch searches); one-shot commands skip the load.
        for_queries: this instance embeds queries, not documents (a lighter engine)."""
        self.settings = settings or load_settings()
        self.db_path = db_path or paths.index_db_path()
        # A damaged file is found here, set aside and replaced (folders kept); `recovered`
        # says so, for the caller to tell the user and re-index. The check reads the whole
        # file, a cost that grows with the index, so a one-shot search makes it only when
        # the file was written since it last passed; the window's lanes, batch searches,
        # indexing and status always make it.
        self.index = open_index(
            self.settings, self.db_path, check=True if keep_vectors or not for_queries else "if changed"
        )
        self.recovered = self.index.recovered
        self._embedder_factory = embedder_factory
        self._model: ModelSpec | None = None
        self._embedder: Embedder | None = None
        self._space: Space | None = None
        self._searcher: Searcher | None = None
        self._keep_vectors = keep_vectors
        self._for_queries = for_queries

    def close(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
        self.index.close()
        close = getattr(self._embedder, "close", None)
        if close:
            close()

    def __enter__(self) -> LocalSearch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def model(self, report: Report | None = None) -> ModelSpec:
        """The configured model with its files, resolved on first use and kept: the engine,
        the space and the command line all read this one. The first call may build the
        offline default model or slice a file, saying so through `report`."""
        if self._model is None:
            self._model = resolve_model(self.settings, report=report or (lambda message: None))
        return self._model

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            if self._embedder_factory is None:
                self._embedder = model_engine(self.model(), self.settings, self._for_queries)
            else:
                self._embedder = self._embedder_factory(self.settings, self._for_queries)
        return self._embedder

    @property
    def space(self) -> Space:
        if self._space is None:
            native = self.embedder.dimensions
            wanted = self.settings.dimensions
            dimensions = wanted if 0 < wanted < native else native
            self._space = self.index.ensure_space(self.space_key, dimensions, self.settings.vector_precision)
        return self._space

    @property
    def space_key(self) -> str:
        """What the index's vectors are keyed by (models.spec.space_key): the model, its
        layers, late chunking and output head. Queries are embedded alike in every space.
        Known without loading the model, so status() never builds or opens one."""
        if self._model is not None:
            return self._model.space_key
        return model_space_key(self.settings)

    def earlier_spaces(self) -> list[Space]:
        """This model's spaces of the same size whose passages were read another way (file
        names, late chunking) and that still hold vectors: those of the files not yet embedded
        again since the setting changed, or since an upgrade changed its default. Searches
        read them meanwhile, so meaning search never stops while the new space fills."""
        size = self.space.dimensions
        keys = keys_read_otherwise(self.settings, self.space_key)
        spaces = [self.index.find_space(key, size) for key in keys]
        return [s for s in spaces if s is not None and s.dimensions == size and self.index.code_count(s)]

    def index_paths(
        self,
        roots: Iterable[Path | str],
        *,
        control: IndexControl | None = None,
    ) -> Iterator[IndexProgress]:
        control = control or self.control()
        yield from self._alone(lambda: self._indexer(control).run([Path(r) for r in roots]), control)

    def control(self) -> IndexControl:
        """A pause, resume and cancel handle for one indexing run, following the power
        setting (on battery: pause, slow down or go on)."""
        return IndexControl(PowerPolicy(self.settings.on_battery))

    def _alone(
        self, run: Callable[[], Iterator[IndexProgress]], control: IndexControl
    ) -> Iterator[IndexProgress]:
        """Run an indexing pass holding the index's writer lock: while another process
        (the window's indexer, the command line) holds it, wait, saying so, then go on."""
        lock = self.index.writer_lock()
        if not lock.acquire():
            holder = lock.holder()
            waiting = IndexProgress(
                phase="scanning",
                paused=BUSY_REASON,
                messages=[
                    "Another localsearch is indexing this index"
                    + (f" (process {holder})" if holder else "")
                    + "; this run waits until it is done."
                ],
            )
            yield waiting
            while not lock.acquire():
                if control.cancelled:
                    waiting.phase, waiting.paused = "cancelled", None
                    yield waiting
                    return
                control.wait(0.5)
        try:
            yield from run()
        finally:
            lock.release()

    def _indexer(self, control: IndexControl) -> Indexer:
        settings = self.settings
        options = IndexOptions(
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap,
            max_file_bytes=settings.max_file_mb * 1024 * 1024,
            exclude=tuple(settings.exclude),
            use_gitignore=settings.use_gitignore,
            extract_workers=settings.extract_workers,
            settle_seconds=SETTLE_SECONDS,
            late_chunking=settings.late_chunking,
            file_names=settings.file_names,
        )
        return Indexer(self.index, self.embedder, self.space, options, control=control)

    def update_paths(
        self, changed: Iterable[Path | str], *, control: IndexControl | None = None
    ) -> Iterator[IndexProgress]:
        """Re-read changed files or folders below the indexed folders (what a watcher reports)."""
        control = control or self.control()
        yield from self._alone(lambda: self._indexer(control).update(changed), control)

    def reindex_all(self, *, control: IndexControl | None = None) -> Iterator[IndexProgress]:
        yield from self.index_paths([Path(p) for _, p in self.index.folders()], control=control)

    def remove_paths(self, roots: Iterable[Path | str]) -> list[str]:
        removed = []
        for root in roots:
            key = os.path.abspath(root)
            if self.index.remove_folder(key):
                removed.append(key)
        return removed

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            self._searcher = Searcher(
                self.index,
                self.embedder,
                self.space,
                keep_vectors=self._keep_vectors,
                earlier=self.earlier_spaces(),
            )
        return self._searcher

    def search(
        self,
        query: str,
        limit: int = 10,
        *,
        mode: str = "hybrid",
        filters: Filters = NO_FILTERS,
        metric: str = "cosine",
        sort: str = "relevance",
    ) -> list[SearchHit]:
        if self.index.is_empty():
            return []
        return self.searcher.search(query, limit, mode=mode, filters=filters, metric=metric, sort=sort)

    def more_like(
        self,
        path: str,
        limit: int = 10,
        *,
        chunk: int | None = None,
        filters: Filters = NO_FILTERS,
        metric: str = "cosine",
    ) -> list[SearchHit]:
        if self.index.is_empty():
            return []
        key = os.path.abspath(path)
        return self.searcher.more_like(key, limit, chunk=chunk, filters=filters, metric=metric)

    def counts(self) -> dict[str, int]:
        """How many folders, files and chunks the index holds."""
        return self.index.counts()

    def is_empty(self) -> bool:
        """Whether no passage is indexed yet (cheap: one row looked at)."""
        return self.index.is_empty()

    def folders(self) -> list[str]:
        return [p for _, p in self.index.folders()]

    def status(self, *, storage: bool = True) -> dict[str, object]:
        """What the index holds. `storage` adds what it costs on disk, which reads every page
        of the database (dbstat): the window's frequent refreshes leave it out."""
        counts = self.index.counts()
        space = self._space or self.index.find_space(self.space_key, self.settings.dimensions)
        found: dict[str, object] = {
            "folders": self.folders(),
            "files": counts["files"],
            "chunks": counts["chunks"],
            "model": self.settings.model,
            "dimensions": space.dimensions if space else None,
            "late_chunking": self.settings.late_chunking,
            "failed": [{"path": p, "reason": r} for p, r in self.index.failures()],
            "database": describe_index(self.settings, self.db_path),
            "recovered": self.recovered,
        }
        if storage:
            found["storage"] = self._storage(space, counts["chunks"])
        return found

    def data_version(self) -> int:
        """Changes whenever another connection (another process) commits to the index."""
        return self.index.data_version()

    def _storage(self, space: Space | None, chunks: int) -> dict[str, object]:
        """What each chunk costs: its vectors by design, and the whole index on disk."""
        sizes = self.index.storage_bytes()
        total = sum(sizes.values())
        per_table = {name: size for name, size in sizes.items() if size}
        return {
            "precision": space.precision if space else self.settings.vector_precision,
            "vector_bytes_per_chunk": space.bytes_per_vector if space else None,
            "index_bytes": total,
            "bytes_per_chunk": round(total / chunks) if chunks else None,
            "tables": per_table,
        }
