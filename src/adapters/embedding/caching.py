"""CachingEmbedder, the `Embedder` port in front of another: each distinct text is embedded once.

Keys are a keyed BLAKE2b digest of the text's UTF-8 bytes, the key being the model's
fingerprint: a text costs 16 bytes of key whatever its length, and a vector cached for one
model can never answer for another. A hit returns the very bytes the model produced for that
text, so search results are the same with or without the cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from adapters.embedding.vector_cache import CacheStats, Lookup, VectorCache
from domain.ports import Embedder, Vectors

KEY_BYTES = 16  # 128 bits: a collision among a billion texts has odds below 1e-20


class CacheObserver(Protocol):
    """Told after every `embed` call: its hits, misses and evictions, then the cache's size."""

    def __call__(
        self, *, hits: int, misses: int, evictions: int, entries: int, size_bytes: int
    ) -> None: ...


class CachingEmbedder:
    """Embeds through `embedder` only the texts `cache` does not hold or is not getting already.

    A text in a call that another caller is embedding at this moment waits for that vector
    (concurrent imports of the same documents run the model once). Texts are queries or
    chunks alike: the model sees no difference, so neither does the cache.
    """

    def __init__(
        self, embedder: Embedder, cache: VectorCache, observer: CacheObserver | None = None
    ) -> None:
        self._embedder = embedder
        self._cache = cache
        self._observer = observer
        self._salt = hashlib.blake2b(embedder.fingerprint.encode()).digest()

    @property
    def inner(self) -> Embedder:
        """The embedder behind the cache, e.g. to reach a `CoalescingEmbedder`'s encoder."""
        return self._embedder

    @property
    def model_name(self) -> str:
        return self._embedder.model_name

    @property
    def fingerprint(self) -> str:
        return self._embedder.fingerprint

    @property
    def dimension(self) -> int:
        return self._embedder.dimension

    @property
    def max_seq_length(self) -> int:
        return self._embedder.max_seq_length

    @property
    def window(self) -> int:
        return self._embedder.window

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self._embedder.token_offsets(text)

    def stats(self) -> CacheStats:
        return self._cache.stats()

    def key(self, text: str) -> bytes:
        """The cache key of `text` for this model (surrogatepass: any str, one key each)."""
        data = text.encode("utf-8", "surrogatepass")
        return hashlib.blake2b(data, digest_size=KEY_BYTES, key=self._salt).digest()

    def embed(self, texts: Sequence[str]) -> Vectors:
        keys = [self.key(text) for text in texts]
        seen = self._cache.lookup(keys)
        vectors = dict(seen.found)
        evicted = self._embed_claimed(texts, keys, seen, vectors) if seen.claimed else 0
        # Only now, with this call's own claims settled: two callers each waiting for the
        # other's texts would otherwise wait for ever.
        for key, claim in seen.waiting.items():
            vector = claim.wait(key)
            vectors[key] = vector if vector is not None else self._embed_alone(texts, keys, key)
        if self._observer is not None:
            stats = self._cache.stats()
            self._observer(
                hits=seen.hits,
                misses=seen.misses,
                evictions=evicted,
                entries=stats.entries,
                size_bytes=stats.size_bytes,
            )
        joined = bytearray(b"".join(vectors[key] for key in keys))
        return np.frombuffer(joined, dtype=np.float32).reshape(len(keys), self.dimension)

    def _embed_claimed(
        self, texts: Sequence[str], keys: list[bytes], seen: Lookup, vectors: dict[bytes, bytes]
    ) -> int:
        """Embed the texts this call claimed (each once), store them; return the evictions."""
        text_of = dict(zip(keys, texts))
        try:
            matrix = self._embedder.embed([text_of[key] for key in seen.claimed])
        except BaseException:
            self._cache.abandon(seen.claim, seen.claimed)
            raise
        rows = np.ascontiguousarray(matrix, dtype=np.float32)
        claimed = {key: row.tobytes() for key, row in zip(seen.claimed, rows)}
        vectors.update(claimed)
        return self._cache.fill(seen.claim, claimed)

    def _embed_alone(self, texts: Sequence[str], keys: list[bytes], key: bytes) -> bytes:
        """The text of `key`, whose embedding by another caller failed, embedded by this one."""
        (row,) = self._embedder.embed([texts[keys.index(key)]])
        return np.ascontiguousarray(row, dtype=np.float32).tobytes()
