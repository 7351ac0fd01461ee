"""Filling an empty index with a known number of vectors straight into trained IVF lists.

No port of its own: `FaissVectorIndex.expect`, for a restore (the archive's manifest says how
many chunks follow) and for loading a knowledge base at start.

Without it, a bulk load past the ANN threshold went through the exact index and a background
rebuild: for a few seconds the process held the exact index, the IVF index being filled and a
copy of every vector added meanwhile (a restore of 100,000 chunks peaked at 1.87x the worker's
size). Here the first `nlist x TRAIN_POINTS_PER_LIST` vectors wait in the exact index, the lists
are trained on them, and they and every later batch go into the IVF index directly: one copy
of the vectors plus the training sample, and no rebuild afterwards. The probes are calibrated
once the expected count is in, as a rebuild does; until then the measured floor applies.
"""

from __future__ import annotations

import faiss
import numpy as np

from adapters.faiss import calibration, compressed, ivf
from adapters.faiss.rebuild import TRAIN_SEED
from domain.ports import Labels, Vectors


class BulkLoad:
    """The state of one bulk load of `expected` vectors (for `FaissVectorIndex` only)."""

    def __init__(self, expected: int, squeeze: bool = False) -> None:
        self.expected = expected
        self.squeeze = squeeze  # 8-bit codes (adapters.faiss.compressed) instead of float32
        self.nlist = ivf.lists_for(expected)
        self.sample_size = min(expected, self.nlist * ivf.TRAIN_POINTS_PER_LIST)
        self._truth: calibration.ExactNeighbours | None = None

    def add(self, index: faiss.IndexIVF, labels: Labels, vectors: Vectors) -> faiss.IndexIVF:
        """Add a batch; return the index that holds it (the trained one once the sample is in)."""
        if ivf.is_exact(index):
            room = max(0, self.sample_size - int(index.ntotal))
            ivf.add(index, labels[:room], vectors[:room])
            labels, vectors = labels[room:], vectors[room:]
            if index.ntotal < self.sample_size:
                return index
            index = self._trained(index)
        if len(labels):
            ivf.add(index, labels, vectors)
            assert self._truth is not None
            self._truth.update(labels, vectors)
        return index

    def complete(self, index: faiss.IndexIVF, anyway: bool = False) -> bool:
        """Whether every expected vector is in (or the load ends `anyway`, e.g. at a remove);
        if so, calibrate the probes as a rebuild does."""
        if index.ntotal < self.expected and not anyway:
            return False
        if self._truth is not None and not ivf.is_exact(index):
            floor = min(self.nlist, ivf.MIN_DEFAULT_PROBES)
            index.nprobe = max(floor, calibration.fewest_probes(index, self._truth))
        return True

    def _trained(self, exact: faiss.IndexIVF) -> faiss.IndexIVF:
        """An IVF index trained on, and holding, the vectors of `exact` (the sample)."""
        labels = ivf.all_labels(exact)
        sample = ivf.get(exact, labels)
        make = compressed.new_compressed if self.squeeze else ivf.new_approximate
        target = make(sample, self.nlist)
        target.nprobe = min(self.nlist, ivf.MIN_DEFAULT_PROBES)
        rng = np.random.default_rng(TRAIN_SEED)
        chosen = rng.choice(len(labels), min(len(labels), calibration.QUERIES), False)
        self._truth = calibration.ExactNeighbours(labels[chosen], sample[chosen])
        self._truth.update(labels, sample)
        ivf.add(target, labels, sample)
        return target
