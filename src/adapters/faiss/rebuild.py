"""Building a new FAISS index from a live one, a batch at a time, beside the searches it serves.

No port of its own: `FaissVectorIndex`'s background rebuilds.

Every read of the live index happens under `lock` (the writers' mutex), one batch at a time, so
writers wait at most one batch; training, assignment and filling the new index happen outside
it. Labels removed from the live index since the snapshot are skipped; the caller replays what
changed meanwhile.
"""

from __future__ import annotations

import threading

import faiss
import numpy as np

from adapters.faiss import calibration, ivf
from domain.ports import Labels

TRAIN_SEED = 1234


def rebuilt(
    source: faiss.IndexIVFFlat, labels: Labels, nlist: int, lock: threading.Lock
) -> faiss.IndexIVFFlat:
    """A new index of `nlist` lists (1: exact) holding `labels`' vectors still in `source`."""
    nlist = min(nlist, len(labels))
    if nlist < 2:
        return _filled_exact(source, ivf.new_exact(source.d), labels, lock)
    rng = np.random.default_rng(TRAIN_SEED)
    size = min(len(labels), nlist * ivf.TRAIN_POINTS_PER_LIST)
    with lock:
        picked, sample = ivf.copy(source, np.sort(rng.choice(labels, size, False)))
    target = ivf.new_approximate(sample, nlist)
    chosen = rng.choice(len(picked), min(len(picked), calibration.QUERIES), False)
    truth = calibration.ExactNeighbours(picked[chosen], sample[chosen])
    del sample
    kept, lists = _assigned(source, target, labels, truth, lock)
    _fill(source, target, kept, lists, lock)
    # The measured floor, raised where this data needs more probes to reach the target.
    floor = min(nlist, ivf.MIN_DEFAULT_PROBES)
    target.nprobe = max(floor, calibration.fewest_probes(target, truth))
    return target


def _batches(count: int) -> range:
    return range(0, count, ivf.COPY_BATCH)


def _filled_exact(
    source: faiss.IndexIVFFlat, target: faiss.IndexIVFFlat, labels: Labels, lock: threading.Lock
) -> faiss.IndexIVFFlat:
    for start in _batches(len(labels)):
        with lock:
            batch, vectors = ivf.copy(source, labels[start : start + ivf.COPY_BATCH])
        ivf.add(target, batch, vectors)
    return target


def _assigned(
    source: faiss.IndexIVFFlat,
    target: faiss.IndexIVFFlat,
    labels: Labels,
    truth: calibration.ExactNeighbours,
    lock: threading.Lock,
) -> tuple[Labels, Labels]:
    """(labels still present, the list of each): first pass, also feeding the calibration."""
    kept, lists = [], []
    for start in _batches(len(labels)):
        with lock:
            batch, vectors = ivf.copy(source, labels[start : start + ivf.COPY_BATCH])
        kept.append(batch)
        lists.append(ivf.assign(target, vectors))
        truth.update(batch, vectors)
    return np.concatenate(kept), np.concatenate(lists)


def _fill(
    source: faiss.IndexIVFFlat,
    target: faiss.IndexIVFFlat,
    kept: Labels,
    lists: Labels,
    lock: threading.Lock,
) -> None:
    """Second pass, whole lists at a time: each list is allocated once, at its final size.

    Growing 2,000 lists batch by batch left about a third of their size in heap fragments
    and spare capacity.
    """
    order = np.argsort(lists, kind="stable")
    kept, lists = kept[order], lists[order]
    start = 0
    while start < len(kept):
        end = min(len(kept), start + ivf.COPY_BATCH)
        end = int(np.searchsorted(lists, lists[end - 1], side="right"))  # whole lists only
        with lock:
            batch, vectors = ivf.copy(source, kept[start:end])
        chosen = lists[start:end]
        if len(batch) < end - start:
            chosen = chosen[np.isin(kept[start:end], batch)]
        ivf.add(target, batch, vectors, chosen)
        start = end
