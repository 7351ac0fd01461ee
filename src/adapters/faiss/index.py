"""FaissVectorIndex: exact search for small knowledge bases, approximate (IVF) for large ones."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from pathlib import Path

import faiss
import numpy as np

from adapters.faiss import compressed, ivf, rebuild
from adapters.faiss.bulk import BulkLoad
from adapters.faiss.compressed import VectorStore
from adapters.faiss.kept import KeptCopy
from adapters.heap import release_free_memory
from domain.ports import IndexInfo, Labels, Vectors

log = logging.getLogger(__name__)

DEFAULT_ANN_THRESHOLD = 50_000  # exact scan ~5 ms here; IVF at 100k: ~2 ms, recall@10 0.99
DEFAULT_COMPRESS_THRESHOLD = 500_000  # float32 lists: 0.8 GB here; SQ8 codes: 0.2 GB
RETRAIN_GROWTH = 4  # retrain the lists when the size is 4x off the size they were trained for

# One rebuild at a time in the process: each holds a second copy of its vectors while it runs.
_REBUILDS = threading.Semaphore(1)


class FaissVectorIndex:
    """A `VectorIndex` over FAISS: inner-product search over int64-labelled unit vectors.

    Exact up to `ann_threshold` vectors; past it a background thread trains an IVF index and
    swaps it in; below half of it, it swaps back to exact search (the gap stops flapping). Given
    a `store` of the float32 vectors, past `compress_threshold` the IVF lists hold 8-bit codes
    and searches re-score their best candidates from the store (`compressed`); uncompressed
    again below half of it.
    Searches read `self._current` once and never take a lock, so a rebuild never blocks them.
    Writers (the domain calls add/remove under its per-knowledge-base write lock) take
    `self._mutex`, which the builder also holds while it copies vectors out of the live index;
    changes made while a build runs are recorded and replayed onto the new index before the swap.
    """

    def __init__(
        self,
        dimension: int,
        ann_threshold: int = DEFAULT_ANN_THRESHOLD,
        compress_threshold: int = DEFAULT_COMPRESS_THRESHOLD,
        store: VectorStore | None = None,
        kept: Path | None = None,
    ) -> None:
        if ann_threshold < 1 or compress_threshold < 1:
            raise ValueError("ann_threshold and compress_threshold must be at least 1")
        self._dimension = dimension
        self._threshold = ann_threshold
        self._compress_at = compress_threshold
        self._store = store
        self._current = ivf.new_exact(dimension)
        self._trained_for = 0
        self._highest = -1  # labels above every label ever added cannot be in the index
        self._mutex = threading.Lock()
        self._changes: list[rebuild.Change] | None = None  # recorded while a build runs
        self._builder: threading.Thread | None = None
        self._failed_at: int | None = None
        self._bulk: BulkLoad | None = None  # while `expect`ed vectors go straight into IVF
        self._kept = None if kept is None else KeptCopy(kept, self._mutex, lambda: self._current)

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def approximate(self) -> bool:
        return not ivf.is_exact(self._current)

    @property
    def compressed(self) -> bool:
        """Whether the lists hold 8-bit codes (and the float32 vectors are read from the store)."""
        return compressed.is_compressed(self._current)

    @property
    def lists(self) -> int:
        """Inverted lists of the current index: 1 while exact."""
        return int(self._current.nlist)

    @property
    def probes(self) -> int:
        """Lists a search probes unless told otherwise: calibrated at each IVF build."""
        return int(self._current.nprobe)

    @property
    def rebuilding(self) -> bool:
        return self._builder is not None

    def __len__(self) -> int:
        return int(self._current.ntotal)

    def add(self, labels: Labels, vectors: Vectors) -> None:
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(labels), self._dimension):
            raise ValueError(
                f"expected ({len(labels)}, {self._dimension}) vectors, got {vectors.shape}"
            )
        if not len(labels):
            return
        if len(np.unique(labels)) != len(labels):
            raise ValueError("labels must be unique")
        with self._mutex:
            if labels.min() <= self._highest and any(
                ivf.contains(self._current, label) for label in labels
            ):
                raise ValueError("labels must not be in the index yet")
            if self._bulk is not None:
                self._bulk_add(labels, vectors)
            else:
                ivf.add(self._current, labels, vectors)
            self._highest = max(self._highest, int(labels.max()))
            if self._changes is not None:
                self._changes.append((labels.copy(), vectors.copy()))
            self._maybe_rebuild()
            self._changed(len(labels))

    def expect(self, count: int) -> None:
        """About `count` vectors are about to be added to this empty index, in one or more
        batches (a restore, a load at start): past the ANN threshold, train the IVF lists on the
        first of them and add the rest straight in, instead of an exact index and a rebuild.

        Only a hint: ignored unless the index is empty, exact and not rebuilding; a load that
        brings fewer vectors leaves a valid IVF index with the default probes.
        """
        with self._mutex:
            if count <= self._threshold or len(self) or self.approximate or self._builder:
                return
            self._bulk = BulkLoad(count, self._compressing(count))
            self._trained_for = count

    def _bulk_add(self, labels: Labels, vectors: Vectors) -> None:
        """Add under the mutex during a bulk load; end it once every expected vector is in."""
        assert self._bulk is not None
        before = self._current
        self._current = self._bulk.add(before, labels, vectors)
        if self._current is not before:
            del before
            release_free_memory()  # the exact index that held the training sample
        if self._bulk.complete(self._current):
            self._bulk = None
            if self._kept is not None:  # the build a restart would otherwise do again
                self._kept.built(approximate=True, wait=False)

    def remove(self, labels: Collection[int]) -> int:
        keys = np.fromiter(labels, dtype=np.int64, count=len(labels))
        with self._mutex:
            if self._bulk is not None:  # a remove ends a bulk load: ordinary writes from now
                self._bulk.complete(self._current, anyway=True)
                self._bulk = None
            removed = ivf.remove(self._current, keys)
            if removed and self._changes is not None:
                self._changes.append((keys, None))
            self._maybe_rebuild()
            self._changed(removed)
        return removed

    def get(self, labels: Sequence[int]) -> Vectors:
        index = self._current
        if self._store is not None and compressed.is_compressed(index):
            return compressed.get(index, self._store, np.asarray(labels, dtype=np.int64))
        return ivf.get(index, labels)

    def describe(self) -> IndexInfo:
        index = self._current
        kind = "flat" if ivf.is_exact(index) else "ivf"
        if compressed.is_compressed(index):
            kind = "ivf-sq8"
        return IndexInfo(kind, ivf.memory_bytes(index))

    def search(
        self,
        vector: Vectors,
        k: int,
        allowed: Collection[int] | None = None,
        probes: int | None = None,
        exact: bool = False,
    ) -> list[tuple[int, float]]:
        index = self._current  # read once: a swap replaces the reference, never the index
        k = min(k, int(index.ntotal))
        if k <= 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self._dimension)
        probes = None if exact else probes
        if self._store is None or not compressed.is_compressed(index):
            return ivf.search(index, query, k, allowed, probes, exact)
        # Exact too: every code is compared, and the best candidates re-scored from float32.
        wider = min(int(index.ntotal), compressed.candidates(k))
        found = ivf.search(index, query, wider, allowed, probes, exact)
        return compressed.rescored(self._store, query, found, k)

    def wait_for_rebuild(self, timeout: float | None = None) -> bool:
        """Wait for a running rebuild to finish; whether none runs any more (for tests, bench)."""
        while (builder := self._builder) is not None:
            builder.join(timeout)
            if builder.is_alive():
                return False
        return True

    # The copy kept between runs (adapters.faiss.kept)

    def resume(self) -> Labels:
        """Take back the kept copy, if any: the labels it holds (see `VectorIndex.resume`)."""
        with self._mutex:
            if self._kept is None or len(self) or self._bulk or self._builder:
                return np.sort(ivf.all_labels(self._current))
            index = self._kept.read(self._dimension, compressed_ok=self._store is not None)
            if index is None:
                return np.zeros(0, dtype=np.int64)
            labels = np.sort(ivf.all_labels(index))
            self._current, self._trained_for = index, int(index.ntotal)
            self._highest = int(labels[-1]) if len(labels) else -1
            self._maybe_rebuild()  # the thresholds may have changed since it was written
        return labels

    def discard(self) -> None:
        if self._kept is not None:
            self._kept.discard()

    def close(self) -> None:
        """At shutdown: write the copy if the index changed since it was written."""
        if self._kept is not None:
            self._kept.close(self.approximate and self._bulk is None)

    def _changed(self, count: int) -> None:
        """`count` vectors were added or removed; the caller holds `self._mutex`."""
        if self._kept is not None and count:
            self._kept.changed(count, len(self), self.approximate and self._bulk is None)

    # Rebuilding

    def _compressing(self, count: int) -> bool:
        """Whether an index of `count` vectors built now holds codes (with the usual gap)."""
        if self._store is None:
            return False
        if self.compressed:
            return count >= self._compress_at // 2
        return count > self._compress_at

    def _wanted(self) -> tuple[int, bool] | None:
        """(nlist, compressed) a rebuild should build now, or None when the current index fits."""
        count = len(self)
        squeeze = self._compressing(count)
        if not self.approximate:
            return (ivf.lists_for(count), squeeze) if count > self._threshold else None
        if count < self._threshold // 2:
            return ivf.EXACT_LISTS, False
        if not self._trained_for / RETRAIN_GROWTH <= count <= self._trained_for * RETRAIN_GROWTH:
            return ivf.lists_for(count), squeeze
        return (ivf.lists_for(count), squeeze) if squeeze != self.compressed else None

    def _maybe_rebuild(self) -> None:
        """Start a rebuild if one is due; the caller holds `self._mutex`."""
        if self._builder is not None or self._bulk is not None:
            return
        if self._wanted() is None:
            return
        if self._failed_at is not None and len(self) < 2 * self._failed_at:
            return
        self._builder = threading.Thread(target=self._build, name="faiss-rebuild", daemon=True)
        self._builder.start()

    def _build(self) -> None:
        rebuild.background()
        try:
            with _REBUILDS:
                target = self._rebuilt()
                if target is not None:
                    self._swap(target)
                    del target
                    release_free_memory()  # the replaced index and the copies made
                    if self._kept is not None:
                        self._kept.built(self.approximate, wait=True)
        except Exception:
            log.exception("rebuilding the vector index failed; keeping the current one")
            self._failed_at = len(self)
        finally:
            with self._mutex:
                self._changes = None
                self._builder = None
                self._maybe_rebuild()  # the size may have crossed a line meanwhile

    def _rebuilt(self) -> faiss.IndexIVF | None:
        """A new index holding what the current one held when the recording of changes began."""
        source = self._current
        with self._mutex:
            wanted = self._wanted()  # again: the size may have moved while we queued
            if wanted is None:
                return None
            # The snapshot and the start of the recording are atomic: every change is either
            # in the snapshot or in the record, never both.
            labels = ivf.all_labels(source)
            self._changes = []
        nlist, squeeze = wanted
        store = self._store

        def copy(batch: Labels) -> tuple[Labels, Vectors]:
            return compressed.copy(source, store, batch)

        return rebuild.rebuilt(copy, source.d, labels, nlist, squeeze, self._mutex)

    def _swap(self, target: faiss.IndexIVF) -> None:
        """Replay the recorded changes onto `target`, the last few under the mutex, and swap."""
        done = rebuild.catch_up(target, lambda: self._changes or [], self._mutex)
        with self._mutex:
            rebuild.replay(target, (self._changes or [])[done:])
            self._changes = None
            self._trained_for = int(target.ntotal)
            self._current = target
            self._failed_at = None
        log.info("vector index now %s", rebuild.describe(target))
