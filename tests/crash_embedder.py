"""A stand-in embedder for tests that run the real `localsearch` command in a child
process (selected through LOCALSEARCH_TEST_EMBEDDER): the fake's vectors, at a pace like a
real model's, so a kill at a random moment lands in the middle of the work."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from tests.fakes import FakeEmbedder


class PacedFakeEmbedder(FakeEmbedder):
    seconds_per_sequence = 0.004

    def embed_tokens(self, sequences: Sequence[Sequence[int]], *args: object, **kwargs: object) -> np.ndarray:
        time.sleep(self.seconds_per_sequence * len(sequences))
        return super().embed_tokens(sequences)
