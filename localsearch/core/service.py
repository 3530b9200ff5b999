"""The application service used by both the command line and the GUI.

One instance per thread: it owns one database connection and, once needed, one
embedding context. Nothing here imports Qt.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from localsearch import paths
from localsearch.core.embedding import Embedder, LlamaEmbedder
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
from localsearch.core.power import PowerPolicy
from localsearch.core.searcher import Searcher, SearchHit
from localsearch.core.storage import NO_FILTERS, Filters, Index, Space
from localsearch.errors import ModelError
from localsearch.settings import Settings
from localsearch.settings import load as load_settings

EmbedderFactory = Callable[[Settings, bool], Embedder]


def resolve_model_path(settings: Settings, report: Report | None = None) -> Path:
    """The GGUF file for the configured model: a catalog name (built, downloaded, converted
    or imported; "NAME.TYPE" picks a weight type), an imported model's name, or a .gguf path.
    With `layers` set, the sliced file (made on demand). Builds the offline default if needed."""
    from localsearch.core.models.manager import resolve_model_file

    return resolve_model_file(settings.model, layers=settings.layers, report=report or (lambda message: None))


def model_prompts(name: str) -> tuple[str, str]:
    """The (query, document) prompts the catalog gives the model a setting names (any
    spelling the model manager accepts); none when the model is unknown."""
    from localsearch.core.models.manager import catalog_entry

    try:
        entry = catalog_entry(name)
    except ModelError:  # an unreadable catalog must not stop search
        return "", ""
    return (entry.query_prompt, entry.document_prompt) if entry else ("", "")


def _role_adapters(
    name: str, path: Path, query_prompt: str, document_prompt: str
) -> tuple[dict[str, Path], str, str]:
    """A task-adapter model's (jina-embeddings-v3) adapter file per role, and each role's
    prompt: the catalog's, else the one its adapter carries. Raises ModelError when the
    model should have adapters and lacks one (never embeds silently without)."""
    from localsearch.core.models.manager import role_adapters

    found = role_adapters(name, path)
    query_prompt = query_prompt or (found["query"].prompt_prefix if found else "")
    document_prompt = document_prompt or (found["document"].prompt_prefix if found else "")
    return {role: info.path for role, info in found.items()}, query_prompt, document_prompt


def default_embedder_factory(settings: Settings, for_queries: bool = False) -> Embedder:
    from localsearch.core.models.manager import output_head_file

    path = resolve_model_path(settings)
    query_prompt, document_prompt = model_prompts(settings.model)
    # A model with output heads (stella) runs the one `dimensions` picks, for both roles.
    head = output_head_file(settings.model, settings.dimensions)
    # A model with task adapters (jina-embeddings-v3) runs one per role.
    adapters, query_prompt, document_prompt = _role_adapters(
        settings.model, path, query_prompt, document_prompt
    )
    if for_queries:
        # A query is a few tokens: one thread embeds it in about 5 ms, while two threads
        # spin against a running indexer for 200 ms (measured on 2 cores). It stays in
        # this process: a child would add a start-up second and a round trip per query for
        # no safety gained, since the aborts seen come from context geometry and oversized
        # batches, which check_geometry refuses and the engine's input cut rules out.
        return LlamaEmbedder(
            path,
            name=settings.model,
            threads=1,
            max_tokens=settings.chunk_tokens,
            query_prefix=query_prompt,
            document_prefix=document_prompt,
            adapters=adapters,
            head=head,
            # Read into memory, not mapped: a model file truncated in place while the
            # window runs would otherwise kill this process (SIGBUS) at the next query.
            mmap=False,
        )
    # Documents are embedded in a child process: a llama.cpp abort costs the file in
    # flight (recorded as failed), not the indexing run. A context the size of one chunk
    # measured fastest.
    return ProcessEmbedder(
        path,
        name=settings.model,
        threads=settings.threads,
        max_tokens=settings.chunk_tokens,
        query_prefix=query_prompt,
        document_prefix=document_prompt,
        adapters=adapters,
        head=head,
    )


class LocalSearch:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        db_path: Path | None = None,
        embedder_factory: EmbedderFactory = default_embedder_factory,
        keep_vectors: bool = False,
        for_queries: bool = False,
    ) -> None:
        """keep_vectors: hold the index's vectors in memory for fast repeated searches
        (the window's search lane, batch searches); one-shot commands skip the load.
        for_queries: this instance embeds queries, not documents (a lighter engine)."""
        self.settings = settings or load_settings()
        self.db_path = db_path or paths.index_db_path()
        # A damaged file is found here, set aside and replaced (folders kept); `recovered`
        # says so, for the caller to tell the user and re-index. The check reads the whole
        # file, a cost that grows with the index, so a one-shot search makes it only when
        # the file was written since it last passed; the window's lanes, batch searches,
        # indexing and status always make it.
        self.index = Index.open(self.db_path, check=True if keep_vectors or not for_queries else "if changed")
        self.recovered = self.index.recovered
        self._embedder_factory = embedder_factory
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

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
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
        """What the index's vectors are keyed by: the model, how many of its layers run (a
        sliced model's vectors are not comparable with the whole model's), and "+late" for
        late chunking (passages pooled from a pass over the whole document). Changing any
        of them makes a new space and re-embeds, so no search compares vectors made two ways.
        Queries are embedded alike in every space."""
        key = self.settings.model
        if self.settings.layers:
            key += f"@{self.settings.layers}L"
        if self.settings.late_chunking:
            key += "+late"
        elif self.settings.file_names:
            key += "+names"  # passages embedded after their file's name words
        return key + self._head_suffix()

    def _head_suffix(self) -> str:
        """'#head<d>' when the model runs an output head: each head's vectors are their own
        space (a 768 head cut to 700 never meets the 1024 head's vectors)."""
        from localsearch.core.models.manager import output_head

        head = output_head(self.settings.model, self.settings.dimensions)
        return f"#head{head}" if head else ""

    def index_paths(
        self,
        roots: Iterable[Path | str],
        *,
        cancelled: Callable[[], bool] = lambda: False,
        control: IndexControl | None = None,
    ) -> Iterator[IndexProgress]:
        control = control or self._control()
        yield from self._alone(
            lambda: self._indexer(cancelled, control).run([Path(r) for r in roots]), control
        )

    def _control(self) -> IndexControl:
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

    def _indexer(
        self, cancelled: Callable[[], bool] = lambda: False, control: IndexControl | None = None
    ) -> Indexer:
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
        control = control or self._control()
        return Indexer(self.index, self.embedder, self.space, options, cancelled=cancelled, control=control)

    def update_paths(
        self, changed: Iterable[Path | str], *, control: IndexControl | None = None
    ) -> Iterator[IndexProgress]:
        """Re-read changed files or folders below the indexed folders (what a watcher reports)."""
        control = control or self._control()
        yield from self._alone(lambda: self._indexer(control=control).update(changed), control)

    def reindex_all(self, *, cancelled: Callable[[], bool] = lambda: False) -> Iterator[IndexProgress]:
        yield from self.index_paths([Path(p) for _, p in self.index.folders()], cancelled=cancelled)

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
            self._searcher = Searcher(self.index, self.embedder, self.space, keep_vectors=self._keep_vectors)
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
        if self.index.counts()["chunks"] == 0:
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
        if self.index.counts()["chunks"] == 0:
            return []
        key = os.path.abspath(path)
        return self.searcher.more_like(key, limit, chunk=chunk, filters=filters, metric=metric)

    def folders(self) -> list[str]:
        return [p for _, p in self.index.folders()]

    def status(self) -> dict[str, object]:
        counts = self.index.counts()
        space = self._space or self.index.find_space(self.space_key, self.settings.dimensions)
        return {
            "folders": self.folders(),
            "files": counts["files"],
            "chunks": counts["chunks"],
            "model": self.settings.model,
            "dimensions": space.dimensions if space else None,
            "late_chunking": self.settings.late_chunking,
            "failed": [{"path": p, "reason": r} for p, r in self.index.failures()],
            "database": str(self.db_path),
            "recovered": self.recovered,
            "storage": self._storage(space, counts["chunks"]),
        }

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
