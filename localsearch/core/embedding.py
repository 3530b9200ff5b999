"""The embedding engine: the only module that imports llama_cpp.

Texts arrive as token ids (the chunker tokenized them once), are packed into batches
that never exceed the context llama.cpp was given (an encoder must see a whole batch
in one micro-batch, or llama.cpp aborts the process), mean-pooled by llama.cpp and
returned L2-normalized as float32 rows.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from localsearch.errors import ModelError


class Embedder(Protocol):
    """What indexing and search need from a model."""

    name: str
    dimensions: int
    max_tokens: int  # the longest input, special tokens included
    special_tokens: int  # tokens the model adds around each input ([CLS], [SEP])

    def tokenize(self, text: str) -> list[int]:
        """Content tokens of `text`, without special tokens."""
        ...

    def embed_tokens(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """One normalized float32 row per sequence of content tokens."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32, copy=False)


def truncate_dimensions(matrix: np.ndarray, dimensions: int) -> np.ndarray:
    """Matryoshka truncation: keep the first `dimensions` components, re-normalize."""
    if dimensions <= 0 or dimensions >= matrix.shape[1]:
        return matrix
    return normalize_rows(np.ascontiguousarray(matrix[:, :dimensions]))


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
            llama_cpp.llama_backend_init()
            _backend_ready = True


class LlamaEmbedder:
    """A GGUF embedding model in llama.cpp, CPU or GPU, one context per instance.

    Not thread-safe: use one instance per thread (indexing lane, query lane).
    """

    def __init__(
        self,
        model_path: Path | str,
        *,
        name: str | None = None,
        threads: int = 0,
        max_tokens: int = 0,
        batch_tokens: int = 0,
        flash_attention: bool = True,
    ) -> None:
        import llama_cpp

        _init_backend()
        self._lib = llama_cpp
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelError(f"Model file not found: {self.model_path}")
        self.name = name or self.model_path.stem

        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = 999 if llama_cpp.llama_supports_gpu_offload() else 0
        self._model = llama_cpp.llama_model_load_from_file(str(self.model_path).encode(), model_params)
        if not self._model:
            raise ModelError(f"llama.cpp could not load {self.model_path}")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self.dimensions = int(llama_cpp.llama_model_n_embd(self._model))
        n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(self._model))

        # Inputs are cut to max_tokens (at most the training context); a batch always holds
        # one whole input, since an encoder given more tokens than n_ubatch aborts.
        self.max_tokens = min(max_tokens or n_ctx_train, n_ctx_train)
        self.batch_tokens = max(batch_tokens or self.max_tokens, self.max_tokens)
        self.max_sequences = min(self.batch_tokens, int(llama_cpp.llama_max_parallel_sequences()))

        ctx_params = llama_cpp.llama_context_default_params()
        ctx_params.n_ctx = self.batch_tokens
        ctx_params.n_batch = self.batch_tokens
        ctx_params.n_ubatch = self.batch_tokens  # encoders need the whole batch in one ubatch
        ctx_params.n_seq_max = self.max_sequences
        ctx_params.kv_unified = True
        ctx_params.embeddings = True
        ctx_params.pooling_type = llama_cpp.LLAMA_POOLING_TYPE_MEAN
        n_threads = threads or os.cpu_count() or 1
        ctx_params.n_threads = n_threads
        ctx_params.n_threads_batch = n_threads
        ctx_params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if flash_attention
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        self._ctx = llama_cpp.llama_init_from_model(self._model, ctx_params)
        if not self._ctx:
            llama_cpp.llama_model_free(self._model)
            raise ModelError(f"llama.cpp could not create a context for {self.model_path}")

        self._bos = (
            int(llama_cpp.llama_vocab_bos(self._vocab))
            if llama_cpp.llama_vocab_get_add_bos(self._vocab)
            else -1
        )
        self._eos = (
            int(llama_cpp.llama_vocab_eos(self._vocab))
            if llama_cpp.llama_vocab_get_add_eos(self._vocab)
            else -1
        )
        self.special_tokens = int(self._bos >= 0) + int(self._eos >= 0)

        # A batch whose arrays are numpy buffers: filled with slices, not per-token ctypes calls.
        n = self.batch_tokens
        self._tokens = np.zeros(n, dtype=np.int32)
        self._positions = np.zeros(n, dtype=np.int32)
        self._seq_ids = np.zeros(n, dtype=np.int32)
        self._n_seq_id = np.ones(n, dtype=np.int32)
        self._outputs = np.ones(n, dtype=np.int8)
        int_p = ctypes.POINTER(ctypes.c_int32)
        base = self._seq_ids.ctypes.data
        self._seq_id_ptrs = (int_p * n)(*[ctypes.cast(base + 4 * i, int_p) for i in range(n)])
        # Typed as Any: the bindings declare these pointer fields as arrays.
        self._batch: Any = cast(Any, llama_cpp.llama_batch())
        self._batch.token = self._tokens.ctypes.data_as(int_p)
        self._batch.embd = ctypes.POINTER(ctypes.c_float)()
        self._batch.pos = self._positions.ctypes.data_as(int_p)
        self._batch.n_seq_id = self._n_seq_id.ctypes.data_as(int_p)
        self._batch.seq_id = ctypes.cast(self._seq_id_ptrs, ctypes.POINTER(int_p))
        self._batch.logits = self._outputs.ctypes.data_as(ctypes.POINTER(ctypes.c_int8))
        self._token_buffer = (llama_cpp.llama_token * 4096)()

    @property
    def max_content_tokens(self) -> int:
        return self.max_tokens - self.special_tokens

    def close(self) -> None:
        if getattr(self, "_ctx", None):
            self._lib.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            self._lib.llama_model_free(self._model)
            self._model = None

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

    def _with_specials(self, tokens: Sequence[int]) -> list[int]:
        body = list(tokens[: self.max_content_tokens])
        if self._bos >= 0:
            body.insert(0, self._bos)
        if self._eos >= 0:
            body.append(self._eos)
        return body

    def embed_tokens(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        out = np.empty((len(sequences), self.dimensions), dtype=np.float32)
        pending: list[tuple[int, list[int]]] = []
        used = 0
        for index, tokens in enumerate(sequences):
            full = self._with_specials(tokens)
            if pending and (used + len(full) > self.batch_tokens or len(pending) >= self.max_sequences):
                self._run(pending, out)
                pending, used = [], 0
            pending.append((index, full))
            used += len(full)
        if pending:
            self._run(pending, out)
        return normalize_rows(out)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_tokens([self.tokenize(t) for t in texts])

    def _run(self, pending: list[tuple[int, list[int]]], out: np.ndarray) -> None:
        lib = self._lib
        position = 0
        for seq, (_, tokens) in enumerate(pending):
            n = len(tokens)
            self._tokens[position : position + n] = tokens
            self._positions[position : position + n] = np.arange(n, dtype=np.int32)
            self._seq_ids[position : position + n] = seq
            position += n
        self._batch.n_tokens = position
        lib.llama_memory_clear(lib.llama_get_memory(self._ctx), True)
        status = lib.llama_decode(self._ctx, self._batch)
        if status != 0:
            raise ModelError(f"llama.cpp failed to embed a batch (status {status})")
        for seq, (index, _) in enumerate(pending):
            pointer = lib.llama_get_embeddings_seq(self._ctx, seq)
            if not pointer:
                raise ModelError("llama.cpp returned no embedding for a sequence")
            out[index] = np.ctypeslib.as_array(pointer, shape=(self.dimensions,))


QUANT_TYPES = ("f16", "bf16", "q8_0", "q4_k_m")


def quantize(source: Path, output: Path, quant: str, *, threads: int = 0) -> Path:
    """Write `output` as `source` quantized to `quant` (one of QUANT_TYPES), atomically."""
    import llama_cpp

    _init_backend()
    ftypes = {
        "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16,
        "bf16": llama_cpp.LLAMA_FTYPE_MOSTLY_BF16,
        "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
        "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
    }
    key = quant.lower()
    if key not in ftypes:
        raise ModelError(f"Unknown quantization {quant!r}; choose one of {', '.join(QUANT_TYPES)}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftypes[key]
    params.nthread = threads or os.cpu_count() or 1
    partial = output.with_name(output.name + ".partial")
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
    if status != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise ModelError(f"llama.cpp could not quantize {source} to {quant} (status {status})")
    os.replace(partial, output)
    return output


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()
