"""FAISS inverted-file (IVFFlat) indexes: the exact one-list layout and the trained approximate one.

No port of its own: the layouts behind `FaissVectorIndex` and its `rebuild`.

Both layouts are `IndexIVFFlat` over inner product with a hashtable direct map, so both store
the raw float32 vectors (scores are true inner products), hand them back by our int64 labels,
and remove a label in O(1). With one list and one probe the scan covers every vector: exact.
Past a size threshold the trained lists may hold 8-bit codes instead (`compressed`); the
functions here serve both.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import TypeVar

import faiss
import numpy as np

from domain.ports import Labels, Vectors

IndexT = TypeVar("IndexT", bound=faiss.IndexIVF)

EXACT_LISTS = 1
MAX_LISTS = 65536
LISTS_PER_SQRT = 2  # nlist = 2 * sqrt(n): 2,000 lists at 1M train and fill in 40-70 s
MIN_DEFAULT_PROBES = 96  # recall@10 ~0.98 on held-out MiniLM queries at 1M (bench/scale.py)
TRAIN_POINTS_PER_LIST = 40  # k-means sample per centroid (FAISS wants at least 39)
TRAIN_ITERATIONS = 10
HASHTABLE_BYTES = 40  # one std::unordered_map<int64, int64> node and bucket per label
COPY_BATCH = 65536
# Labels -> (list, offset) in a hash map: O(1) remove_ids and reconstruct by our labels.
HASHTABLE: int = faiss.DirectMap.Hashtable  # type: ignore[attr-defined]  # not in the stubs


def lists_for(count: int) -> int:
    """How many inverted lists an approximate index over `count` vectors gets (at least 2)."""
    by_size = round(LISTS_PER_SQRT * math.sqrt(max(count, 1)))
    return max(2, min(MAX_LISTS, by_size, count // TRAIN_POINTS_PER_LIST))


def new_exact(dimension: int) -> faiss.IndexIVF:
    """One list under a zero centroid: every vector lands in it, one probe scans them all."""
    quantizer = faiss.IndexFlatIP(dimension)
    quantizer.add(np.zeros((1, dimension), dtype=np.float32))
    index = faiss.IndexIVFFlat(quantizer, dimension, EXACT_LISTS, faiss.METRIC_INNER_PRODUCT)
    index.is_trained = True
    index.set_direct_map_type(HASHTABLE)
    return index


def new_approximate(sample: Vectors, nlist: int) -> faiss.IndexIVF:
    """An index whose `nlist` centroids are k-means (spherical, for inner product) of `sample`."""
    dimension = sample.shape[1]
    index = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(dimension), dimension, nlist, faiss.METRIC_INNER_PRODUCT
    )
    return trained(index, sample)


def trained(index: IndexT, sample: Vectors) -> IndexT:
    """`index` (flat or compressed lists) with k-means centroids of `sample` and the hashtable."""
    index.cp.spherical = True
    index.cp.niter = TRAIN_ITERATIONS
    index.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
    index.cp.min_points_per_centroid = 1  # small test indexes: no warning on stderr
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    index.set_direct_map_type(HASHTABLE)
    return index


def is_exact(index: faiss.IndexIVF) -> bool:
    return int(index.nlist) == EXACT_LISTS


def add(
    index: faiss.IndexIVF, labels: Labels, vectors: Vectors, lists: Labels | None = None
) -> None:
    """Store `vectors` under `labels`, in `lists` if already assigned (else by the quantizer)."""
    if not len(labels):
        return
    # add_core reads raw pointers: the arrays must be contiguous and of the exact dtypes.
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if is_exact(index):
        # Skip the quantizer: scoring n vectors against the one zero centroid costs a BLAS
        # call that takes longer than storing them.
        lists = np.zeros(len(labels), dtype=np.int64)
    if lists is None:
        index.add_with_ids(vectors, labels)
        return
    lists = np.ascontiguousarray(lists, dtype=np.int64)
    index.add_core(
        len(labels), faiss.swig_ptr(vectors), faiss.swig_ptr(labels), faiss.swig_ptr(lists)
    )


def assign(index: faiss.IndexIVF, vectors: Vectors) -> Labels:
    """The list each vector belongs in: its nearest centroid."""
    assert index.quantizer is not None
    _, lists = index.quantizer.search(vectors, 1)
    return lists[:, 0].copy()


def remove(index: faiss.IndexIVF, labels: Labels) -> int:
    if not len(labels):
        return 0
    return int(index.remove_ids(faiss.IDSelectorArray(labels)))


def contains(index: faiss.IndexIVF, label: int) -> bool:
    try:
        index.reconstruct(int(label))
    except RuntimeError:
        return False
    return True


def get(index: faiss.IndexIVF, labels: Sequence[int] | Labels) -> Vectors:
    """The stored vectors of `labels`, in order; KeyError naming the unknown ones."""
    keys = np.ascontiguousarray(labels, dtype=np.int64)
    if not len(keys):
        return np.zeros((0, index.d), dtype=np.float32)
    try:
        return index.reconstruct_batch(keys)
    except RuntimeError:
        missing = [int(label) for label in keys if not contains(index, label)]
        raise KeyError(f"unknown labels {missing[:5]}") from None


def copy(index: faiss.IndexIVF, labels: Labels) -> tuple[Labels, Vectors]:
    """(labels still present, their vectors): `get` that skips labels removed since."""
    try:
        return labels, get(index, labels)
    except KeyError:
        present = np.array([label for label in labels if contains(index, label)], dtype=np.int64)
        return present, get(index, present)


def all_labels(index: faiss.IndexIVF) -> Labels:
    lists = index.invlists
    assert lists is not None
    parts = []
    for number in range(index.nlist):
        size = lists.list_size(number)
        if size:
            parts.append(faiss.rev_swig_ptr(lists.get_ids(number), size).copy())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def search(
    index: faiss.IndexIVF,
    query: Vectors,
    k: int,
    allowed: Collection[int] | None,
    probes: int | None,
    exact: bool = False,
) -> list[tuple[int, float]]:
    """The top k by inner product; `exact` probes every list, so every vector is compared."""
    nlist = int(index.nlist)
    if exact:
        nprobe = nlist
    elif probes is None:
        nprobe = int(index.nprobe)
    else:
        nprobe = max(1, min(nlist, probes))
    if allowed is None:
        return _search(index, query, k, nprobe, None)
    chosen = np.fromiter(allowed, dtype=np.int64, count=len(allowed))
    selector = faiss.IDSelectorBatch(chosen)
    found = _search(index, query, k, nprobe, selector)
    if len(found) < min(k, len(chosen)) and nprobe < nlist:
        # A narrow filter leaves few candidates in the probed lists: probe as many more lists
        # as the filter is selective, then all of them, so filtered searches still fill top_k.
        wider = min(nlist, nprobe * math.ceil(index.ntotal / max(1, len(chosen))))
        found = _search(index, query, k, wider, selector)
        if len(found) < min(k, len(chosen)) and wider < nlist:
            found = _search(index, query, k, nlist, selector)
    return found


def _search(
    index: faiss.IndexIVF,
    query: Vectors,
    k: int,
    nprobe: int,
    selector: faiss.IDSelector | None,
) -> list[tuple[int, float]]:
    params = faiss.SearchParametersIVF(nprobe=nprobe)  # type: ignore[call-arg]
    if selector is not None:
        params.sel = selector
    scores, found = index.search(query, k, params=params)
    return [(int(label), float(score)) for label, score in zip(found[0], scores[0]) if label != -1]


def memory_bytes(index: faiss.IndexIVF) -> int:
    """Vectors (float32 or codes), their ids in the lists, the label hashtable, the centroids."""
    per_vector = int(index.code_size) + 8 + HASHTABLE_BYTES
    centroids = 0 if is_exact(index) else int(index.nlist) * index.d * 4
    return int(index.ntotal) * per_vector + centroids
