"""A stand-in embedder for tests that run the real `localsearch` command in a child
process (selected through LOCALSEARCH_TEST_EMBEDDER): the fake's vectors, at a pace like a
real model's, so a kill at a random moment lands in the middle of the work."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

import numpy as np

from tests.fakes import FakeEmbedder


class PacedFakeEmbedder(FakeEmbedder):
    seconds_per_sequence = 0.004

    def embed_tokens(self, sequences: Sequence[Sequence[int]], *args: object, **kwargs: object) -> np.ndarray:
        time.sleep(self.seconds_per_sequence * len(sequences))
        return super().embed_tokens(sequences)


NOISE = "LOGTEXT"  # in every line below: none may reach the window


class NoisyFakeEmbedder(PacedFakeEmbedder):
    """What a real indexing child writes besides its messages for the user: a logged
    exception with its traceback, a warning, lines straight to file descriptors 1 and 2 (as
    llama.cpp prints) and a stray print."""

    def __init__(self) -> None:
        super().__init__()
        self.noisy = True

    def embed_tokens(self, sequences: Sequence[Sequence[int]], *args: object, **kwargs: object) -> np.ndarray:
        if self.noisy:
            self.noisy = False
            log = logging.getLogger("localsearch.test")
            try:
                raise RuntimeError(f"{NOISE} exception text")
            except RuntimeError:
                log.exception("%s logged exception", NOISE)
            log.warning("%s warning", NOISE)
            log.error("%s error", NOISE)
            os.write(2, f"{NOISE} ggml_assert-like line on stderr\n".encode())
            os.write(1, f"{NOISE} line on stdout\n".encode())
            print(f"{NOISE} stray print", flush=True)
        return super().embed_tokens(sequences)


class PoisonedEngine:
    """The real engine in its child process (LOCALSEARCH_TEST_MODEL), made to abort as a
    failed GGML_ASSERT does on any batch holding the first token of LOCALSEARCH_TEST_POISON:
    for tests of the window's indexing child, which builds its embedder with no arguments."""

    def __new__(cls) -> object:  # type: ignore[misc]
        from pathlib import Path

        from localsearch.core.embedding import LlamaEmbedder
        from localsearch.core.engine_process import ProcessEmbedder

        model = Path(os.environ["LOCALSEARCH_TEST_MODEL"])
        probe = LlamaEmbedder(model, threads=1)
        try:
            poison = probe.tokenize(os.environ["LOCALSEARCH_TEST_POISON"])[0]
        finally:
            probe.close()
        return ProcessEmbedder(model, max_tokens=256, abort_on_token=poison)


class SlowFakeEmbedder(PacedFakeEmbedder):
    """Five times slower: a run that is surely still going when a second one starts."""

    seconds_per_sequence = 0.02
