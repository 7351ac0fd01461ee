"""Building a new FAISS index from a live one, a batch at a time, beside the searches it serves.

No port of its own: `FaissVectorIndex`'s background rebuilds.

Every read of the live index happens under `lock` (the writers' mutex), one batch at a time, so
writers wait at most one batch; training, assignment and filling the new index happen outside
it. Labels removed from the live index since the snapshot are skipped; the caller replays what
changed meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Sequence

import faiss
import numpy as np

from adapters.faiss import calibration, compressed, ivf
from domain.ports import Labels, Vectors

TRAIN_SEED = 1234
NICENESS = 10  # of the rebuild thread: the scheduler serves everything else first

# The float32 vectors of the labels still in the live index (from it, or from the vector store).
Copy = Callable[[Labels], tuple[Labels, Vectors]]
Change = tuple[Labels, Vectors | None]  # (labels, vectors) added, or (labels, None) removed


def background() -> None:
    """Half the cores at most (this thread's OpenMP setting only) and a low CPU priority, so
    start-up, searches and writes go first while a rebuild runs."""
    faiss.omp_set_num_threads(max(1, faiss.omp_get_max_threads() // 2))
    if sys.platform == "linux":  # there a thread id names one thread, not the process
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)


def replay(target: faiss.IndexIVF, changes: Sequence[Change]) -> None:
    for labels, vectors in changes:
        if vectors is not None:
            ivf.add(target, labels, vectors)
        else:
            ivf.remove(target, labels)


def rebuilt(
    copy: Copy, dimension: int, labels: Labels, nlist: int, squeeze: bool, lock: threading.Lock
) -> faiss.IndexIVF:
    """A new index of `nlist` lists (1: exact) holding `labels`' vectors still in the source,
    as 8-bit codes if `squeeze`."""
    nlist = min(nlist, len(labels))
    if nlist < 2:
        return _filled_exact(copy, ivf.new_exact(dimension), labels, lock)
    rng = np.random.default_rng(TRAIN_SEED)
    size = min(len(labels), nlist * ivf.TRAIN_POINTS_PER_LIST)
    with lock:
        picked, sample = copy(np.sort(rng.choice(labels, size, False)))
    make = compressed.new_compressed if squeeze else ivf.new_approximate
    target = make(sample, nlist)
    chosen = rng.choice(len(picked), min(len(picked), calibration.QUERIES), False)
    truth = calibration.ExactNeighbours(picked[chosen], sample[chosen])
    del sample
    kept, lists = _assigned(copy, target, labels, truth, lock)
    _fill(copy, target, kept, lists, lock)
    # The measured floor, raised where this data needs more probes to reach the target.
    floor = min(nlist, ivf.MIN_DEFAULT_PROBES)
    target.nprobe = max(floor, calibration.fewest_probes(target, truth))
    return target


def _batches(count: int) -> range:
    return range(0, count, ivf.COPY_BATCH)


def _filled_exact(
    copy: Copy, target: faiss.IndexIVF, labels: Labels, lock: threading.Lock
) -> faiss.IndexIVF:
    for start in _batches(len(labels)):
        with lock:
            batch, vectors = copy(labels[start : start + ivf.COPY_BATCH])
        ivf.add(target, batch, vectors)
    return target


def _assigned(
    copy: Copy,
    target: faiss.IndexIVF,
    labels: Labels,
    truth: calibration.ExactNeighbours,
    lock: threading.Lock,
) -> tuple[Labels, Labels]:
    """(labels still present, the list of each): first pass, also feeding the calibration."""
    kept, lists = [], []
    for start in _batches(len(labels)):
        with lock:
            batch, vectors = copy(labels[start : start + ivf.COPY_BATCH])
        kept.append(batch)
        lists.append(ivf.assign(target, vectors))
        truth.update(batch, vectors)
    return np.concatenate(kept), np.concatenate(lists)


def _fill(
    copy: Copy,
    target: faiss.IndexIVF,
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
            batch, vectors = copy(kept[start:end])
        chosen = lists[start:end]
        if len(batch) < end - start:
            chosen = chosen[np.isin(kept[start:end], batch)]
        ivf.add(target, batch, vectors, chosen)
        start = end


REPLAY_ROUNDS = 3  # changes made during a build are replayed in rounds outside the mutex ...
REPLAY_UNDER_LOCK = 16  # ... until this few are left, which the caller replays under it


def catch_up(
    target: faiss.IndexIVF, recorded: Callable[[], list[Change]], lock: threading.Lock
) -> int:
    """Replay what `recorded()` holds (it grows while writers go on) onto `target` outside
    `lock`, in rounds, until few are left; return how many were replayed."""
    done = 0
    for _ in range(REPLAY_ROUNDS):
        with lock:
            pending = recorded()[done:]
        if len(pending) <= REPLAY_UNDER_LOCK:
            break
        replay(target, pending)
        done += len(pending)
    return done


def describe(index: faiss.IndexIVF) -> str:
    """For the log: "exact over n vectors" or "IVF (l lists, p probes) over n vectors"."""
    kind = "exact" if ivf.is_exact(index) else f"IVF ({index.nlist} lists, {index.nprobe} probes)"
    return f"{kind} over {index.ntotal} vectors"
