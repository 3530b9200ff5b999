"""A deterministic stand-in for the embedding model, for tests where the model is not the point."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from localsearch.core.embedding import normalize_rows

_WORD = re.compile(r"\w+")


class FakeEmbedder:
    """Bag of hashed words: texts sharing words get similar vectors."""

    name = "fake"
    dimensions = 64
    max_tokens = 128
    special_tokens = 2

    def __init__(self) -> None:
        self.embedded_sequences = 0
        self._vocab: dict[str, int] = {}
        self._words: list[str] = []

    def tokenize(self, text: str) -> list[int]:
        ids = []
        for word in _WORD.findall(text.lower()):
            if word not in self._vocab:
                self._vocab[word] = len(self._words)
                self._words.append(word)
            ids.append(self._vocab[word])
        return ids

    def _vector(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self.dimensions).astype(np.float32)

    def embed_tokens(self, sequences: Sequence[Sequence[int]], role: str = "document") -> np.ndarray:
        self.embedded_sequences += len(sequences)
        out = np.zeros((len(sequences), self.dimensions), dtype=np.float32)
        for row, tokens in enumerate(sequences):
            for token in tokens[: self.max_tokens - self.special_tokens]:
                out[row] += self._vector(self._words[token])
            if not tokens:
                out[row, 0] = 1.0
        return normalize_rows(out)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_tokens([self.tokenize(t) for t in texts])

    def close(self) -> None:
        pass


class FixedQueryEmbedder:
    """Embeds every text as one given vector: a search for exactly that vector."""

    name = "fixed"
    max_tokens = 128
    special_tokens = 2

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = np.asarray(vector, dtype=np.float32)
        self.dimensions = len(self.vector)

    def tokenize(self, text: str) -> list[int]:
        return [1]

    def embed_tokens(self, sequences: Sequence[Sequence[int]], role: str = "document") -> np.ndarray:
        return np.tile(self.vector, (len(sequences), 1))
