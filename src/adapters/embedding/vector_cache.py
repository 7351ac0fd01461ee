"""VectorCache: embeddings by content digest, bounded in bytes, least recently used out first.

The store behind `CachingEmbedder`. It also tracks the embeddings under way, so that callers
asking for a text another caller is embedding right now wait for that vector instead of
embedding the text a second time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# What one entry costs beyond its key and vector bytes: the two bytes objects' headers and the
# ordered dict's slot and list node (measured with tracemalloc: about 170 bytes in CPython 3.12).
ENTRY_OVERHEAD = 200


class Claim:
    """The texts one caller is embedding; others wait for it. `vectors` is None if that failed.

    One per caller's call, not per text: an Event costs more than the lookup of a text.
    """

    def __init__(self) -> None:
        self._done = threading.Event()
        self.vectors: Mapping[bytes, bytes] | None = None

    def settle(self, vectors: Mapping[bytes, bytes] | None) -> None:
        self.vectors = vectors
        self._done.set()

    def wait(self, key: bytes) -> bytes | None:
        """The vector of `key` once the claim is settled; None if its embedding failed."""
        self._done.wait()
        return None if self.vectors is None else self.vectors.get(key)


@dataclass
class Lookup:
    """What `VectorCache.lookup` found for a caller's keys.

    `found`: vectors held; `waiting`: vectors other callers are embedding now; `claimed`: keys
    (each once, in order) this caller must embed, then `fill` or `abandon` its `claim`.
    """

    found: dict[bytes, bytes] = field(default_factory=dict)
    waiting: dict[bytes, Claim] = field(default_factory=dict)
    claimed: list[bytes] = field(default_factory=list)
    claim: Claim = field(default_factory=Claim)
    hits: int = 0
    misses: int = 0


@dataclass(frozen=True)
class CacheStats:
    """Totals since start: `hits`, `misses`, `evictions`; now: `entries`, `size_bytes` held."""

    capacity_bytes: int
    entries: int
    size_bytes: int
    hits: int
    misses: int
    evictions: int


class VectorCache:
    """Vector bytes by key, holding at most `capacity_bytes` (keys, vectors and bookkeeping).

    Thread-safe: one lock guards the entries and the embeddings under way; it is held for dict
    operations only, never while a vector is computed or waited for.
    """

    def __init__(self, capacity_bytes: int) -> None:
        if capacity_bytes < 1:
            raise ValueError("a vector cache needs a capacity of at least one byte")
        self._capacity = capacity_bytes
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()
        self._pending: dict[bytes, Claim] = {}
        self._lock = threading.Lock()
        self._size = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    def lookup(self, keys: Iterable[bytes]) -> Lookup:
        """Sort `keys` into found, waiting and claimed; a key seen twice counts as a hit."""
        seen = Lookup()
        sorted_out: set[bytes] = set()
        with self._lock:
            for key in keys:
                if key in sorted_out:
                    seen.hits += 1
                    continue
                sorted_out.add(key)
                if (vector := self._entries.get(key)) is not None:
                    self._entries.move_to_end(key)
                    seen.found[key] = vector
                    seen.hits += 1
                elif (claim := self._pending.get(key)) is not None:
                    seen.waiting[key] = claim
                    seen.hits += 1
                else:
                    self._pending[key] = seen.claim
                    seen.claimed.append(key)
                    seen.misses += 1
            self._hits += seen.hits
            self._misses += seen.misses
        return seen

    def fill(self, claim: Claim, vectors: Mapping[bytes, bytes]) -> int:
        """Store a claim's vectors, hand them to its waiters; return how many entries went."""
        evicted = 0
        with self._lock:
            for key, vector in vectors.items():
                if self._pending.get(key) is claim:
                    del self._pending[key]
                cost = entry_cost(key, vector)
                if key in self._entries or cost > self._capacity:
                    continue
                while self._size + cost > self._capacity:
                    old_key, old = self._entries.popitem(last=False)
                    self._size -= entry_cost(old_key, old)
                    evicted += 1
                self._entries[key] = vector
                self._size += cost
            self._evictions += evicted
        claim.settle(vectors)
        return evicted

    def abandon(self, claim: Claim, keys: Iterable[bytes]) -> None:
        """Give up a claim (its embedding failed): its waiters embed its texts themselves."""
        with self._lock:
            for key in keys:
                if self._pending.get(key) is claim:
                    del self._pending[key]
        claim.settle(None)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self._capacity,
                len(self._entries),
                self._size,
                self._hits,
                self._misses,
                self._evictions,
            )


def entry_cost(key: bytes, vector: bytes) -> int:
    """Bytes an entry is charged: every key of a cache has the same length, as do its vectors."""
    return len(key) + len(vector) + ENTRY_OVERHEAD
