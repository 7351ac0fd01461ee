"""CoalescingEmbedder, the `Embedder` port over any `Encoder`: concurrent callers share batches."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.embedding.coalescer import BatchObserver, Coalescer
from adapters.embedding.encoder import Encoder
from domain.ports import Vectors


class CoalescingEmbedder:
    """Embeds through `encoder`, batching every caller's texts into its model calls.

    Up to `batch_size` texts and `batch_size` x `max_seq_length` padded word pieces go in one
    call; `encoder.concurrent_calls` calls run at once, each on a model thread of its own.
    `observer` is told the size and duration of every call (the /metrics batch histograms).
    Once no text is left and no call runs, the encoder may give back its working memory.
    """

    def __init__(
        self, encoder: Encoder, batch_size: int = 32, observer: BatchObserver | None = None
    ) -> None:
        self._encoder = encoder
        self._coalescer = Coalescer(
            encoder.encode,
            encoder.dimension,
            max_texts=batch_size,
            token_budget=batch_size * encoder.max_seq_length,
            max_tokens=encoder.max_seq_length,
            observer=observer,
            call_overhead=encoder.call_overhead,
            parallel=encoder.concurrent_calls,
            on_idle=encoder.release_memory,
        )

    @property
    def encoder(self) -> Encoder:
        """The model this embedder runs, e.g. to ask an `OnnxEncoder` where its export is."""
        return self._encoder

    @property
    def model_name(self) -> str:
        return self._encoder.model_name

    @property
    def fingerprint(self) -> str:
        return self._encoder.fingerprint

    @property
    def dimension(self) -> int:
        return self._encoder.dimension

    @property
    def max_seq_length(self) -> int:
        return self._encoder.max_seq_length

    @property
    def window(self) -> int:
        return self._encoder.window

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self._coalescer(texts)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self._encoder.token_offsets(text)
