"""The embedding engine in a child process, so that a llama.cpp abort costs one batch.

llama.cpp ends the whole process (SIGABRT, no Python exception) when an internal
assertion fails. ProcessEmbedder keeps the model in a child process and talks to it
over its stdin/stdout with a compact binary protocol: token ids in, float32 vectors
out. The parent keeps only the vocabulary (a vocab-only load, no weights), so the
chunker's many tokenize calls cost no round trips. When the child dies, the call in
flight raises EngineCrashed naming the input it carried, and the next call starts a
fresh child: the indexer records that one file as failed and goes on.

Frames, little-endian:
  parent -> child  u32 length + JSON config (once), then requests:
                   u8 op, u8 role, u32 a, u32 b, payload
                   EMBED: a sequences, b tokens; payload i32 lengths[a], i32 tokens[b]
                   LATE:  a spans, b tokens;     payload i32 spans[2a],  i32 tokens[b]
  child -> parent  u8 status, u32 rows, u32 cols, payload
                   status OK: f32 matrix[rows, cols] (the first reply: JSON, rows bytes)
                   status ERROR: rows bytes of UTF-8 message
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import IO, Any

import numpy as np

from localsearch.core import cpu_load
from localsearch.core.embedding import (
    ROLES,
    USER_OPENMP_WAIT,
    EngineCrashed,
    EngineInfo,
    EngineOptions,
    LlamaEmbedder,
    LlamaVocab,
    default_threads,
)
from localsearch.errors import ModelError
from localsearch.launch import child_command

OP_CLOSE, OP_EMBED, OP_LATE = 0, 1, 2
STATUS_OK, STATUS_ERROR = 0, 1
_REQUEST = struct.Struct("<BBII")
_REPLY = struct.Struct("<BII")
_LENGTH = struct.Struct("<I")
# The in-flight file: one slot per context, each the comma-separated indices of the inputs
# that context is decoding (blank between batches).
IN_FLIGHT_SLOT = 1024

# How the child's threads wait for each other at llama.cpp's per-operation barriers.
# "spin": libgomp polls SPIN_COUNT times (about 3 ms) before it sleeps, which covers
# every barrier inside a batch and still lets an idle engine sleep: 1.19x and 1.29x the
# tokens/s on free cores (bench/results/engine_throughput.json, -repeat.json). "sleep":
# waiters sleep at once, which keeps two threads useful when other work shares the
# cores. "auto" asks cpu_load at each start and then every WAIT_RECHECK_SECONDS (or ten
# child start-up times, for a big model), restarting the child between requests when the
# answer changes. A child of single-thread contexts (data parallel, the app's default on
# the CPU) has no barriers: it never spins.
WAIT_POLICIES = ("auto", "spin", "sleep")
SPIN_COUNT = "300000"
WAIT_RECHECK_SECONDS = 5.0
WAIT_RECHECK_STARTS = 10

__all__ = ["EngineCrashed", "ProcessEmbedder"]

_INFO_FIELDS = frozenset(f.name for f in fields(EngineInfo))


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size) if size else b""
    if len(data) != size:
        raise EOFError
    return data


def _file_identity(path: Path) -> tuple[int, int, int, int] | None:
    """(device, inode, size, mtime in ns): what changes when a file is replaced or rewritten."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _child_command() -> list[str]:
    return child_command("engine")


def _child_environment(spin: bool | None = None) -> dict[str, str]:
    """This process's environment, with the folder holding this package on the path: the
    child imports the same localsearch even when the parent found it through sys.path.
    spin: how its OpenMP threads wait (None: as this process's environment says)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    if spin is not None:
        env.pop("GOMP_SPINCOUNT", None)
        if spin:
            env["GOMP_SPINCOUNT"] = SPIN_COUNT
    return env


class ProcessEmbedder:
    """LlamaEmbedder's interface, with the model in a child process.

    Built like LlamaEmbedder (EngineOptions, or a model file and its fields as keywords).
    Not thread-safe: one per lane.
    abort_on_token is for tests: the child calls os.abort() on any input holding it.
    wait_policy: one of WAIT_POLICIES; a policy set in the user's environment
    (OMP_WAIT_POLICY, GOMP_SPINCOUNT) overrides it.
    The output head is applied in the child, like the rest of the model: the parent
    stays a vocabulary (a 1536 -> 8192 head alone is 50 MB), a child restart reloads it with
    the model, and both engines share LlamaEmbedder's one code path for it.
    """

    def __init__(
        self,
        model: EngineOptions | Path | str,
        *,
        abort_on_token: int | None = None,
        wait_policy: str = "auto",
        **options: Any,
    ) -> None:
        if wait_policy not in WAIT_POLICIES:
            raise ValueError(f"wait_policy must be one of {WAIT_POLICIES}, not {wait_policy!r}")
        self.options = EngineOptions.of(model, **options)
        self.model_path = self.options.model_path
        self.name = self.options.name or self.model_path.stem
        self._abort_on_token = abort_on_token
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._in_flight: IO[bytes] | None = None
        self.restarts = 0
        self._wait_policy = "user" if USER_OPENMP_WAIT else wait_policy
        self._threads = self.options.threads or default_threads()
        self.spinning: bool | None = None  # how the running child waits (None: as the user said)
        self.wait_switches = 0
        self._wait_checked = 0.0
        self._start_seconds = 0.0
        self._run_delay: cpu_load.RunDelayProbe | None = None
        self._vocab = LlamaVocab(self.model_path, vocab_only=True)
        self._model_identity = _file_identity(self.model_path)
        self.info = self._start()

    def __getattr__(self, name: str) -> Any:
        """The sizes the child reported (EngineInfo: dimensions, max_tokens, ...) read as
        this engine's own, as the Embedder protocol and the indexer expect them."""
        info = self.__dict__.get("info")
        if info is not None and name in _INFO_FIELDS:
            return getattr(info, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- the child -----------------------------------------------------------------
    def _want_spin(self, *, running: bool) -> bool | None:
        if self._wait_policy == "user":
            return None
        if self._wait_policy != "auto" or self._threads == 1:
            return self._wait_policy == "spin"
        return not cpu_load.cores_busy(self._threads, own_running=running)

    def _check_wait_policy(self) -> None:
        """Between requests: restart the child when the cores' state calls for the other
        way of waiting (a clean restart: nothing is in flight)."""
        now = time.monotonic()
        interval = max(WAIT_RECHECK_SECONDS, WAIT_RECHECK_STARTS * self._start_seconds)
        if self._wait_policy != "auto" or now - self._wait_checked < interval:
            return
        self._wait_checked = now
        if self._proc is None or self._threads == 1:
            return
        # The child's own threads say best whether something takes their cores.
        share = self._run_delay.share() if self._run_delay is not None else None
        if share is not None:
            # Half the bar to go back to spinning: a sleeping engine waits less for cores
            # than a spinning one would, and a restart is not free.
            bar = cpu_load.BUSY_RUN_DELAY / (1 if self.spinning else 2)
            want: bool | None = share < bar
        else:
            want = self._want_spin(running=True)
        if want is None or want == self.spinning:
            return
        self._check_model_file()
        self._stop_child()
        self._start(spin=want)
        self.wait_switches += 1

    def _check_model_file(self) -> None:
        """Before a restart, and after a crash: the model file is the one this engine
        started with. One deleted, cut short or replaced meanwhile stops the work with the
        reason, rather than blaming the file in flight or mixing another model's vectors in."""
        name = self.model_path.name
        identity = _file_identity(self.model_path)
        if identity is None:
            raise ModelError(f"The model file {self.model_path} was deleted while in use")
        if identity != self._model_identity:
            was = self._model_identity[2] if self._model_identity else 0
            raise ModelError(
                f"The model file {name} was changed or replaced while in use (it was {was:,} bytes, "
                f"now {identity[2]:,}); start again to use it as it is now"
            )

    def _start(self, spin: bool | None = None) -> EngineInfo:
        if spin is None:
            spin = self._want_spin(running=False)
        self.spinning = spin
        started = time.monotonic()
        # Kept open for the child's life: its last words (an assertion) explain a crash.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        # The child overwrites this with the inputs it is decoding (POSIX: pwrite).
        self._in_flight = tempfile.TemporaryFile()  # noqa: SIM115
        shared = (self._in_flight.fileno(),) if hasattr(os, "pwrite") else ()
        config = {
            "engine": self.options.to_json(),
            "abort_on_token": self._abort_on_token,
            "in_flight_fd": shared[0] if shared else None,
        }
        self._proc = subprocess.Popen(
            _child_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=_child_environment(spin),
            pass_fds=shared,
        )
        self._run_delay = cpu_load.RunDelayProbe(self._proc.pid)
        data = json.dumps(config).encode()
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(_LENGTH.pack(len(data)) + data)
            self._proc.stdin.flush()
            status, rows, _ = _REPLY.unpack(_read_exactly(self._stdout, _REPLY.size))
            payload = _read_exactly(self._stdout, rows)
        except (OSError, EOFError):
            reason = self._reap()
            name = self.model_path.name
            raise ModelError(f"The embedding engine could not start for {name}: {reason}") from None
        if status != STATUS_OK:
            self._reap()
            raise ModelError(payload.decode(errors="replace"))
        self._wait_checked = time.monotonic()
        self._start_seconds = self._wait_checked - started
        return EngineInfo.from_json(json.loads(payload))

    @property
    def _stdout(self) -> IO[bytes]:
        assert self._proc is not None and self._proc.stdout is not None
        return self._proc.stdout

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _reap(self) -> str:
        """Collect a dead (or dying) child; a short account of how it ended."""
        proc, self._proc = self._proc, None
        if proc is None:
            return "not running"
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if stream:
                    stream.close()
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exit status {code}"
        if self._in_flight is not None:
            self._in_flight.close()
            self._in_flight = None
        said = ""
        if self._stderr is not None:
            self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, self._stderr.tell() - 4096))
            lines = [ln for ln in self._stderr.read().decode(errors="replace").splitlines() if ln.strip()]
            self._stderr.close()
            self._stderr = None
            # llama.cpp's last words name the assertion, e.g. "GGML_ASSERT(...) failed".
            asserts = [ln for ln in lines if "ASSERT" in ln or "error" in ln.lower()]
            if asserts or lines:
                said = f"; it said: {(asserts or lines)[-1].strip()[:300]}"
        return how + said

    def _read_in_flight(self) -> list[list[int]]:
        """The inputs each of the child's contexts last said it was decoding, a list per
        batch in flight (empty where it cannot say)."""
        if self._in_flight is None:
            return []
        self._in_flight.seek(0)
        data = self._in_flight.read(IN_FLIGHT_SLOT * 256)
        self._in_flight.close()
        self._in_flight = None
        batches = []
        for start in range(0, len(data), IN_FLIGHT_SLOT):
            text = data[start : start + IN_FLIGHT_SLOT].decode(errors="replace")
            batch = [int(part) for part in text.split(",") if part.strip().isdigit()]
            if batch:
                batches.append(batch)
        return batches

    def _request(
        self,
        op: int,
        role: str,
        a: int,
        b: int,
        payload: bytes,
        what: str,
        sequences: Sequence[Sequence[int]] | None = None,
    ) -> np.ndarray:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        if self._proc is None:
            self._check_model_file()
            self.restarts += 1
            self._start()
        else:
            self._check_wait_policy()
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            proc.stdin.write(_REQUEST.pack(op, ROLES.index(role), a, b) + payload)
            proc.stdin.flush()
            status, rows, cols = _REPLY.unpack(_read_exactly(self._stdout, _REPLY.size))
            if status != STATUS_OK:
                raise ModelError(_read_exactly(self._stdout, rows).decode(errors="replace"))
            data = _read_exactly(self._stdout, rows * cols * 4)
        except (OSError, EOFError):
            culprits = self._read_in_flight()
            how = self._reap()
            self._check_model_file()  # the file, not this input, may be what killed it
            if op == OP_EMBED and culprits and sequences is not None:
                what = self._describe(sequences, culprits)
            raise EngineCrashed(f"The embedding engine stopped ({how}) while embedding {what}") from None
        return np.frombuffer(data, dtype=np.float32).reshape(rows, cols).copy()

    def _describe(self, sequences: Sequence[Sequence[int]], in_flight: Sequence[Sequence[int]] = ()) -> str:
        if len(sequences) == 1:
            return f"the input ({self._vocab.describe(sequences[0])})"
        batches = [[i for i in batch if 0 <= i < len(sequences)] for batch in in_flight]
        batches = [batch for batch in batches if batch]
        if len(batches) > 1:  # several contexts were decoding: one of them died
            return f"one of {len(batches)} batches decoded side by side: " + "; ".join(
                self._describe_batch(sequences, batch) for batch in batches
            )
        return self._describe_batch(sequences, batches[0] if batches else [])

    def _describe_batch(self, sequences: Sequence[Sequence[int]], in_flight: Sequence[int]) -> str:
        if len(in_flight) == 1:
            index = in_flight[0]
            return f"input {index + 1} of {len(sequences)} ({self._vocab.describe(sequences[index])})"
        if in_flight:
            numbers = ", ".join(str(i + 1) for i in in_flight[:10])
            first = self._vocab.describe(sequences[in_flight[0]])
            return f"inputs {numbers} of {len(sequences)}, decoded together (the first: {first})"
        return f"a batch of {len(sequences)} inputs (the first: {self._vocab.describe(sequences[0])})"

    # -- the Embedder interface ----------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        return self._vocab.tokenize(text)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._vocab.detokenize(tokens)

    def embed_tokens(self, sequences: Sequence[Sequence[int]], role: str = "document") -> np.ndarray:
        if not sequences:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int32, count=len(sequences))
        tokens = np.fromiter((t for s in sequences for t in s), dtype=np.int32, count=int(lengths.sum()))
        payload = lengths.tobytes() + tokens.tobytes()
        what = self._describe(sequences)
        return self._request(OP_EMBED, role, len(sequences), len(tokens), payload, what, sequences)

    def embed_texts(self, texts: Sequence[str], role: str = "document") -> np.ndarray:
        return self.embed_tokens([self.tokenize(t) for t in texts], role)

    def embed_late(
        self, tokens: Sequence[int], spans: Sequence[tuple[int, int]], role: str = "document"
    ) -> np.ndarray:
        if not spans:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        span_array = np.asarray(spans, dtype=np.int32).reshape(-1, 2)
        token_array = np.asarray(tokens, dtype=np.int32)
        payload = span_array.tobytes() + token_array.tobytes()
        what = f"a document for late chunking ({self._vocab.describe(tokens)})"
        return self._request(OP_LATE, role, len(spans), len(token_array), payload, what)

    def _stop_child(self) -> None:
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.write(_REQUEST.pack(OP_CLOSE, 0, 0, 0))
                proc.stdin.flush()
            self._reap()

    def close(self) -> None:
        self._stop_child()
        if getattr(self, "_vocab", None) is not None:
            self._vocab.close()

    def __enter__(self) -> ProcessEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """The child's loop: one LlamaEmbedder, requests answered in order until CLOSE or EOF."""

    def reply(status: int, rows: int, cols: int, payload: bytes) -> None:
        replies.write(_REPLY.pack(status, rows, cols) + payload)
        replies.flush()

    def error(message: str) -> None:
        data = message.encode()
        reply(STATUS_ERROR, len(data), 0, data)

    try:
        (size,) = _LENGTH.unpack(_read_exactly(requests, _LENGTH.size))
        config = json.loads(_read_exactly(requests, size))
    except EOFError:
        return
    abort_on = config.get("abort_on_token")
    in_flight_fd = config.get("in_flight_fd")
    try:
        engine = LlamaEmbedder(EngineOptions.from_json(config["engine"]))
    except ModelError as exc:
        error(str(exc))
        return
    if in_flight_fd is not None:

        def record(indices: Sequence[int], lane: int) -> None:
            text = ",".join(map(str, indices)).encode()
            if len(text) > IN_FLIGHT_SLOT:  # names as many as the slot holds
                text = text[: text.rfind(b",", 0, IN_FLIGHT_SLOT)]
            os.pwrite(in_flight_fd, text.ljust(IN_FLIGHT_SLOT), lane * IN_FLIGHT_SLOT)

        engine.before_batch = record
    info = json.dumps(engine.info.to_json()).encode()
    reply(STATUS_OK, len(info), 0, info)
    while True:
        try:
            op, role_index, a, b = _REQUEST.unpack(_read_exactly(requests, _REQUEST.size))
        except EOFError:
            break
        if op == OP_CLOSE:
            break
        role = ROLES[role_index]
        try:
            if op == OP_EMBED:
                lengths = np.frombuffer(_read_exactly(requests, 4 * a), dtype=np.int32)
                tokens = np.frombuffer(_read_exactly(requests, 4 * b), dtype=np.int32)
                bounds = np.concatenate(([0], np.cumsum(lengths)))
                flat = tokens.tolist()
                sequences = [flat[bounds[i] : bounds[i + 1]] for i in range(a)]
                if abort_on is not None and abort_on in tokens:
                    _abort_in_batch(engine, sequences, abort_on)
                vectors = engine.embed_tokens(sequences, role)
            elif op == OP_LATE:
                spans = np.frombuffer(_read_exactly(requests, 8 * a), dtype=np.int32).reshape(a, 2)
                tokens = np.frombuffer(_read_exactly(requests, 4 * b), dtype=np.int32)
                if abort_on is not None and abort_on in tokens:
                    os.abort()
                vectors = engine.embed_late(tokens.tolist(), [(int(s), int(e)) for s, e in spans], role)
            else:
                error(f"unknown request {op}")
                continue
        except (ModelError, ValueError) as exc:
            error(str(exc))
            continue
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        reply(STATUS_OK, matrix.shape[0], matrix.shape[1], matrix.tobytes())
    engine.close()


def _abort_in_batch(engine: LlamaEmbedder, sequences: list[list[int]], token: int) -> None:
    """The test hook: abort, as a failed GGML_ASSERT does, while decoding the batch that
    holds `token` (earlier batches of the request complete)."""
    recorder = engine.before_batch

    def abort_when_poisoned(indices: Sequence[int], lane: int) -> None:
        if recorder is not None:
            recorder(indices, lane)
        if any(token in sequences[i] for i in indices):
            os.abort()

    engine.before_batch = abort_when_poisoned


def main() -> None:
    # The protocol owns the real stdout; anything printed (by Python or C) goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    _serve(requests, replies)


if __name__ == "__main__":
    main()
