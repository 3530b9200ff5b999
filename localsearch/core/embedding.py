"""The embedding engine: the only module that imports llama_cpp.

Texts arrive as token ids (the chunker tokenized them once), are packed into batches
that never exceed the context llama.cpp was given (an encoder must see a whole batch
in one micro-batch, or llama.cpp aborts the process), pooled by llama.cpp and
returned L2-normalized as float32 rows.

Each input gets its role's prompt: a model may want queries and documents prefixed
differently ("search_query: " / "search_document: ") or run through a task LoRA
adapter (jina-embeddings-v3). The prefix is tokenized once, when the engine starts.

Every context parameter is checked before llama.cpp sees it (check_geometry), because
llama.cpp answers a bad one with a failed assertion that ends the process. The
process engine (engine_process.ProcessEmbedder) runs this engine in a child process
so that an abort that slips through costs one batch, not the application.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from localsearch.core.models.files import QUANT_TYPES
from localsearch.errors import ModelError

ROLES = ("document", "query")
# Architectures whose embeddings are defined with a task LoRA per role (jina-embeddings-v3):
# the engine refuses to run them without one, unless told to (tests of the base weights).
TASK_ADAPTER_ARCHITECTURES = frozenset({"jina-bert-v3"})

# llama.cpp's OpenMP threads meet at a barrier after every operation. Spinning there gave
# 1.19x and 1.29x the tokens/s of sleeping on free cores (bench/results/
# engine_throughput.json, engine_throughput-repeat.json), but when the cores are shared (a
# desktop in use) a spinning thread holds a core its partner needs: two threads measured
# 3-10x slower than one. (Single-thread contexts, the data-parallel engine's, have no
# barriers at all.) So this process's threads sleep; the indexing engine's child process
# chooses as the cores' state changes (engine_process). Read when the OpenMP runtime
# loads, i.e. before llama_cpp is imported (lazily, below); a policy the user set wins
# everywhere.
OPENMP_WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
# Marks the values as ours, so that processes started from this one (the engine child,
# a CLI run by a script) still know the user chose nothing.
OPENMP_WAIT_MARK = "LOCALSEARCH_OPENMP_WAIT"
USER_OPENMP_WAIT = os.environ.get(OPENMP_WAIT_MARK) != "auto" and any(
    name in os.environ for name in OPENMP_WAIT_VARIABLES
)
if not USER_OPENMP_WAIT:
    os.environ[OPENMP_WAIT_MARK] = "auto"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class Embedder(Protocol):
    """What indexing and search need from a model.

    Engines may also offer `query_prefix_tokens` and `document_prefix_tokens` (the
    tokens a role's prompt takes from each input; read through reserved_tokens) and
    `embed_late` (late chunking)."""

    name: str
    dimensions: int
    max_tokens: int  # the longest input, special tokens included
    special_tokens: int  # tokens the model adds around each input ([CLS], [SEP])

    def tokenize(self, text: str) -> list[int]:
        """Content tokens of `text`, without special tokens."""
        ...

    def embed_tokens(self, sequences: Sequence[Sequence[int]], role: str = "document") -> np.ndarray:
        """One normalized float32 row per sequence of content tokens, embedded as a
        `role` ("document" or "query") with that role's prompt."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class EngineOptions:
    """How to run a model: everything LlamaEmbedder and ProcessEmbedder are built from, and
    what the process engine sends its child (to_json / from_json).

    query_prefix / document_prefix: the text the model wants before each role's input.
    adapters: a LoRA adapter GGUF per role (jina-embeddings-v3's task adapters), applied
    with adapter_scale while that role is embedded.
    allow_missing_adapters: run a task-adapter architecture with a role lacking its adapter.
    late_tokens: the context of a late-chunking pass (0: the model's training context).
    head: a dense output head (core/heads.py) applied to each pooled vector before it is
    normalized; the engine's `dimensions` is then the head's output size.
    mmap: map the file (False: read it into memory, which a file truncated in place while
    the engine runs cannot turn into a SIGBUS).
    contexts: llama contexts over the one loaded model, each decoding its own batches in
    its own thread (ctypes releases the GIL inside llama_decode). With threads=1 each, no
    thread ever waits at a ggml barrier for another (see LlamaEmbedder).
    """

    model_path: Path
    name: str = ""  # "": the file's stem
    threads: int = 0  # threads per context; 0: every core this process may run on
    contexts: int = 1  # contexts embedding batches side by side (data parallel), one model
    context_memory_mb: int = 160  # the contexts' buffers together, for contexts > 1 (0: no bound)
    max_tokens: int = 0  # 0: the model's training context
    batch_tokens: int = 0
    max_sequences: int = 0
    flash_attention: bool = True
    query_prefix: str = ""
    document_prefix: str = ""
    adapters: Mapping[str, Path] = field(default_factory=dict)
    adapter_scale: float = 1.0
    allow_missing_adapters: bool = False
    late_tokens: int = 0
    gpu: bool = True
    head: Path | None = None
    mmap: bool = True

    @classmethod
    def of(cls, model: EngineOptions | Path | str, **changes: Any) -> EngineOptions:
        """Options as given, or a model file with keyword options; `changes` override."""
        options = model if isinstance(model, EngineOptions) else cls(Path(model))
        if "adapters" in changes:
            changes["adapters"] = {role: Path(path) for role, path in (changes["adapters"] or {}).items()}
        if changes.get("head") is not None:
            changes["head"] = Path(changes["head"])
        return replace(options, **changes)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["model_path"] = str(self.model_path)
        out["adapters"] = {role: str(path) for role, path in self.adapters.items()}
        out["head"] = str(self.head) if self.head else None
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EngineOptions:
        values = dict(data)
        return cls.of(values.pop("model_path"), **values)


@dataclass(frozen=True)
class EngineInfo:
    """What a running engine reports about itself (the process engine's child sends it)."""

    dimensions: int
    max_tokens: int
    late_tokens: int
    n_layers: int
    special_tokens: int
    query_prefix_tokens: int
    document_prefix_tokens: int
    contexts: int  # decoding side by side: a caller sends enough work to keep each busy
    batch_tokens: int

    @classmethod
    def of(cls, engine: Any) -> EngineInfo:
        return cls(**{f.name: int(getattr(engine, f.name)) for f in fields(cls)})

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EngineInfo:
        return cls(**{f.name: int(data[f.name]) for f in fields(cls)})


class EngineCrashed(ModelError):
    """The engine died on an input (a llama.cpp abort in the engine process). The message
    names the input; the engine restarts for the next call."""


def reserved_tokens(embedder: Embedder, role: str = "document") -> int:
    """Tokens of each input the engine fills itself (special tokens and the role's prompt):
    a chunker leaves this much room. Works with engines that predate prompts."""
    return int(embedder.special_tokens) + int(getattr(embedder, f"{role}_prefix_tokens", 0))


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32, copy=False)


def truncate_dimensions(matrix: np.ndarray, dimensions: int) -> np.ndarray:
    """Matryoshka truncation: keep the first `dimensions` components, re-normalize."""
    if dimensions <= 0 or dimensions >= matrix.shape[1]:
        return matrix
    return normalize_rows(np.ascontiguousarray(matrix[:, :dimensions]))


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")


# A context's token capacity is rounded up to this: llama.cpp pads contexts to multiples
# of 256 internally, and a batch size off that grid tripped GGML_ASSERT(ggml_can_mul_mat)
# in the pooling graph (seen with n_batch = n_ubatch = 384 and 64 sequences).
CONTEXT_GRANULE = 256


def check_geometry(
    *, max_tokens: int, batch_tokens: int, max_sequences: int, n_ctx_train: int, max_parallel: int
) -> None:
    """Refuse a context llama.cpp would answer with a failed assertion (a process abort)."""
    problems = []
    if not 0 < max_tokens <= n_ctx_train:
        problems.append(f"max_tokens {max_tokens} must be in 1..{n_ctx_train} (the model's context)")
    if batch_tokens < max_tokens:
        problems.append(f"batch_tokens {batch_tokens} must hold one whole input ({max_tokens} tokens)")
    if batch_tokens % CONTEXT_GRANULE:
        problems.append(f"batch_tokens {batch_tokens} must be a multiple of {CONTEXT_GRANULE}")
    if not 0 < max_sequences <= min(max_parallel, batch_tokens):
        problems.append(f"max_sequences {max_sequences} must be in 1..{min(max_parallel, batch_tokens)}")
    if problems:
        raise ModelError("Invalid engine settings: " + "; ".join(problems))


log = logging.getLogger(__name__)
_backend_lock = threading.Lock()
_backend_ready = False
_log_callback: object = None  # kept referenced: llama.cpp holds a raw pointer to it


def _forward_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    log.debug("llama.cpp: %s", text.decode("utf-8", errors="replace").rstrip())


def _init_backend() -> None:
    global _backend_ready
    import llama_cpp

    with _backend_lock:
        if not _backend_ready:
            global _log_callback
            # llama.cpp's own log goes to our logger at debug level, not to the terminal.
            _log_callback = llama_cpp.llama_log_callback(_forward_log)
            llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
            _load_cpu_variants(llama_cpp)
            llama_cpp.llama_backend_init()
            _backend_ready = True


def _variant_dirs(llama_cpp: Any) -> list[Path]:
    """Where a portable build's CPU variants (libggml-cpu-haswell.so, -skylakex, …) may be:
    beside libllama (where the app bundle puts them), or in the bin/ folder that ggml's own
    install rule puts them in, which for a wheel lands beside the llama_cpp package."""
    package = Path(llama_cpp.__file__).resolve().parent
    return [package / "lib", package.parent / "bin"]


def _load_cpu_variants(llama_cpp: Any) -> None:
    """A portable llama.cpp (GGML_BACKEND_DL, GGML_CPU_ALL_VARIANTS) has no CPU code of its
    own: it loads the best variant library for this CPU at run time, but looks for them
    only beside the executable and in the working directory, neither of which is where a
    venv or the app bundle keeps them. Point it at their folder before llama.cpp looks.
    The functions are reached through libllama's handle (dlsym searches its dependencies),
    so they are the libggml that libllama uses and never a second copy of it."""
    suffix = ".dll" if sys.platform == "win32" else ".dylib" if sys.platform == "darwin" else ".so"
    for folder in _variant_dirs(llama_cpp):
        if any(folder.glob(f"*ggml-cpu-*{suffix}")):
            lib = llama_cpp.llama_cpp._lib
            if not hasattr(lib, "ggml_backend_load_all_from_path"):
                # Windows looks a symbol up in that one DLL only; loading ggml.dll by the path
                # libllama loaded it from returns the module already loaded.
                lib = ctypes.CDLL(str(Path(lib._name).parent / f"ggml{suffix}"))
            lib.ggml_backend_reg_count.restype = ctypes.c_size_t
            if lib.ggml_backend_reg_count() == 0:
                lib.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
                lib.ggml_backend_load_all_from_path(os.fsencode(folder))
            return


def cpu_backend() -> str:
    """Which CPU code llama.cpp runs in this process: a portable build's variant
    ("haswell", "skylakex", …), "built-in" for a build with its CPU code linked in (a
    native build), or "unknown" where the loaded libraries cannot be listed."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            names = {Path(line.split()[-1]).name for line in maps if "ggml-cpu" in line}
    except OSError:
        return "unknown"
    variants = sorted(n.split("ggml-cpu-", 1)[1].split(".", 1)[0] for n in names if "ggml-cpu-" in n)
    if variants:
        return ", ".join(variants)
    return "built-in" if names else "unknown"


def gpu_offload_available() -> bool:
    import llama_cpp

    _init_backend()  # a portable build's backends load from our folder, not ggml's guess
    return bool(llama_cpp.llama_supports_gpu_offload())


def cpu_features() -> str:
    """llama.cpp's own summary of the CPU features its build uses (AVX512_BF16 = 1 …)."""
    import llama_cpp

    _init_backend()  # a portable build reports the variant it loaded
    return bytes(llama_cpp.llama_print_system_info()).decode(errors="replace")


def _rss_mb() -> float:
    """This process's resident memory: now where the system says (Linux), else its peak
    so far (0 where it cannot say at all)."""
    statm = Path("/proc/self/statm")
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(statm.read_text(encoding="ascii").split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def default_threads() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class LlamaVocab:
    """A model's tokenizer. vocab_only loads no weights: the cheap way for a process
    that tokenizes but leaves embedding to a child process."""

    def __init__(
        self, model_path: Path | str, *, vocab_only: bool = True, gpu: bool = True, mmap: bool = True
    ) -> None:
        import llama_cpp

        from localsearch.core.models.gguf_io import check_gguf_header

        _init_backend()
        self._lib = llama_cpp
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelError(f"Model file not found: {self.model_path}")
        # llama.cpp trusts the header's counts and offsets: a damaged or hostile file is
        # refused here, with the reason, before it reads a byte.
        check_gguf_header(self.model_path)
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = vocab_only
        if not mmap:  # read into memory: llama.cpp's LLAMA_LOAD_MODE_NONE
            params.load_mode = llama_cpp.LLAMA_LOAD_MODE_NONE
        params.n_gpu_layers = 999 if gpu and not vocab_only and llama_cpp.llama_supports_gpu_offload() else 0
        self.model = llama_cpp.llama_model_load_from_file(str(self.model_path).encode(), params)
        if not self.model:
            raise ModelError(f"llama.cpp could not load {self.model_path}")
        self._vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.dimensions = int(llama_cpp.llama_model_n_embd(self.model))
        self.n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(self.model))
        self.n_layers = int(llama_cpp.llama_model_n_layer(self.model))
        adds_bos = llama_cpp.llama_vocab_get_add_bos(self._vocab)
        self.bos = int(llama_cpp.llama_vocab_bos(self._vocab)) if adds_bos else -1
        adds_eos = llama_cpp.llama_vocab_get_add_eos(self._vocab)
        self.eos = int(llama_cpp.llama_vocab_eos(self._vocab)) if adds_eos else -1
        self.special_tokens = int(self.bos >= 0) + int(self.eos >= 0)
        self._token_buffer = (llama_cpp.llama_token * 4096)()

    def close(self) -> None:
        if getattr(self, "model", None):
            self._lib.llama_model_free(self.model)
            self.model = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit the library may be gone
            self.close()

    def tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8", errors="replace")
        if not data:
            return []
        buffer = self._token_buffer
        capacity = len(buffer)
        while True:
            n = self._lib.llama_tokenize(self._vocab, data, len(data), buffer, capacity, False, False)
            if n >= 0:
                return list(buffer[:n])
            capacity = -n
            buffer = (self._lib.llama_token * capacity)()

    def detokenize(self, tokens: Sequence[int]) -> str:
        if not tokens:
            return ""
        array = (self._lib.llama_token * len(tokens))(*tokens)
        size = 8 * len(tokens) + 16
        while True:
            buffer = ctypes.create_string_buffer(size)
            n = self._lib.llama_detokenize(self._vocab, array, len(tokens), buffer, size, True, False)
            if n >= 0:
                return buffer.raw[:n].decode("utf-8", errors="replace")
            size = -n

    def describe(self, tokens: Sequence[int], limit: int = 12) -> str:
        """A short, recognizable rendering of an input for an error message."""
        words = self.detokenize(list(tokens[:limit])).strip()
        more = "…" if len(tokens) > limit else ""
        return f"{len(tokens)} tokens: {words!r}{more}"


class _Batch:
    """A llama_batch whose arrays are numpy buffers: filled with slices, not per-token
    ctypes calls."""

    def __init__(self, lib: Any, capacity: int) -> None:
        self.capacity = capacity
        self.tokens = np.zeros(capacity, dtype=np.int32)
        self.positions = np.zeros(capacity, dtype=np.int32)
        self.seq_ids = np.zeros(capacity, dtype=np.int32)
        self.n_seq_id = np.ones(capacity, dtype=np.int32)
        self.outputs = np.ones(capacity, dtype=np.int8)
        int_p = ctypes.POINTER(ctypes.c_int32)
        base = self.seq_ids.ctypes.data
        self._seq_id_ptrs = (int_p * capacity)(*[ctypes.cast(base + 4 * i, int_p) for i in range(capacity)])
        # Typed as Any: the bindings declare these pointer fields as arrays.
        self.struct: Any = cast(Any, lib.llama_batch())
        self.struct.token = self.tokens.ctypes.data_as(int_p)
        self.struct.embd = ctypes.POINTER(ctypes.c_float)()
        self.struct.pos = self.positions.ctypes.data_as(int_p)
        self.struct.n_seq_id = self.n_seq_id.ctypes.data_as(int_p)
        self.struct.seq_id = ctypes.cast(self._seq_id_ptrs, ctypes.POINTER(int_p))
        self.struct.logits = self.outputs.ctypes.data_as(ctypes.POINTER(ctypes.c_int8))

    def fill(self, sequences: Sequence[Sequence[int]]) -> None:
        position = 0
        for seq, tokens in enumerate(sequences):
            n = len(tokens)
            if position + n > self.capacity:
                raise ModelError(f"A batch of {position + n} tokens exceeds the context ({self.capacity})")
            self.tokens[position : position + n] = tokens
            self.positions[position : position + n] = np.arange(n, dtype=np.int32)
            self.seq_ids[position : position + n] = seq
            position += n
        self.struct.n_tokens = position


def _round_up(value: int, granule: int) -> int:
    return -(-value // granule) * granule


class _Lane:
    """One pooled context and its batch buffer: what one thread decodes with."""

    def __init__(self, number: int, ctx: Any, batch: _Batch) -> None:
        self.number = number
        self.ctx = ctx
        self.batch = batch


class LlamaEmbedder:
    """A GGUF embedding model in llama.cpp, CPU or GPU.

    One loaded model and `contexts` pooled contexts over it. With one context, a call's
    batches run one after another on `threads` threads. With several (data parallel),
    each context decodes whole batches in a thread of its own: ggml's threads of one
    graph meet at a barrier after every operation, hundreds of times a pass, and a thread
    that loses its core to another program stalls its partners there; single-thread
    contexts never wait for each other. The weights are loaded once and shared.

    Built from EngineOptions, or from a model file and EngineOptions' fields as keywords.
    Not thread-safe: use one instance per thread (indexing lane, query lane).
    """

    def __init__(self, model: EngineOptions | Path | str, **options: Any) -> None:
        import llama_cpp

        from localsearch.core.models.gguf_io import check_gguf_header

        self.options = opts = EngineOptions.of(model, **options)
        self._lib = llama_cpp
        self._late_ctx: Any = None
        self._adapters: dict[str, Any] = {}
        self._vocab = LlamaVocab(opts.model_path, vocab_only=False, gpu=opts.gpu, mmap=opts.mmap)
        self.model_path = self._vocab.model_path
        self._model = self._vocab.model
        self.name = opts.name or self.model_path.stem
        self.hidden_size = self._vocab.dimensions  # what llama.cpp pools
        from localsearch.core.heads import load_head

        self.head = load_head(opts.head, in_features=self.hidden_size) if opts.head else None
        self.dimensions = self.head.out_features if self.head else self.hidden_size
        self.n_layers = self._vocab.n_layers
        n_ctx_train = self._vocab.n_ctx_train
        self.special_tokens = self._vocab.special_tokens
        self._bos, self._eos = self._vocab.bos, self._vocab.eos

        # Inputs are cut to max_tokens (at most the training context); a batch always holds
        # one whole input, since an encoder given more tokens than n_ubatch aborts.
        self.max_tokens = min(opts.max_tokens or n_ctx_train, n_ctx_train)
        self.batch_tokens = _round_up(max(opts.batch_tokens, self.max_tokens), CONTEXT_GRANULE)
        max_parallel = int(llama_cpp.llama_max_parallel_sequences())
        self.max_sequences = opts.max_sequences or min(self.batch_tokens, max_parallel)
        check_geometry(
            max_tokens=self.max_tokens,
            batch_tokens=self.batch_tokens,
            max_sequences=self.max_sequences,
            n_ctx_train=n_ctx_train,
            max_parallel=max_parallel,
        )
        self.late_tokens = min(opts.late_tokens or n_ctx_train, n_ctx_train)
        self.contexts = max(1, opts.contexts)
        self.threads = opts.threads or max(1, default_threads() // self.contexts)
        self.flash_attention = opts.flash_attention
        # Called with the indices of the inputs about to be decoded and the number of the
        # context decoding them (and with no indices once it is done): the process engine
        # records them, so that after an abort it can name the very inputs in flight.
        self.before_batch: Callable[[Sequence[int], int], None] | None = None

        self._prefix = {
            "query": self.tokenize(opts.query_prefix),
            "document": self.tokenize(opts.document_prefix),
        }
        for role, prefix in self._prefix.items():
            if len(prefix) + self.special_tokens >= self.max_tokens:
                raise ModelError(f"The {role} prompt leaves no room for text in {self.max_tokens} tokens")
        self.query_prefix_tokens = len(self._prefix["query"])
        self.document_prefix_tokens = len(self._prefix["document"])

        self._lanes: list[_Lane] = []
        self._pool: ThreadPoolExecutor | None = None
        self._free_lanes: queue.SimpleQueue[_Lane] = queue.SimpleQueue()
        self._add_lane()
        if self.contexts > 1:
            self._add_contexts(self.contexts, opts.context_memory_mb)
        self.contexts = len(self._lanes)
        for lane in self._lanes:
            self._free_lanes.put(lane)
        self._late_batch: _Batch | None = None

        self.adapter_scale = float(opts.adapter_scale)
        for role, path in opts.adapters.items():
            _check_role(role)
            if not Path(path).is_file():
                raise ModelError(f"Adapter file not found: {path}")
            check_gguf_header(Path(path), f"The {role} adapter {Path(path).name}")
            adapter = llama_cpp.llama_adapter_lora_init(self._model, str(path).encode())
            if not adapter:
                raise ModelError(f"llama.cpp could not load the {role} adapter {path} for {self.model_path}")
            self._adapters[role] = adapter
        self._active: dict[str, str] = {}  # context ("pooled0", …, "late") -> role whose adapter is set
        arch = self._architecture()
        if arch in TASK_ADAPTER_ARCHITECTURES and not opts.allow_missing_adapters:
            missing = [role for role in ROLES if role not in self._adapters]
            if missing:
                self.close()
                raise ModelError(
                    f"{self.model_path.name} is a {arch} model, trained to run with a task adapter per "
                    f"role; none given for {', '.join(missing)}: its base weights alone give other vectors"
                )

    def _add_lane(self) -> _Lane:
        ctx = self._new_context(self.batch_tokens, self.max_sequences, pooled=True)
        lane = _Lane(len(self._lanes), ctx, _Batch(self._lib, self.batch_tokens))
        self._lanes.append(lane)
        return lane

    def _add_contexts(self, wanted: int, budget_mb: int) -> None:
        """Contexts up to `wanted`, as many as budget_mb of memory holds. A context's buffers
        grow with the model and the batch (36 MB for MiniLM at 256 tokens): the second
        context is measured after a full batch through each (the first pass also maps the
        weights in), and the rest are added while the budget lasts."""
        warm = [self._bos if self._bos >= 0 else 0] * self.max_tokens
        sequences = [warm] * max(1, min(self.max_sequences, self.batch_tokens // self.max_tokens))
        scratch = np.empty((len(sequences), self.hidden_size), dtype=np.float32)
        indices = list(range(len(sequences)))
        self._run(self._lanes[0], indices, sequences, scratch, "document", record=False)
        before = _rss_mb()
        self._run(self._add_lane(), indices, sequences, scratch, "document", record=False)
        cost = _rss_mb() - before
        fits = wanted if budget_mb <= 0 or cost <= 0 else max(1, int(budget_mb // cost))
        while len(self._lanes) > min(wanted, fits):
            self._lib.llama_free(self._lanes.pop().ctx)
        while len(self._lanes) < min(wanted, fits):
            self._add_lane()
        log.debug("%d contexts of %d tokens, %.0f MB each", len(self._lanes), self.batch_tokens, cost)

    def _architecture(self) -> str:
        buffer = ctypes.create_string_buffer(128)
        n = self._lib.llama_model_meta_val_str(self._model, b"general.architecture", buffer, len(buffer))
        return buffer.value.decode(errors="replace") if n >= 0 else ""

    def _new_context(self, n_tokens: int, n_sequences: int, *, pooled: bool, threads: int = 0) -> Any:
        lib = self._lib
        params = lib.llama_context_default_params()
        params.n_ctx = n_tokens
        params.n_batch = n_tokens
        params.n_ubatch = n_tokens  # encoders need the whole batch in one micro-batch
        params.n_seq_max = n_sequences
        params.kv_unified = True
        params.embeddings = True
        # The model's own pooling (mean, CLS …) for whole inputs; token states for late chunking.
        params.pooling_type = lib.LLAMA_POOLING_TYPE_UNSPECIFIED if pooled else lib.LLAMA_POOLING_TYPE_NONE
        params.n_threads = params.n_threads_batch = threads or self.threads
        params.flash_attn_type = (
            lib.LLAMA_FLASH_ATTN_TYPE_ENABLED if self.flash_attention else lib.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        ctx = lib.llama_init_from_model(self._model, params)
        if not ctx:
            raise ModelError(f"llama.cpp could not create a context for {self.model_path}")
        if pooled and lib.llama_pooling_type(ctx) == lib.LLAMA_POOLING_TYPE_NONE:
            lib.llama_free(ctx)
            raise ModelError(f"{self.model_path.name} declares no pooling: it is not an embedding model")
        return ctx

    @property
    def info(self) -> EngineInfo:
        return EngineInfo.of(self)

    @property
    def max_content_tokens(self) -> int:
        return self.max_tokens - self.special_tokens

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True)
            self._pool = None
        for lane in getattr(self, "_lanes", []):
            if lane.ctx:
                self._lib.llama_free(lane.ctx)
                lane.ctx = None
        self._lanes = []
        ctx = getattr(self, "_late_ctx", None)
        if ctx:
            self._lib.llama_free(ctx)
            self._late_ctx = None
        for adapter in getattr(self, "_adapters", {}).values():
            self._lib.llama_adapter_lora_free(adapter)
        self._adapters = {}
        vocab = getattr(self, "_vocab", None)
        if vocab is not None:
            vocab.close()
        self._model = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit the library may be gone
            self.close()

    def tokenize(self, text: str) -> list[int]:
        return self._vocab.tokenize(text)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._vocab.detokenize(tokens)

    def _framed(self, tokens: Sequence[int], role: str, limit: int) -> list[int]:
        """[BOS] + the role's prompt + content cut to fit `limit` + [EOS]."""
        prefix = self._prefix[role]
        room = limit - self.special_tokens - len(prefix)
        body = list(prefix) + list(tokens[:room])
        if self._bos >= 0:
            body.insert(0, self._bos)
        if self._eos >= 0:
            body.append(self._eos)
        return body

    def _use_adapter(self, lane: str, ctx: Any, role: str) -> None:
        """Set the role's task adapter (or none) on a context, when it changes."""
        if not self._adapters or self._active.get(lane, "") == role:
            return
        lib = self._lib
        adapter = self._adapters.get(role)
        if adapter is None:
            status = lib.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            array = (lib.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(self.adapter_scale)
            status = lib.llama_set_adapters_lora(ctx, array, 1, scales)
        if status != 0:
            raise ModelError(f"llama.cpp could not set the {role} adapter (status {status})")
        self._active[lane] = role

    def embed_tokens(self, sequences: Sequence[Sequence[int]], role: str = "document") -> np.ndarray:
        _check_role(role)
        out = np.empty((len(sequences), self.hidden_size), dtype=np.float32)
        framed = [self._framed(tokens, role, self.max_tokens) for tokens in sequences]
        batches = self._pack(framed)
        if len(self._lanes) == 1 or len(batches) == 1:
            lane = self._lanes[0]  # a query: on the caller's thread, no hand-over
            for batch in batches:
                self._run(lane, batch, framed, out, role)
        else:
            # Longest batches first (the packing's order), each to whichever context is
            # free: the contexts finish close together.
            pool = self._executor()
            futures = [pool.submit(self._run_on_free_lane, batch, framed, out, role) for batch in batches]
            errors = [exc for exc in (future.exception() for future in futures) if exc is not None]
            if errors:
                raise errors[0]
        return self._finish(out)

    def _pack(self, framed: Sequence[Sequence[int]]) -> list[list[int]]:
        """Indices of the inputs per batch. Longest first, packed greedily: similar lengths
        share a batch, each batch holds as many tokens as the context takes, none is cut."""
        order = sorted(range(len(framed)), key=lambda i: -len(framed[i]))
        batches: list[list[int]] = []
        pending: list[int] = []
        used = 0
        for index in order:
            n = len(framed[index])
            if pending and (used + n > self.batch_tokens or len(pending) >= self.max_sequences):
                batches.append(pending)
                pending, used = [], 0
            pending.append(index)
            used += n
        if pending:
            batches.append(pending)
        return batches

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(len(self._lanes), thread_name_prefix="llama-context")
        return self._pool

    def _run_on_free_lane(
        self, batch: list[int], framed: list[list[int]], out: np.ndarray, role: str
    ) -> None:
        lane = self._free_lanes.get()  # never waits: no more tasks run than there are lanes
        try:
            self._run(lane, batch, framed, out, role)
        finally:
            self._free_lanes.put(lane)

    def _finish(self, pooled: np.ndarray) -> np.ndarray:
        """Pooled rows as the model's final vectors: through the head, if any, then normalized
        (sentence-transformers' order: Pooling, Dense, Normalize). An all-zero row (a late
        chunk with no tokens) stays zero rather than becoming the head's bias."""
        if self.head is None:
            return normalize_rows(pooled)
        empty = ~pooled.any(axis=1)
        projected = self.head.apply(pooled)
        projected[empty] = 0.0
        return normalize_rows(projected)

    def embed_texts(self, texts: Sequence[str], role: str = "document") -> np.ndarray:
        return self.embed_tokens([self.tokenize(t) for t in texts], role)

    def _run(
        self,
        lane: _Lane,
        pending: list[int],
        framed: Sequence[Sequence[int]],
        out: np.ndarray,
        role: str,
        *,
        record: bool = True,
    ) -> None:
        lib = self._lib
        self._use_adapter(f"pooled{lane.number}", lane.ctx, role)
        callback = self.before_batch if record else None
        if callback is not None:
            callback(pending, lane.number)
        lane.batch.fill([framed[i] for i in pending])
        lib.llama_memory_clear(lib.llama_get_memory(lane.ctx), True)
        status = lib.llama_decode(lane.ctx, lane.batch.struct)  # the GIL is released inside
        if status != 0:
            raise ModelError(f"llama.cpp failed to embed a batch (status {status})")
        for seq, index in enumerate(pending):
            pointer = lib.llama_get_embeddings_seq(lane.ctx, seq)
            if not pointer:
                raise ModelError("llama.cpp returned no embedding for a sequence")
            out[index] = np.ctypeslib.as_array(pointer, shape=(self.hidden_size,))
        if callback is not None:
            callback((), lane.number)

    # -- late chunking ---------------------------------------------------------------
    def token_states(self, tokens: Sequence[int], role: str = "document") -> np.ndarray:
        """The last layer's output for every token of one pass over [BOS] + prompt +
        tokens + [EOS] (cut to late_tokens): one float32 row per token, not normalized."""
        _check_role(role)
        lib = self._lib
        if self._late_ctx is None:
            capacity = _round_up(self.late_tokens, CONTEXT_GRANULE)
            check_geometry(
                max_tokens=self.late_tokens,
                batch_tokens=capacity,
                max_sequences=1,
                n_ctx_train=self._vocab.n_ctx_train,
                max_parallel=int(lib.llama_max_parallel_sequences()),
            )
            # A late pass is one file's, so it gets every context's cores.
            self._late_ctx = self._new_context(
                capacity, 1, pooled=False, threads=self.threads * self.contexts
            )
            self._late_batch = _Batch(lib, capacity)
        batch = cast(_Batch, self._late_batch)
        framed = self._framed(tokens, role, self.late_tokens)
        self._use_adapter("late", self._late_ctx, role)
        batch.fill([framed])
        lib.llama_memory_clear(lib.llama_get_memory(self._late_ctx), True)
        status = lib.llama_decode(self._late_ctx, batch.struct)
        if status != 0:
            raise ModelError(f"llama.cpp failed to embed a document (status {status})")
        pointer = lib.llama_get_embeddings(self._late_ctx)
        if not pointer:
            raise ModelError("llama.cpp returned no token embeddings")
        return np.ctypeslib.as_array(pointer, shape=(len(framed), self.hidden_size)).copy()

    def embed_late(
        self, tokens: Sequence[int], spans: Sequence[tuple[int, int]], role: str = "document"
    ) -> np.ndarray:
        """Late chunking: one normalized row per span (start, end) of `tokens`, each the
        mean of its tokens' outputs from a pass that saw the text around it.

        A document longer than late_tokens is read in consecutive windows, each starting
        at the first span that no longer fits the previous one; a span longer than a
        window is cut to it."""
        out = np.zeros((len(spans), self.hidden_size), dtype=np.float32)
        offset = int(self._bos >= 0) + len(self._prefix[role])
        room = self.late_tokens - self.special_tokens - len(self._prefix[role])
        for start, stop, members in late_windows(spans, room, len(tokens)):
            states = self.token_states(tokens[start:stop], role)
            for index in members:
                first, last = spans[index]
                first, last = first - start + offset, min(last, start + room) - start + offset
                if last > first:
                    out[index] = states[first:last].mean(axis=0)
        return self._finish(out)


def late_windows(
    spans: Sequence[tuple[int, int]], room: int, n_tokens: int
) -> list[tuple[int, int, list[int]]]:
    """Group spans into passes of at most `room` tokens: (start, stop, span indices)."""
    for start, stop in spans:
        if not 0 <= start <= stop <= n_tokens:
            raise ValueError(f"span ({start}, {stop}) lies outside the {n_tokens} tokens")
    windows: list[tuple[int, int, list[int]]] = []
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    for index in order:
        start, stop = spans[index]
        if windows and stop - windows[-1][0] <= room:
            w_start, w_stop, members = windows[-1]
            windows[-1] = (w_start, max(w_stop, stop), [*members, index])
        else:
            windows.append((start, min(stop, start + room), [index]))
    return windows


def quantize(source: Path, output: Path, quant: str, *, threads: int = 0) -> Path:
    """Write `output` as `source` quantized to `quant` (one of QUANT_TYPES), atomically."""
    import llama_cpp

    _init_backend()
    key = quant.lower()
    if key not in QUANT_TYPES:
        raise ModelError(f"Unknown quantization {quant!r}; choose one of {', '.join(QUANT_TYPES)}")
    params = llama_cpp.llama_model_quantize_default_params()
    # llama.cpp names each type's file type after it: q4_k_m -> LLAMA_FTYPE_MOSTLY_Q4_K_M.
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{key.upper()}")
    params.nthread = threads or os.cpu_count() or 1
    partial = output.with_name(output.name + ".partial")
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
    if status != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise ModelError(f"llama.cpp could not quantize {source} to {quant} (status {status})")
    os.replace(partial, output)
    return output
