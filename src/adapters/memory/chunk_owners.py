"""ChunkOwners: chunk label -> document id in two sorted numpy columns, 16 bytes a chunk.

No port of its own: the in-memory repository's (and so SQLite's) label -> id map.

A dict of int to str costs about 100 bytes a chunk. Labels come from a counter, so new ones
are nearly always above every label held and append at the end; the rare smaller label is
merged in by a sort. Removal leaves a hole (owner None), and the holes are squeezed out once
they are half of the columns, so every call stays O(1) amortised and lookups O(log n).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
from numpy.typing import NDArray

MIN_CAPACITY = 64


class ChunkOwners:
    """Chunk label -> document id for the repositories of `memory` and `sqlite` (no port)."""

    def __init__(self) -> None:
        self._labels: NDArray[np.int64] = np.zeros(MIN_CAPACITY, dtype=np.int64)
        self._owners: NDArray[np.object_] = np.full(MIN_CAPACITY, None, dtype=object)
        self._size = 0  # used slots, holes included
        self._holes = 0

    def __len__(self) -> int:
        return self._size - self._holes

    def add(self, labels: Sequence[int], owners: Sequence[str]) -> None:
        """Map each of `labels` to the owner at the same place in `owners`."""
        keys = np.asarray(labels, dtype=np.int64)  # an array("q") is taken without a copy
        if not len(keys):
            return
        ascending = len(keys) == 1 or bool(np.all(keys[1:] > keys[:-1]))
        if ascending and (self._size == 0 or keys[0] > self._labels[self._size - 1]):
            self._reserve(self._size + len(keys))
            self._labels[self._size : self._size + len(keys)] = keys
            self._owners[self._size : self._size + len(keys)] = _objects(owners)
            self._size += len(keys)
        else:
            self._merge(keys, _objects(owners))

    def remove(self, labels: Collection[int]) -> None:
        positions = self._positions(np.fromiter(labels, dtype=np.int64, count=len(labels)))
        found = np.unique(positions[positions >= 0])
        self._owners[found] = None
        self._holes += len(found)
        if self._holes > MIN_CAPACITY and self._holes * 2 > self._size:
            self._squeeze()

    def owners(self, labels: Collection[int]) -> list[tuple[int, str]]:
        """(label, owner) of each known label among `labels`, in their order."""
        keys = np.fromiter(labels, dtype=np.int64, count=len(labels))
        positions = self._positions(keys)
        return [
            (int(label), self._owners[position])
            for label, position in zip(keys.tolist(), positions.tolist())
            if position >= 0
        ]

    def labels(self) -> NDArray[np.int64]:
        """Every label held, ascending (a copy)."""
        held = self._labels[: self._size]
        if not self._holes:
            return held.copy()
        live: NDArray[np.bool_] = self._owners[: self._size] != None  # noqa: E711  # elementwise
        return held[live]

    def _positions(self, keys: NDArray[np.int64]) -> NDArray[np.int64]:
        """Where each key is held, -1 where it is not (absent, or a hole)."""
        held = self._labels[: self._size]
        positions = np.searchsorted(held, keys).astype(np.int64)
        inside = positions < self._size
        hit = np.zeros(len(keys), dtype=bool)
        hit[inside] = held[positions[inside]] == keys[inside]
        hit[hit] = self._owners[positions[hit]] != None  # noqa: E711  # elementwise
        return np.where(hit, positions, -1)

    def _reserve(self, size: int) -> None:
        if size <= len(self._labels):
            return
        capacity = max(size, len(self._labels) * 3 // 2)
        labels = np.zeros(capacity, dtype=np.int64)
        owners = np.full(capacity, None, dtype=object)
        labels[: self._size] = self._labels[: self._size]
        owners[: self._size] = self._owners[: self._size]
        self._labels, self._owners = labels, owners

    def _merge(self, keys: NDArray[np.int64], added: NDArray[np.object_]) -> None:
        held = self._labels[: self._size]
        live = self._owners[: self._size] != None  # noqa: E711  # elementwise
        keep = live & ~np.isin(held, keys)  # a label given again takes its new owner
        labels = np.concatenate([held[keep], keys])
        owners = np.concatenate([self._owners[: self._size][keep], added])
        order = np.argsort(labels, kind="stable")
        self._size, self._holes = 0, 0
        self._reserve(len(labels))
        self._labels[: len(labels)] = labels[order]
        self._owners[: len(labels)] = owners[order]
        self._owners[len(labels) :] = None
        self._size = len(labels)

    def _squeeze(self) -> None:
        live = self._owners[: self._size] != None  # noqa: E711  # elementwise
        count = int(live.sum())
        self._labels[:count] = self._labels[: self._size][live]
        self._owners[:count] = self._owners[: self._size][live]
        self._owners[count : self._size] = None
        self._size, self._holes = count, 0


def _objects(values: Sequence[str]) -> NDArray[np.object_]:
    """An object array of the very str objects given (shared with the repository's keys)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array
