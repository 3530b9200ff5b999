"""Binary codes: one bit a vector dimension, the first stage of semantic search. The
codes pick candidates by hamming distance (in the database, or in a lane's CodeCache) and
an asymmetric score against the query keeps the best of them for exact rescoring."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from localsearch.core.storage import Space
    from localsearch.core.store_protocol import IndexStore


def binary_codes(matrix: np.ndarray) -> np.ndarray:
    """One bit a dimension (set where the component is positive), least significant bit
    first: the layout of sqlite-vec's vec_quantize_binary, so its hamming distance applies."""
    matrix = np.atleast_2d(matrix)
    return np.packbits(matrix > 0, axis=1, bitorder="little")


class CodeCache:
    """A long-lived lane's copy of a space's binary codes, for the first search stage
    without a database scan: 48 bytes a chunk at 384 dimensions (48 MB per million
    chunks), held column by column so a query's hamming distances are one XOR and
    popcount per 64-bit column (about 6 ms per million chunks here). New chunks are
    appended as they are committed; deleted ones linger until the next full load and
    are dropped by the second stage, which reads each candidate from the database."""

    def __init__(self, min_interval: float = 1.0) -> None:
        self.ids = np.zeros(0, dtype=np.int64)
        self.columns = np.zeros((0, 0), dtype=np.uint64)  # (words, chunks)
        self._version: int | None = None
        self._checked_at = 0.0
        self._min_interval = min_interval
        self._space_id: int | None = None

    @staticmethod
    def _words(codes: np.ndarray) -> np.ndarray:
        """uint8 code rows as 64-bit words, column-major; zero padding adds no distance."""
        width = -(-codes.shape[1] // 8) * 8
        padded = np.zeros((codes.shape[0], width), dtype=np.uint8)
        padded[:, : codes.shape[1]] = codes
        return np.ascontiguousarray(padded.view(np.uint64).T)

    def current(self, index: IndexStore, space: Space) -> CodeCache:
        version = index.data_version()
        if version == self._version and space.id == self._space_id:
            return self
        if self._version is not None and time.monotonic() - self._checked_at < self._min_interval:
            return self  # busy indexing commits often: catch up at most once a second
        stored = index.code_count(space)
        if space.id != self._space_id or stored < len(self.ids) or not len(self.ids):
            ids, codes = index.all_codes(space)
            self.ids, self.columns = ids, self._words(codes)
        else:
            ids, codes = index.all_codes(space, after=int(self.ids[-1]))
            if len(ids):
                self.ids = np.concatenate([self.ids, ids])
                self.columns = np.concatenate([self.columns, self._words(codes)], axis=1)
            if stored < len(self.ids) - len(self.ids) // 4:  # many deleted: start afresh
                ids, codes = index.all_codes(space)
                self.ids, self.columns = ids, self._words(codes)
        self._version, self._space_id, self._checked_at = version, space.id, time.monotonic()
        return self

    def nearest(self, code: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids and codes of the n chunks whose codes are nearest (hamming) to `code`."""
        if not len(self.ids) or n <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros((0, len(code)), dtype=np.uint8)
        query = self._words(code.reshape(1, -1))[:, 0]
        total = len(self.ids)
        distances = np.zeros(total, dtype=np.uint16)
        histogram = np.zeros(64 * len(query) + 1, dtype=np.int64)
        scratch = np.empty(min(total, _BLOCK), dtype=np.uint64)
        bits = np.empty(min(total, _BLOCK), dtype=np.uint8)
        # Block by block, so each block's words, distances and histogram stay in the CPU's
        # cache instead of every pass streaming a million entries through memory.
        for start in range(0, total, _BLOCK):
            stop = min(total, start + _BLOCK)
            block, x, counts = distances[start:stop], scratch[: stop - start], bits[: stop - start]
            for column, word in zip(self.columns, query, strict=True):
                np.bitwise_xor(column[start:stop], word, out=x)
                np.bitwise_count(x, out=counts)
                np.add(block, counts, out=block)
            # Distances are small integers: a histogram finds the cut faster than a partition.
            histogram += np.bincount(block, minlength=len(histogram))
        if n < total:
            cut = int(np.searchsorted(np.cumsum(histogram), n))
            below = np.flatnonzero(distances < cut)
            top = np.concatenate([below, np.flatnonzero(distances == cut)[: n - len(below)]])
        else:
            top = np.arange(total)
        codes = np.ascontiguousarray(np.take(self.columns, top, axis=1).T).view(np.uint8)[:, : len(code)]
        return self.ids[top], codes


_BLOCK = 1 << 15  # chunks a pass of CodeCache.nearest takes at once (256 KB of each word)


def shortlist(ids: np.ndarray, codes: np.ndarray, query: np.ndarray, n: int) -> list[int]:
    """The n of these chunks whose codes best match the query vector itself: the sum of
    the query's components where a chunk's bit is set. Asymmetric (the query keeps its
    precision), it ranks far better than hamming distance to the query's own code: on
    SciFact-like vectors, 2,000 hamming candidates kept 0.985 of the exact top 10 files,
    and the same number taken this way 1.0 (bench/search_latency.py builds the index)."""
    if len(ids) <= n:
        return [int(i) for i in ids]
    # Per code byte, a table of what each of its 256 values adds to the score: one
    # lookup per byte instead of eight multiply-adds.
    padded = np.zeros(codes.shape[1] * 8, dtype=np.float32)
    padded[: len(query)] = query
    tables = np.ascontiguousarray((_BYTE_BITS @ padded.reshape(-1, 8).T).T)  # (bytes, 256)
    # The same per-byte values as a 2-D lookup, gathered through one flat index (quicker).
    offsets = np.arange(codes.shape[1], dtype=np.intp) * 256
    scores = tables.ravel()[codes + offsets].sum(axis=1)
    return [int(i) for i in ids[np.argpartition(-scores, n - 1)[:n]]]


# Row v holds the eight bits of the byte value v, least significant first.
_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little").astype(
    np.float32
)
