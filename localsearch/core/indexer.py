"""Indexing: scan roots, reconcile with the database, extract, chunk, embed, store.

Written as a generator of progress objects so the command line can print them and the
GUI can turn them into signals. The pipeline has three stages:

- extraction (stat, read, hash, extract, chunk, tokenize) runs ahead in a worker thread
  (`IndexOptions.extract_workers`), bounded by a small queue;
- one embedding lane: the calling thread embeds each file's chunks (llama.cpp releases
  the GIL while it computes, so extraction of the next files overlaps it). An engine with
  several contexts (data parallel, `contexts` > 1) gets the chunks of several consecutive
  files in one request, enough to keep each context busy (`group_tokens`); the vectors
  are split back per file, and if the engine dies on such a request each file is embedded
  again on its own, so an abort still costs only the file that caused it;
- one database writer: the calling thread, which owns the connection, commits every file
  in its own transaction, so an interrupted run loses at most the file in flight and a
  rerun picks up where it stopped, with no duplicate work.

Unchanged files are recognised by size and mtime, then by content hash; a file whose
content is already indexed under another path (renamed, moved, copied) gets a copy of
those chunks and vectors without being embedded again. A file that changes while it is
read is retried once it is stable.

With late chunking (`IndexOptions.late_chunking`) the chunker still decides where each
passage starts and ends, but the engine reads the file's chunks as one token stream
(one pass per window of its context) and pools each passage from its tokens in that
pass, so every vector carries its document's context. Such vectors live in their own
space (see LocalSearch.space_key): reuse by content hash never mixes the two kinds.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar, assert_never, cast

import numpy as np

from localsearch.core import extract
from localsearch.core.chunking import Chunk, chunk_document
from localsearch.core.deadline import Deadline, DeadlineExceeded
from localsearch.core.embedding import (
    Embedder,
    EngineCrashed,
    late_windows,
    reserved_tokens,
    truncate_dimensions,
)
from localsearch.core.exclude import Exclusions
from localsearch.core.power import PowerPolicy
from localsearch.core.storage import ChunkRecord, FileState, Space
from localsearch.core.store_protocol import IndexStore
from localsearch.errors import DiskFullError, ModelError, UserFacingError

log = logging.getLogger(__name__)


@dataclass
class IndexProgress:
    phase: str  # "scanning", "indexing", "done", "cancelled"
    root: str = ""
    files_total: int = 0
    files_done: int = 0
    files_indexed: int = 0
    files_reused: int = 0  # indexed from another file's vectors (renamed, moved, copied)
    files_unchanged: int = 0
    files_failed: int = 0
    files_removed: int = 0
    chunks_added: int = 0
    tokens_embedded: int = 0
    current: str | None = None
    elapsed: float = 0.0
    chunks_per_second: float = 0.0
    eta_seconds: float | None = None
    paused: str | None = None  # why indexing waits ("paused", "on battery"), else None
    messages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "messages"}


# Why a run waits, besides "paused" and "on battery" (IndexProgress.paused).
BUSY_REASON = "another localsearch is indexing"
_T = TypeVar("_T")
DISK_FULL_REASON = "disk full"


# How long a file must have been left alone before it is read (see IndexOptions): shorter
# than the watcher's quiet time, so an edit reported by the watcher never waits for it.
SETTLE_SECONDS = 0.3


@dataclass(frozen=True)
class IndexOptions:
    chunk_tokens: int = 256
    chunk_overlap: int = 32
    max_file_bytes: int = 50 * 1024 * 1024
    exclude: tuple[str, ...] = ()  # user patterns, .gitignore syntax
    use_gitignore: bool = False  # honour .gitignore files in the indexed trees
    # Threads extracting ahead of the embedder; 0 extracts in the embedding thread.
    extract_workers: int = 1
    # A file that changed while it was read is retried; with settle_seconds > 0, so is one
    # modified less than that long ago (maybe still being written), once it has been quiet
    # that long. After `settle_timeout` seconds in one run, a consistent read is taken as it
    # is (the watcher catches later changes). The app uses SETTLE_SECONDS; 0 here keeps
    # library callers and tests that index files they just wrote from waiting.
    settle_seconds: float = 0.0
    settle_timeout: float = 10.0
    # Embed each file's chunks in one pass over the file (see the module docstring).
    late_chunking: bool = False
    # Embed each passage after its file's name words ("performance review notes" for
    # performance-review-notes.md): people half-remember a file by its name, and a note's
    # name often says what its text leaves implicit. Only the vector sees them; the stored
    # text, snippets and keyword index do not. Not with late chunking (one stream a file).
    file_names: bool = False
    # A file whose text takes longer than this to extract (a crafted or badly broken
    # document sending a parser round in circles) is recorded as failed and the run goes
    # on; 0 waits for ever. Generous: see bench/fuzz.py for the slowest real documents.
    extract_seconds: float = 60.0


class _LateEmbedder(Protocol):
    late_tokens: int

    def embed_late(
        self, tokens: Sequence[int], spans: Sequence[tuple[int, int]], role: str = "document"
    ) -> np.ndarray: ...


def late_layout(chunks: Sequence[Chunk]) -> tuple[list[int], list[tuple[int, int]]]:
    """The file's token stream and each chunk's (start, end) in it. Each chunk's carried
    overlap (told by the chunker, not guessed from matching tokens) is laid on the tail
    it repeats, so overlapping passages share those tokens' states."""
    stream: list[int] = []
    spans: list[tuple[int, int]] = []
    for chunk in chunks:
        shared = min(chunk.overlap_tokens, len(stream), len(chunk.tokens))
        start = len(stream) - shared
        stream.extend(chunk.tokens[shared:])
        spans.append((start, len(stream)))
    return stream, spans


def group_tokens(embedder: Embedder) -> int:
    """Tokens per request to an engine with several contexts: two batches for each, so
    that none idles while another finishes a long one. 0: one request per file."""
    contexts = int(getattr(embedder, "contexts", 1) or 1)
    batch_tokens = int(getattr(embedder, "batch_tokens", 0) or embedder.max_tokens)
    return 2 * contexts * batch_tokens if contexts > 1 else 0


class IndexControl:
    """Pause, resume and cancel a run from another thread (the CLI's stdin reader, the
    GUI), and the battery policy. The indexer checks it between files."""

    def __init__(self, power: PowerPolicy | None = None) -> None:
        self.power = power or PowerPolicy("continue")
        self._resumed = threading.Event()
        self._resumed.set()
        self._cancelled = threading.Event()

    def pause(self) -> None:
        self._resumed.clear()

    def resume(self) -> None:
        self._resumed.set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._resumed.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def wait_reason(self) -> str | None:
        """Why the run should wait now, or None to go on."""
        if self._cancelled.is_set():
            return None
        if not self._resumed.is_set():
            return "paused"
        if self.power.should_pause():
            return "on battery"
        return None

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, woken early by resume or cancel."""
        if self._resumed.is_set():
            self._cancelled.wait(seconds)
        else:
            self._resumed.wait(seconds)


_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
)


def db_key(path: Path) -> str:
    """The path as stored. A name that is not valid Unicode (bytes from another system's
    encoding) cannot be stored as text; it gets a stable escaped form."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", errors="backslashreplace")
    return text


def _empty_folder(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def _just_saved(mtime: float, settle: float) -> bool:
    """Modified less than `settle` seconds ago. A modification time ahead of the clock (a
    clock set back, a file from a machine whose clock runs ahead) says nothing about how
    recent the save was: such a file is read now, its reads still checked for consistency."""
    age = time.time() - mtime
    return 0 <= age < settle


def _valid_name(path: Path) -> bool:
    return db_key(path) == str(path)


class Outcome(enum.Enum):
    """What became of one file in a run: what extraction foresees for it (_Job.outcome),
    what the writer made of it (_commit), and what progress counts it as (_count)."""

    INDEXED = "indexed"  # extracted, chunked and embedded
    REUSED = "reused"  # vectors copied from an indexed file of the same content
    UNCHANGED = "unchanged"  # as indexed (or failed) before; at most its size and time refreshed
    FAILED = "failed"  # recorded with the reason it is not searchable
    GONE = "gone"  # vanished (or became a link) since the scan: its record removed
    UNSTABLE = "unstable"  # changing while read: tried again once it settles, not counted yet


@dataclass
class _Job:
    """What extraction found out about one file, for the embedding lane and the writer."""

    path: Path
    key: str
    # INDEXED: `chunks` await embedding; REUSED: `digest` is indexed under another path;
    # UNCHANGED with `touch`: the content is as indexed, the size or time are not.
    outcome: Outcome
    touch: bool = False
    info: os.stat_result | None = None
    digest: str | None = None
    reason: str = ""
    chunks: list[Chunk] = field(default_factory=list)
    name_tokens: list[int] = field(default_factory=list)  # see IndexOptions.file_names
    seconds: float = 0.0
    # The chunks' vectors and the tokens read for them, when embedded with other files.
    embedded: tuple[np.ndarray, int] | None = None


class _Stop(Exception):
    pass


_NAME_PART = re.compile(r"[^\W_]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def name_words(file_name: str) -> str:
    """A file name's words, as a person would say them: without its extension, split at
    punctuation and camelCase, lower-cased; parts without a letter (dates, numbers, ids)
    are dropped, so "2024-02-12-budget-review.md" gives "budget review" and "10009203.txt"
    nothing."""
    stem = file_name.rsplit(".", 1)[0] if "." in file_name.lstrip(".") else file_name
    parts = (w for part in _NAME_PART.findall(stem) for w in _CAMEL.sub(" ", part).split())
    return " ".join(w.lower() for w in parts if any(c.isalpha() for c in w))


class Indexer:
    def __init__(
        self,
        index: IndexStore,
        embedder: Embedder,
        space: Space,
        options: IndexOptions,
        *,
        control: IndexControl | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.space = space
        self.options = options
        self.control = control or IndexControl()
        self.exclusions = Exclusions(options.exclude, use_gitignore=options.use_gitignore)
        reserved = reserved_tokens(embedder)
        self.max_tokens = min(options.chunk_tokens, embedder.max_tokens) - reserved
        if options.late_chunking and not callable(getattr(embedder, "embed_late", None)):
            raise ModelError(f"The engine for {embedder.name} cannot do late chunking")
        # LlamaEmbedder.tokenize shares a buffer: extraction threads take turns.
        self._tokenize_lock = threading.Lock()
        self.group_tokens = group_tokens(embedder)

    # -- public --------------------------------------------------------------
    def run(self, roots: Iterable[Path]) -> Iterator[IndexProgress]:
        """Scan each root fully and bring the index in line with it."""
        progress = IndexProgress(phase="scanning")
        clock = _Clock()
        # Deletions wait until every root is done: a file moved from one root to another
        # (or renamed) takes its vectors to its new path first.
        stale: list[str] = []

        def work() -> Iterator[IndexProgress]:
            yield from self._scan_roots(roots, stale, progress, clock)
            yield from self._forget(stale, progress, clock)

        yield from self._to_the_end(work(), progress, clock)

    def _scan_roots(
        self, roots: Iterable[Path], stale: list[str], progress: IndexProgress, clock: _Clock
    ) -> Iterator[IndexProgress]:
        for root in roots:
            root = Path(os.path.abspath(root))
            progress.root = str(root)
            add = functools.partial(self.index.add_folder, db_key(root))
            folder_id = yield from self._when_room(add, progress, clock)
            if not root.exists():
                # An unplugged drive or a moved folder: keep its index until it returns.
                progress.messages.append(f"{root} is not reachable; its index is kept as it was")
                continue
            progress.phase = "scanning"
            yield clock.stamp(progress)
            files = [p for p in self._scan(root) if self._wanted(p)]
            self._report_unreadable(progress)
            states = self.index.file_states(folder_id)
            if not files and states and _empty_folder(root):
                # An empty mount point (the drive is not mounted) looks like a folder whose
                # files were all deleted; keep the index rather than lose it.
                progress.messages.append(f"{root} is empty; its index is kept (is a drive not mounted?)")
                continue
            progress.phase = "indexing"
            progress.files_total += len(files)
            yield from self._process(folder_id, files, states, progress, clock)
            on_disk = {db_key(p) for p in files}
            stale.extend(known for known in states if known not in on_disk)

    def update(self, changed: Iterable[Path | str]) -> Iterator[IndexProgress]:
        """Bring just these paths (files or folders, created, changed, moved or deleted)
        up to date: what a folder watcher reports. Paths outside indexed folders are
        ignored; so are paths in a root that is not reachable (its index is kept)."""
        progress = IndexProgress(phase="indexing")
        clock = _Clock()
        roots = sorted(((fid, Path(p)) for fid, p in self.index.folders()), key=lambda r: -len(str(r[1])))
        by_root: dict[int, tuple[Path, set[Path]]] = {}
        for raw in {os.path.abspath(p) for p in changed}:
            path = Path(raw)
            owner = next(((fid, root) for fid, root in roots if path == root or root in path.parents), None)
            if owner is None:
                continue
            folder_id, root = owner
            if not root.is_dir() and not root.is_file():
                continue  # the root itself is gone (a drive unplugged): keep its index
            by_root.setdefault(folder_id, (root, set()))[1].add(path)
        stale: list[str] = []  # deleted after every root: see run()

        def work() -> Iterator[IndexProgress]:
            for folder_id, (root, paths) in sorted(by_root.items()):
                present: list[Path] = []
                for path in sorted(paths):
                    if path.is_dir() and not path.is_symlink():
                        found = [p for p in self.exclusions.walk(root, path) if self._wanted(p)]
                    elif (root.is_file() and path == root) or (
                        os.path.lexists(path) and self.exclusions.allows(root, path) and self._wanted(path)
                    ):
                        found = [path]
                    else:
                        found = []
                    if path == root and not found and _empty_folder(root):
                        continue  # an empty mount point: see run()
                    present.extend(found)
                    keys = {db_key(p) for p in found}
                    stale.extend(k for k in self.index.files_under(db_key(path)) if k not in keys)
                self._report_unreadable(progress)
                present = sorted(set(present))
                states = {}
                for p in present:
                    state = self.index.file_state(db_key(p))
                    if state is not None:
                        states[db_key(p)] = state
                progress.root = str(root)
                progress.files_total += len(present)
                yield from self._process(folder_id, present, states, progress, clock)
            yield from self._forget(sorted(set(stale)), progress, clock)

        yield from self._to_the_end(work(), progress, clock)

    def _forget(
        self, stale: Iterable[str], progress: IndexProgress, clock: _Clock
    ) -> Iterator[IndexProgress]:
        """Remove the records of files that are no longer there, waiting while the disk is full."""
        for key in stale:
            yield from self._when_room(functools.partial(self.index.delete_file, key), progress, clock)
            progress.files_removed += 1

    @staticmethod
    def _to_the_end(
        work: Iterator[IndexProgress], progress: IndexProgress, clock: _Clock
    ) -> Iterator[IndexProgress]:
        """A run's progress, then its last word: "done", or "cancelled" when it was stopped."""
        try:
            yield from work
        except _Stop:
            progress.phase = "cancelled"
            yield clock.stamp(progress)
            return
        progress.phase = "done"
        progress.current = None
        progress.eta_seconds = 0.0
        yield clock.stamp(progress)

    # -- scanning ------------------------------------------------------------
    def _scan(self, root: Path) -> Iterator[Path]:
        if root.is_file():
            yield root
        else:
            yield from self.exclusions.walk(root)

    def _report_unreadable(self, progress: IndexProgress) -> None:
        for folder, reason in self.exclusions.unreadable:
            progress.messages.append(
                f"{folder}: cannot open the folder ({reason.lower()}); nothing in it is indexed"
            )
        self.exclusions.unreadable.clear()

    @staticmethod
    def _wanted(path: Path) -> bool:
        return extract.supported(path)

    # -- the pipeline --------------------------------------------------------
    def _checkpoint(self, progress: IndexProgress, clock: _Clock) -> Iterator[IndexProgress]:
        """Between files: wait while paused (reporting it), stop when cancelled."""
        while True:
            if self.control.cancelled:
                raise _Stop
            reason = self.control.wait_reason()
            if reason is None:
                if progress.paused:
                    progress.paused = None
                    clock.resume()
                    yield clock.stamp(progress)
                return
            if progress.paused != reason:
                progress.paused = reason
                clock.pause()
                yield clock.stamp(progress)
            self.control.wait(1.0)

    def _process(
        self,
        folder_id: int,
        files: Sequence[Path],
        states: dict[str, FileState],
        progress: IndexProgress,
        clock: _Clock,
    ) -> Iterator[IndexProgress]:
        hashes = (
            {self._reuse_key(path, digest) for digest, path in self.index.indexed_contents(self.space)}
            if self._names
            else self.index.indexed_hashes(self.space)
        )
        unstable: list[Path] = []
        jobs = self._jobs(files, states, hashes)
        try:
            for job in self._grouped(jobs):
                yield from self._checkpoint(progress, clock)
                progress.current = str(job.path)
                outcome = yield from self._commit_when_room(folder_id, job, progress, hashes, clock)
                if outcome is Outcome.UNSTABLE:
                    unstable.append(job.path)
                    continue
                self._count(progress, outcome)
                yield clock.stamp(progress)
                rest = self.control.power.rest_after(job.seconds)
                if rest:
                    self.control.wait(rest)
        finally:
            close = getattr(jobs, "close", None)
            if close:
                close()
        yield from self._settle(folder_id, unstable, progress, clock, hashes)

    def _settle(
        self,
        folder_id: int,
        unstable: list[Path],
        progress: IndexProgress,
        clock: _Clock,
        hashes: set[str],
    ) -> Iterator[IndexProgress]:
        """Files saved a moment ago or changed while read: retry each once it has been
        quiet for settle_seconds; after settle_timeout, take a consistent read as it is,
        else record why it is not indexed."""
        deadline = time.monotonic() + self.options.settle_timeout
        while unstable:
            waiting: list[Path] = []
            for path in unstable:
                try:
                    recent = _just_saved(path.stat().st_mtime, self.options.settle_seconds)
                except OSError:
                    recent = False
                if recent and time.monotonic() < deadline:
                    waiting.append(path)
                    continue
                yield from self._checkpoint(progress, clock)
                progress.current = str(path)
                patient = time.monotonic() < deadline
                job = self._prepare(path, self.index.file_state(db_key(path)), hashes, patient)
                outcome = yield from self._commit_when_room(folder_id, job, progress, hashes, clock)
                if outcome is Outcome.UNSTABLE:
                    if time.monotonic() < deadline:
                        waiting.append(path)
                        continue
                    outcome = self._fail(
                        folder_id,
                        job,
                        "still being written: it kept changing while it was read; "
                        "it is indexed once it stops changing",
                    )
                self._count(progress, outcome)
                yield clock.stamp(progress)
            unstable = waiting
            if unstable:
                self.control.wait(0.05)

    @staticmethod
    def _count(progress: IndexProgress, outcome: Outcome) -> None:
        match outcome:
            case Outcome.INDEXED:
                progress.files_indexed += 1
            case Outcome.REUSED:
                progress.files_reused += 1
            case Outcome.UNCHANGED:
                progress.files_unchanged += 1
            case Outcome.FAILED:
                progress.files_failed += 1
            case Outcome.GONE:
                progress.files_removed += 1
            case Outcome.UNSTABLE:
                raise ValueError("a file still changing is retried, not counted")
            case _:
                assert_never(outcome)
        progress.files_done += 1

    def _grouped(self, jobs: Iterator[_Job]) -> Iterator[_Job]:
        """The jobs in order; with group_tokens, the chunks of consecutive files awaiting
        embedding are embedded together first (each job then carries its vectors). A group
        closes at group_tokens or when the files run out (a watcher's single edit is a
        group of one), and is committed file by file, each in its own transaction."""
        if not self.group_tokens or self.options.late_chunking:
            yield from jobs
            return
        pending: list[_Job] = []
        tokens = 0
        for job in jobs:
            pending.append(job)
            if self._embeddable(job):
                tokens += sum(len(c.tokens) for c in job.chunks)
            if tokens >= self.group_tokens:
                self._embed_group(pending)
                yield from pending
                pending, tokens = [], 0
        self._embed_group(pending)
        yield from pending

    @staticmethod
    def _embeddable(job: _Job) -> bool:
        return job.outcome is Outcome.INDEXED and bool(job.chunks)

    def _embed_group(self, jobs: Sequence[_Job]) -> None:
        group = [job for job in jobs if self._embeddable(job)]
        if len(group) < 2:
            return  # one file: embedded as it is committed, as without grouping
        sequences = [self._sequences(job.chunks, job.name_tokens) for job in group]
        try:
            vectors = self.embedder.embed_tokens([s for seqs in sequences for s in seqs])
        except EngineCrashed as exc:
            # Which file killed it is not known: each is embedded alone at its commit.
            log.warning(
                "the engine stopped on a group of %d files; embedding each alone: %s", len(group), exc
            )
            return
        vectors = truncate_dimensions(vectors, self.space.dimensions)
        start = 0
        for job, seqs in zip(group, sequences, strict=True):
            tokens = sum(len(t) for t in seqs) + self.embedder.special_tokens * len(seqs)
            job.embedded = (vectors[start : start + len(seqs)], tokens)
            start += len(seqs)

    def _jobs(self, files: Sequence[Path], states: dict[str, FileState], hashes: set[str]) -> Iterator[_Job]:
        workers = self.options.extract_workers
        if workers <= 0 or len(files) < 2:
            for path in files:
                yield self._prepare(path, states.get(db_key(path)), hashes)
            return
        limit = self.options.extract_seconds
        yield from _Prefetch(
            files,
            lambda p: self._prepare(p, states.get(db_key(p)), hashes),
            workers,
            # The extraction deadline stops Python code at `limit`; past it and a grace, the
            # file is stuck where no deadline reaches. 0 (no limit) waits for ever, as asked.
            patience=limit + STUCK_GRACE_SECONDS if limit > 0 else None,
            give_up=self._stuck,
        )

    def _stuck(self, path: Path, seconds: float) -> _Job:
        """A file whose preparation never came back: recorded as failed, saying why."""
        key = db_key(path)
        try:
            info = os.stat(path, follow_symlinks=False)
        except OSError:
            return _Job(path, key, Outcome.GONE)
        if stat.S_ISLNK(info.st_mode):
            return _Job(path, key, Outcome.GONE)
        reason = (
            f"reading or extracting it did not finish in {seconds:.0f} s and could not be stopped "
            "(a damaged or unusual file, or a storage device that stopped answering)"
        )
        return _Job(path, key, Outcome.FAILED, info=info, reason=reason)

    # -- extraction stage (any thread; never touches the database) -----------
    def _prepare(self, path: Path, state: FileState | None, hashes: set[str], patient: bool = True) -> _Job:
        started = time.perf_counter()
        job = self._examine(path, state, hashes, patient)
        job.seconds = time.perf_counter() - started
        return job

    def _examine(self, path: Path, state: FileState | None, hashes: set[str], patient: bool) -> _Job:
        key = db_key(path)
        try:
            info = os.stat(path, follow_symlinks=False)
        except OSError:
            return _Job(path, key, Outcome.GONE)  # vanished between the scan and now
        job = _Job(path, key, Outcome.FAILED, info=info)
        if stat.S_ISLNK(info.st_mode):
            return _Job(path, key, Outcome.GONE)  # replaced by a link since the scan: never followed
        same_space = state is not None and (state.status == "failed" or state.space_id == self.space.id)
        if state is not None and same_space and state.size == info.st_size and state.mtime == info.st_mtime:
            job.outcome = Outcome.UNCHANGED  # also for failures: retried when the file changes
            return job
        if not _valid_name(path):
            job.reason = "file name is not valid Unicode text: rename the file to make it searchable"
            return job
        if not stat.S_ISREG(info.st_mode):
            job.reason = "not a regular file (a pipe, socket or device): it cannot be read as a document"
            return job
        if info.st_size > self.options.max_file_bytes:
            limit_mb = self.options.max_file_bytes // (1024 * 1024)
            job.reason = f"larger than the {limit_mb} MB limit"
            return job
        settle = self.options.settle_seconds
        if patient and _just_saved(info.st_mtime, settle):
            job.outcome = Outcome.UNSTABLE  # saved a moment ago, maybe still being written
            return job
        try:
            # Never blocks on a pipe swapped in since the stat, never follows a link.
            descriptor = os.open(path, _OPEN_FLAGS)
            with open(descriptor, "rb") as handle:
                after = os.fstat(descriptor)
                data = handle.read(self.options.max_file_bytes + 1) if stat.S_ISREG(after.st_mode) else b""
                after = os.fstat(descriptor)
        except FileNotFoundError:
            return _Job(path, key, Outcome.GONE)
        except PermissionError:
            job.reason = "permission denied"
            return job
        except OSError as exc:
            job.reason = f"cannot read the file: {exc.strerror or exc}"
            return job
        if len(data) != info.st_size or after.st_size != info.st_size or after.st_mtime != info.st_mtime:
            job.outcome = Outcome.UNSTABLE  # being written right now: retried once it settles
            return job
        digest = job.digest = hashlib.sha256(data).hexdigest()
        if state is not None and same_space and state.status == "indexed" and state.content_hash == digest:
            job.outcome, job.touch = Outcome.UNCHANGED, True
            return job
        if self._reuse_key(path, digest) in hashes:
            job.outcome = Outcome.REUSED
            return job
        return self._extract(job, data)

    @property
    def _names(self) -> bool:
        return self.options.file_names and not self.options.late_chunking

    def _reuse_key(self, path: Path | str, digest: str) -> str:
        """What a file must share with another to reuse its vectors: its content, and with
        file names embedded, its name's words too (a copy under another name is embedded
        with its own name, so the index never depends on which copy came first)."""
        return f"{digest} {name_words(os.path.basename(path))}" if self._names else digest

    def _extract(self, job: _Job, data: bytes) -> _Job:
        limit = self.options.extract_seconds
        deadline = Deadline(limit)
        try:
            try:
                document = extract.extract(job.path, data)
            finally:
                deadline.disarm()
        except DeadlineExceeded:
            job.reason = (
                f"extracting its text took longer than {limit:g} s, so it was stopped "
                "(a damaged or unusual file)"
            )
            return job
        except UserFacingError as exc:
            job.reason = str(exc)
            return job
        except RecursionError:
            job.reason = "broken file: its structure nests too deeply"
            return job
        except MemoryError:
            job.reason = "broken file: extracting it needs more memory than is available"
            return job
        except Exception as exc:  # an extractor bug must not stop the run
            log.exception("extraction of %s failed", job.path)
            job.reason = f"could not extract text: {type(exc).__name__}: {exc}"
            return job
        job.chunks = chunk_document(
            document, self._tokenize, max_tokens=self.max_tokens, overlap=self.options.chunk_overlap
        )
        if not job.chunks:
            job.reason = "no text: nothing to index after extraction"
            return job
        if self._names:
            words = name_words(job.path.name)
            job.name_tokens = self._tokenize(words) if words else []
        job.outcome = Outcome.INDEXED
        return job

    def _tokenize(self, text: str) -> list[int]:
        with self._tokenize_lock:
            return self.embedder.tokenize(text)

    # -- embedding lane and writer (the calling thread) ----------------------
    def _fail(self, folder_id: int, job: _Job, reason: str) -> Outcome:
        assert job.info is not None
        self.index.record_failure(
            folder_id=folder_id,
            path=job.key,
            size=job.info.st_size,
            mtime=job.info.st_mtime,
            content_hash=job.digest,
            reason=reason,
        )
        return Outcome.FAILED

    # Seconds between attempts to write while the disk is full.
    DISK_FULL_RETRY = 5.0

    def _commit_when_room(
        self, folder_id: int, job: _Job, progress: IndexProgress, hashes: set[str], clock: _Clock
    ) -> Generator[IndexProgress, None, Outcome]:
        """_commit, waiting while the disk is full (see _when_room)."""
        write = lambda: self._commit(folder_id, job, progress, hashes)  # noqa: E731
        return (yield from self._when_room(write, progress, clock))

    def _when_room(
        self, write: Callable[[], _T], progress: IndexProgress, clock: _Clock
    ) -> Generator[IndexProgress, None, _T]:
        """Run one write of the index, waiting while the disk is full: every write is its own
        transaction, rolled back whole when SQLite finds no room, so it is simply tried again
        (paused, saying why) until there is room again or the run is cancelled."""
        told = False
        while True:
            try:
                outcome = write()
            except DiskFullError as exc:
                if not told:
                    told = True
                    progress.messages.append(str(exc))
                    log.warning("disk full while indexing: %s", exc)
                if progress.paused != DISK_FULL_REASON:
                    progress.paused = DISK_FULL_REASON
                    clock.pause()
                yield clock.stamp(progress)
                self.control.wait(self.DISK_FULL_RETRY)
                if self.control.cancelled:
                    raise _Stop from None
                continue
            if progress.paused == DISK_FULL_REASON:
                progress.paused = None
                clock.resume()
                log.info("space again: indexing goes on")
            return outcome

    def _commit(self, folder_id: int, job: _Job, progress: IndexProgress, hashes: set[str]) -> Outcome:
        """Write what extraction found; the outcome may differ from the one it foresaw (the
        file changed again, the indexed copy went meanwhile)."""
        outcome = job.outcome
        if outcome is Outcome.UNSTABLE or (outcome is Outcome.UNCHANGED and not job.touch):
            return outcome
        if outcome is Outcome.GONE:
            self.index.delete_file(job.key)
            return outcome
        assert job.info is not None
        info = job.info
        if outcome is Outcome.FAILED:
            return self._fail(folder_id, job, job.reason)
        state = self.index.file_state(job.key)
        if outcome is Outcome.UNCHANGED:  # touch: the content is as indexed
            if state is not None and state.content_hash == job.digest:
                self.index.touch_file(state.id, info.st_size, info.st_mtime)
                return Outcome.UNCHANGED
            job = self._prepare(job.path, state, hashes)  # its record went meanwhile
            return self._commit(folder_id, job, progress, hashes)
        digest = job.digest
        assert digest is not None
        if outcome is Outcome.REUSED:
            if not self._still_same(job):
                return Outcome.UNSTABLE
            copied = self.index.copy_indexed(
                folder_id=folder_id,
                path=job.key,
                size=info.st_size,
                mtime=info.st_mtime,
                content_hash=digest,
                space=self.space,
                accept=lambda source: self._reuse_key(source, digest) == self._reuse_key(job.key, digest),
            )
            if copied is not None:
                progress.chunks_added += copied
                return Outcome.REUSED
            # The other copy left the index meanwhile: extract and embed this one.
            hashes.discard(self._reuse_key(job.key, digest))
            job = self._prepare(job.path, state, hashes)
            return self._commit(folder_id, job, progress, hashes)
        try:
            vectors, tokens = job.embedded or self._embed(job.chunks, job.name_tokens)
        except EngineCrashed:
            # The engine restarts on the next request. Once more: a death from outside (the
            # out-of-memory killer, a kill) must not cost the file; a second one is the file's.
            log.warning("the engine stopped while embedding %s; trying it once more", job.path)
            try:
                vectors, tokens = self._embed(job.chunks, job.name_tokens)
            except EngineCrashed as exc:
                return self._fail(folder_id, job, str(exc))
        if not self._still_same(job):
            return Outcome.UNSTABLE  # changed while it was embedded: these vectors are stale
        special = self.embedder.special_tokens
        records = [
            ChunkRecord(
                c.ordinal, c.text, c.page, c.start_char, c.end_char, len(c.tokens) + special, c.heading
            )
            for c in job.chunks
        ]
        self.index.replace_file(
            folder_id=folder_id,
            path=job.key,
            size=info.st_size,
            mtime=info.st_mtime,
            content_hash=digest,
            space=self.space,
            chunks=records,
            vectors=vectors,
        )
        hashes.add(self._reuse_key(job.key, digest))
        progress.chunks_added += len(records)
        progress.tokens_embedded += tokens
        return Outcome.INDEXED

    def _embed(self, chunks: Sequence[Chunk], name_tokens: Sequence[int] = ()) -> tuple[np.ndarray, int]:
        """The chunks' vectors, and how many tokens the engine read to make them. With the
        file's name words first, a full chunk gives up its last tokens to them (its overlap
        with the next chunk, mostly) so that nothing is cut at the model's limit."""
        if not self.options.late_chunking:
            sequences = self._sequences(chunks, name_tokens)
            vectors = self.embedder.embed_tokens(sequences)
            tokens = sum(len(t) for t in sequences) + self.embedder.special_tokens * len(chunks)
            return truncate_dimensions(vectors, self.space.dimensions), tokens
        engine = cast(_LateEmbedder, self.embedder)
        stream, spans = late_layout(chunks)
        # One request per file: the engine splits it into passes of its context (the same
        # late_windows grouping as counted here), so an abort costs this file only.
        vectors = engine.embed_late(stream, spans)
        reserved = reserved_tokens(self.embedder)
        room = int(getattr(engine, "late_tokens", self.embedder.max_tokens)) - reserved
        windows = late_windows(spans, room, len(stream))
        tokens = sum(stop - start + reserved for start, stop, _ in windows)
        return truncate_dimensions(vectors, self.space.dimensions), tokens

    def _sequences(self, chunks: Sequence[Chunk], name_tokens: Sequence[int]) -> list[list[int]]:
        return [[*name_tokens, *c.tokens][: self.max_tokens] for c in chunks]

    @staticmethod
    def _still_same(job: _Job) -> bool:
        """The file is as it was read (a save during extraction or embedding means the
        result describes an old version)."""
        assert job.info is not None
        try:
            now = os.stat(job.path, follow_symlinks=False)
        except OSError:
            return False
        return now.st_size == job.info.st_size and now.st_mtime == job.info.st_mtime


class _Clock:
    """Elapsed time, throughput and ETA for progress, not counting paused spans."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._paused_at: float | None = None
        self._paused_total = 0.0

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._paused_total += time.monotonic() - self._paused_at
            self._paused_at = None

    def stamp(self, progress: IndexProgress) -> IndexProgress:
        now = self._paused_at if self._paused_at is not None else time.monotonic()
        elapsed = max(1e-9, now - self.started - self._paused_total)
        progress.elapsed = elapsed
        progress.chunks_per_second = round(progress.chunks_added / elapsed, 2)
        if progress.files_done and progress.files_total:
            remaining = max(0, progress.files_total - progress.files_done)
            progress.eta_seconds = round(elapsed / progress.files_done * remaining, 1)
        return progress


# Seconds past IndexOptions.extract_seconds after which a file still being prepared is
# left behind (see _Prefetch): the deadline has had its chance to stop it by then.
STUCK_GRACE_SECONDS = 30.0


class _Prefetch:
    """Runs `prepare` over `items` in worker threads, yielding results in order, at most
    a few files ahead of the consumer (bounded memory). Closing it stops the workers.

    With `patience`, an item not prepared that many seconds after a worker took it is
    given up: `give_up(item, seconds)` stands in for its result (a file recorded as
    failed, saying why), a fresh worker takes the stuck one's place, and the stuck one's
    late result is dropped. The extraction deadline stops Python code that runs too long;
    this catches what it cannot (a single C call that never returns, a read that hangs),
    which would otherwise hold the whole run for ever."""

    def __init__(
        self,
        items: Sequence[Path],
        prepare: Callable[[Path], _Job],
        workers: int,
        *,
        patience: float | None = None,
        give_up: Callable[[Path, float], _Job] | None = None,
    ) -> None:
        self._items = list(items)
        self._prepare = prepare
        self._results: dict[int, _Job | BaseException] = {}
        self._next = 0
        self._cond = threading.Condition()
        self._ahead = max(2, 2 * workers)
        self._taken = 0  # results consumed
        self._claimed = 0  # items handed to workers
        self._closed = False
        self._patience = patience if give_up is not None else None
        self._give_up = give_up
        # item -> when (monotonic) and which worker took it, until it is prepared
        self._started: dict[int, tuple[float, threading.Thread]] = {}
        self._abandoned: set[int] = set()  # items given up while a worker still holds them
        self._stuck: set[threading.Thread] = set()
        self._threads: list[threading.Thread] = []
        for _ in range(workers):
            self._add_worker()

    def _add_worker(self) -> None:
        thread = threading.Thread(target=self._work, name=f"extract-{len(self._threads)}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._closed and self._claimed - self._taken >= self._ahead:
                    self._cond.wait()
                if self._closed or self._claimed >= len(self._items):
                    return
                position = self._claimed
                self._claimed += 1
                self._started[position] = (time.monotonic(), threading.current_thread())
            result: _Job | BaseException
            try:
                result = self._prepare(self._items[position])
            except BaseException as exc:  # handed to the consumer, which re-raises it
                result = exc
            with self._cond:
                self._started.pop(position, None)
                if position in self._abandoned:  # given up: a fresh worker took this one's place
                    self._abandoned.discard(position)
                    self._stuck.discard(threading.current_thread())
                    return
                self._results[position] = result
                self._cond.notify_all()

    def __iter__(self) -> Iterator[_Job]:
        return self

    def __next__(self) -> _Job:
        with self._cond:
            if self._next >= len(self._items) or self._closed:
                raise StopIteration
            position = self._next
            late = None
            while position not in self._results:
                if self._patience is None:
                    self._cond.wait()
                    continue
                started = self._started.get(position)
                waited = time.monotonic() - started[0] if started is not None else 0.0
                if waited >= self._patience:
                    late = waited
                    break
                self._cond.wait(self._patience - waited if started is not None else self._patience)
            if late is None:
                result = self._results.pop(position)
            else:
                self._abandoned.add(position)
                self._stuck.add(self._started[position][1])
                self._add_worker()
            self._next += 1
            self._taken += 1
            self._cond.notify_all()
        if late is not None:
            log.warning("preparing %s did not finish in %.0f s: left behind", self._items[position], late)
            assert self._give_up is not None
            return self._give_up(self._items[position], late)
        if isinstance(result, BaseException):
            self.close()
            raise result
        return result

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            stuck = set(self._stuck)
        for thread in self._threads:
            if thread in stuck:
                continue  # still inside a call that would not end: not waited for
            with contextlib.suppress(RuntimeError):
                thread.join(timeout=30)
