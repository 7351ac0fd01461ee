"""FaissVectorIndex: exact inner-product search over unit vectors with FAISS."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import faiss
import numpy as np

from domain.ports import IndexInfo, Labels, Vectors


class FaissVectorIndex:
    """A flat (exact) FAISS index addressed by int64 chunk labels.

    `IndexIDMap2` keeps our labels instead of FAISS's positions, so removals never shift
    ids, and can hand stored vectors back (for "more like this" queries).
    Not synchronised: the domain's per-knowledge-base lock serialises writes.
    """

    def __init__(self, dimension: int) -> None:
        self._dimension = dimension
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._labels: set[int] = set()

    @property
    def dimension(self) -> int:
        return self._dimension

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, labels: Labels, vectors: Vectors) -> None:
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(labels), self._dimension):
            raise ValueError(
                f"expected ({len(labels)}, {self._dimension}) vectors, got {vectors.shape}"
            )
        fresh = {int(label) for label in labels}
        if len(fresh) != len(labels) or fresh & self._labels:
            raise ValueError("labels must be unique and not yet in the index")
        if len(labels):
            self._index.add_with_ids(vectors, labels)
            self._labels |= fresh

    def remove(self, labels: Collection[int]) -> int:
        present = np.array([label for label in labels if label in self._labels], dtype=np.int64)
        if not len(present):
            return 0
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(present)))
        self._labels.difference_update(int(label) for label in present)
        return removed

    def get(self, labels: Sequence[int]) -> Vectors:
        missing = [label for label in labels if label not in self._labels]
        if missing:
            raise KeyError(f"unknown labels {missing[:5]}")
        rows = [self._index.reconstruct(int(label)) for label in labels]
        return np.vstack(rows) if rows else np.zeros((0, self._dimension), np.float32)

    def describe(self) -> IndexInfo:
        # Flat storage is the vectors themselves plus the id map (two int64 per vector).
        return IndexInfo("flat", len(self) * (self._dimension * 4 + 16))

    def search(
        self,
        vector: Vectors,
        k: int,
        allowed: Collection[int] | None = None,
        probes: int | None = None,
    ) -> list[tuple[int, float]]:
        k = min(k, len(self))
        if k <= 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self._dimension)
        params = None
        if allowed is not None:
            chosen = np.array(sorted(allowed), dtype=np.int64)
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(chosen))  # type: ignore[call-arg]
        scores, found = self._index.search(query, k, params=params)
        return [
            (int(label), float(score)) for label, score in zip(found[0], scores[0]) if label != -1
        ]
