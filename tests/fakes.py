"""Fakes for the domain's ports: deterministic, instant, no torch."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence

import numpy as np

from domain.ports import Vectors

WORD = re.compile(r"\w+|[^\w\s]")


class FakeEmbedder:
    """Bag-of-words embedder: texts sharing words are similar, identical texts score 1.0.

    Each word piece is a regex token; every word hashes to a fixed random direction, so the
    results are stable across runs and processes. `calls` records every `embed` batch.
    """

    def __init__(self, dimension: int = 32, window: int = 16, model_name: str = "fake-model"):
        self._dimension = dimension
        self._window = window
        self._model_name = model_name
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_seq_length(self) -> int:
        return self._window + 2

    @property
    def window(self) -> int:
        return self._window

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [match.span() for match in WORD.finditer(text)]

    def embed(self, texts: Sequence[str]) -> Vectors:
        with self._lock:
            self.calls.append(list(texts))
        rows = np.zeros((len(texts), self._dimension), np.float32)
        for row, text in enumerate(texts):
            words = [text[s:e].lower() for s, e in self.token_offsets(text)][: self._window]
            for word in words:
                rows[row] += self._direction(word)
            norm = np.linalg.norm(rows[row])
            rows[row] = rows[row] / norm if norm else self._direction("")
        return rows

    def _direction(self, word: str) -> Vectors:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(self._dimension)
        return (vector / np.linalg.norm(vector)).astype(np.float32)
