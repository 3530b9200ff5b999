"""Indexing: scan roots, reconcile with the database, extract, chunk, embed, store.

Written as a generator of progress objects so the command line can print them and the
GUI can turn them into signals. Every file is committed in its own transaction, so an
interrupted run loses at most the file in flight and a rerun picks up where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from localsearch.core import extract
from localsearch.core.chunking import chunk_document
from localsearch.core.embedding import Embedder, truncate_dimensions
from localsearch.core.storage import ChunkRecord, Index, Space
from localsearch.errors import ExtractionError, UserFacingError

log = logging.getLogger(__name__)

# Folders that hold tools' state rather than a person's documents.
SKIPPED_DIRS = {
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    "__pycache__",
    ".venv",
    "venv",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".cache",
    ".idea",
    ".vscode",
}


@dataclass
class IndexProgress:
    phase: str  # "scanning", "indexing", "done"
    root: str = ""
    files_total: int = 0
    files_done: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_failed: int = 0
    files_removed: int = 0
    chunks_added: int = 0
    tokens_embedded: int = 0
    current: str | None = None
    elapsed: float = 0.0
    messages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "messages"}


@dataclass(frozen=True)
class IndexOptions:
    chunk_tokens: int = 256
    chunk_overlap: int = 32
    max_file_bytes: int = 50 * 1024 * 1024
    dimensions: int = 0


def eligible(root: Path, path: Path) -> bool:
    """Whether scanning `root` would index `path` (same rules as scan)."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    if any(part.startswith(".") or part in SKIPPED_DIRS for part in parts):
        return False
    return extract.supported(path) and not path.is_symlink()


def scan(root: Path) -> Iterator[Path]:
    """Supported files under root (or root itself), never following links out of it."""
    if root.is_file():
        if extract.supported(root):
            yield root
        return
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(directory, name)
            if extract.supported(path) and not path.is_symlink():
                yield path


class Indexer:
    def __init__(
        self,
        index: Index,
        embedder: Embedder,
        space: Space,
        options: IndexOptions,
        *,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.space = space
        self.options = options
        self.cancelled = cancelled
        self.max_tokens = min(options.chunk_tokens, embedder.max_tokens) - embedder.special_tokens

    def run(self, roots: Iterable[Path]) -> Iterator[IndexProgress]:
        started = time.monotonic()
        progress = IndexProgress(phase="scanning")
        for root in roots:
            root = Path(os.path.abspath(root))
            progress.root = str(root)
            folder_id = self.index.add_folder(str(root))
            if not root.exists():
                # An unplugged drive or a moved folder: keep its index until it returns.
                progress.messages.append(f"{root} is not reachable; its index is kept as it was")
                continue
            yield progress
            files = list(scan(root))
            on_disk = {str(p) for p in files}
            for known in self.index.file_paths(folder_id):
                if known not in on_disk:
                    self.index.delete_file(known)
                    progress.files_removed += 1
            progress.phase = "indexing"
            progress.files_total += len(files)
            for path in files:
                if self.cancelled():
                    progress.phase = "cancelled"
                    progress.elapsed = time.monotonic() - started
                    yield progress
                    return
                progress.current = str(path)
                outcome = self._index_file(folder_id, path, progress)
                if outcome == "indexed":
                    progress.files_indexed += 1
                elif outcome == "failed":
                    progress.files_failed += 1
                else:
                    progress.files_unchanged += 1
                progress.files_done += 1
                progress.elapsed = time.monotonic() - started
                yield progress
        progress.phase = "done"
        progress.current = None
        progress.elapsed = time.monotonic() - started
        yield progress

    def update(self, changed: Iterable[Path | str]) -> Iterator[IndexProgress]:
        """Bring just these paths (files or folders, created, changed, moved or deleted)
        up to date: what a folder watcher reports. Paths outside indexed folders are ignored."""
        started = time.monotonic()
        progress = IndexProgress(phase="indexing")
        roots = sorted(((fid, Path(p)) for fid, p in self.index.folders()), key=lambda r: -len(str(r[1])))
        for raw in sorted({os.path.abspath(p) for p in changed}):
            path = Path(raw)
            owner = next(((fid, root) for fid, root in roots if path == root or root in path.parents), None)
            if owner is None:
                continue
            folder_id, root = owner
            on_disk: list[Path] = []
            if path.is_dir() and not path.is_symlink():
                on_disk = [p for p in scan(path) if eligible(root, p)]
            elif path.is_file() and eligible(root, path):
                on_disk = [path]
            present = {str(p) for p in on_disk}
            for known in self.index.files_under(raw):
                if known not in present:
                    self.index.delete_file(known)
                    progress.files_removed += 1
            progress.files_total += len(on_disk)
            for file_path in on_disk:
                progress.current = str(file_path)
                outcome = self._index_file(folder_id, file_path, progress)
                progress.files_indexed += outcome == "indexed"
                progress.files_failed += outcome == "failed"
                progress.files_unchanged += outcome == "unchanged"
                progress.files_done += 1
                progress.elapsed = time.monotonic() - started
                yield progress
        progress.phase = "done"
        progress.current = None
        progress.elapsed = time.monotonic() - started
        yield progress

    def _index_file(self, folder_id: int, path: Path, progress: IndexProgress) -> str:
        key = str(path)
        try:
            info = path.stat()
        except OSError as exc:
            # Vanished between scan and now, or unreadable metadata.
            self.index.delete_file(key)
            log.info("skipping %s: %s", path, exc)
            return "failed"
        if not stat.S_ISREG(info.st_mode):
            return "unchanged"
        state = self.index.file_state(key)
        same_space = state is not None and (state.status == "failed" or state.space_id == self.space.id)
        if state and same_space and state.size == info.st_size and state.mtime == info.st_mtime:
            return "unchanged"

        def fail(reason: str, digest: str | None = None) -> str:
            self.index.record_failure(
                folder_id=folder_id,
                path=key,
                size=info.st_size,
                mtime=info.st_mtime,
                content_hash=digest,
                reason=reason,
            )
            return "failed"

        if info.st_size > self.options.max_file_bytes:
            limit_mb = self.options.max_file_bytes // (1024 * 1024)
            return fail(f"larger than the {limit_mb} MB limit")
        try:
            data = path.read_bytes()
        except PermissionError:
            return fail("permission denied")
        except OSError as exc:
            return fail(f"cannot read the file: {exc.strerror or exc}")
        digest = hashlib.sha256(data).hexdigest()
        if state and same_space and state.content_hash == digest:
            self.index.touch_file(state.id, info.st_size, info.st_mtime)
            return "unchanged"
        try:
            document = extract.extract(path, data)
        except ExtractionError as exc:
            return fail(str(exc), digest)
        except UserFacingError as exc:
            return fail(str(exc), digest)
        except Exception as exc:  # an extractor bug must not stop the run
            log.exception("extraction of %s failed", path)
            return fail(f"could not extract text: {type(exc).__name__}: {exc}", digest)

        chunks = chunk_document(
            document, self.embedder.tokenize, max_tokens=self.max_tokens, overlap=self.options.chunk_overlap
        )
        if not chunks:
            return fail("no text: nothing to index after extraction", digest)
        vectors = self.embedder.embed_tokens([c.tokens for c in chunks])
        vectors = truncate_dimensions(vectors, self.space.dimensions)
        records = [
            ChunkRecord(
                c.ordinal,
                c.text,
                c.page,
                c.start_char,
                c.end_char,
                len(c.tokens) + self.embedder.special_tokens,
            )
            for c in chunks
        ]
        self.index.replace_file(
            folder_id=folder_id,
            path=key,
            size=info.st_size,
            mtime=info.st_mtime,
            content_hash=digest,
            space=self.space,
            chunks=records,
            vectors=vectors,
        )
        progress.chunks_added += len(chunks)
        progress.tokens_embedded += sum(r.n_tokens for r in records)
        return "indexed"
