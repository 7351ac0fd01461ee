"""The `Encoder` port: one model turning a batch of texts into vectors, knowing of no callers.

`OnnxEncoder` and `SentenceTransformerEncoder` implement it; `CoalescingEmbedder` turns any
encoder into the domain's `Embedder` by batching concurrent callers' texts into its calls.
"""

from __future__ import annotations

from typing import Protocol

from adapters.embedding.model_fingerprint import ModelIdentity
from domain.ports import Vectors


class Encoder(Protocol):
    """A loaded model: the `Embedder` port's description of it, one call at a time per thread."""

    @property
    def model_name(self) -> str: ...

    @property
    def fingerprint(self) -> str:
        """What the model is, wherever it lies: the `Embedder` port's fingerprint."""

    @property
    def dimension(self) -> int: ...

    @property
    def max_seq_length(self) -> int: ...

    @property
    def window(self) -> int: ...

    @property
    def call_overhead(self) -> int:
        """What one call costs beyond its texts, in padded word pieces (texts x longest)."""

    @property
    def concurrent_calls(self) -> int:
        """How many `encode` calls may run side by side, each on a thread of its own."""

    def encode(self, texts: list[str]) -> Vectors:
        """One model call: a (len(texts), dimension) float32 matrix of L2-normalised rows."""

    def token_offsets(self, text: str) -> list[tuple[int, int]]: ...

    def release_memory(self) -> None:
        """Give back the working memory of the calls just run; called while none runs."""


class LoadedModel:
    """What every encoder says about the model it loaded, from what its constructor set."""

    _identity: ModelIdentity
    _dimension: int
    _max_seq_length: int
    _window: int

    @property
    def model_name(self) -> str:
        return self._identity.name

    @property
    def fingerprint(self) -> str:
        return self._identity.fingerprint

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_seq_length(self) -> int:
        return self._max_seq_length

    @property
    def window(self) -> int:
        return self._window
