"""Compressed IVF lists (SQ8) whose candidates are re-scored against the float32 vectors on disk.

No port of its own: the layout `FaissVectorIndex` switches to past its compression threshold.

A float32 vector takes 4 bytes a dimension in RAM; its 8-bit scalar-quantised code takes one.
The codes rank candidates (an `IndexIVFScalarQuantizer` over inner product, with the
same k-means lists and hashtable direct map as the flat layout, so removes stay O(1)); the best
`RERANK` x k of them are then read as float32 from a `VectorStore` (the SQLite file that already
journals every vector) and scored exactly, so scores stay the true cosines and `get` returns the
vectors as they were added. The codes are not residuals: one scan of a list costs what the flat
scan costs, with a quarter of the memory traffic.
"""

from __future__ import annotations

from typing import Protocol

import faiss
import numpy as np

from adapters.faiss import ivf
from domain.ports import Labels, Vectors

RERANK = 8  # candidates re-scored exactly per hit wanted (docs/performance.md)
RERANK_HITS = 50  # ... for the first 50 hits; each further one adds one candidate
SQ8: int = faiss.ScalarQuantizer.QT_8bit


class VectorStore(Protocol):
    """Float32 vectors by label, kept outside the index (for compressed FAISS indexes only).

    An adapter-level dependency, not a domain port: the memory backend hands the FAISS index
    the SQLite file's vectors. A vector must be in the store before it is added to the index.
    """

    def read(self, labels: Labels) -> tuple[Labels, Vectors]:
        """(the labels found, in the order asked; their float32 vectors): absent ones skipped."""


def new_compressed(sample: Vectors, nlist: int) -> faiss.IndexIVFScalarQuantizer:
    """Lists as `ivf.new_approximate` trains them, holding 8-bit codes trained on `sample`."""
    dimension = sample.shape[1]
    index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dimension), dimension, nlist, SQ8, faiss.METRIC_INNER_PRODUCT, False
    )
    return ivf.trained(index, sample)


def is_compressed(index: faiss.IndexIVF) -> bool:
    return isinstance(index, faiss.IndexIVFScalarQuantizer)


def copy(
    index: faiss.IndexIVF, store: VectorStore | None, labels: Labels
) -> tuple[Labels, Vectors]:
    """`ivf.copy` for either layout: the float32 vectors of the labels still in `index`."""
    if not is_compressed(index):
        return ivf.copy(index, labels)
    assert store is not None
    present, vectors = store.read(labels)
    kept = np.array([ivf.contains(index, label) for label in present], dtype=bool)
    return present[kept], vectors[kept]


def get(index: faiss.IndexIVF, store: VectorStore, labels: Labels) -> Vectors:
    """The float32 vectors of `labels` from the store; KeyError unless all are in `index`."""
    keys = np.ascontiguousarray(labels, dtype=np.int64)
    ivf.get(index, keys)  # KeyError naming the labels this index does not hold
    present, vectors = store.read(keys)
    if len(present) != len(keys):
        missing = sorted(set(keys.tolist()) - set(present.tolist()))
        raise KeyError(f"labels {missing[:5]} have no stored vector")
    return vectors


def candidates(k: int) -> int:
    """How many candidates the codes rank for `k` hits (80 for 10): the re-scoring reads each
    from the file, so past the first hits the margin stops growing with `k`."""
    return k + min(k, RERANK_HITS) * (RERANK - 1)


def rescored(
    store: VectorStore, query: Vectors, candidates: list[tuple[int, float]], k: int
) -> list[tuple[int, float]]:
    """The best `k` of `candidates` by their true inner product with `query`."""
    if not candidates:
        return []
    labels = np.fromiter((label for label, _ in candidates), np.int64, len(candidates))
    present, vectors = store.read(labels)
    if not len(present):
        return []
    scores = vectors @ query.reshape(-1)
    best = np.argsort(-scores, kind="stable")[:k]
    return [(int(present[row]), float(scores[row])) for row in best]
