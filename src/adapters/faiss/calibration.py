"""Recall calibration: the fewest IVF probes that reach a recall@10 target on the index's own data.

No port of its own: `rebuild` uses it to choose a rebuilt IVF index's probes.

While a rebuild copies vectors batch by batch, `ExactNeighbours` keeps the exact top 10 of a
few stored vectors (each leaving itself out); once the index is full, `fewest_probes` tries a
ladder of nprobe values and keeps the first whose recall@10 against them meets the target.
The index uses the larger of that and a floor measured on real text embeddings: a fixed nprobe
is right for one data set and far off for one that clusters less; measuring costs a second.
"""

from __future__ import annotations

import faiss
import numpy as np

from domain.ports import Labels, Vectors

K = 10
QUERIES = 100
TARGET_RECALL = 0.98  # a margin over the 0.97 promised for queries that are not stored vectors
PROBE_LADDER = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


class ExactNeighbours:
    """For `rebuild` (no port): the exact top K of `queries` (stored under `own`) over all batches.

    Every batch shown to `update` counts."""

    def __init__(self, own: Labels, queries: Vectors) -> None:
        self.own = own
        self.queries = np.ascontiguousarray(queries, dtype=np.float32)
        self.scores = np.full((len(own), K + 1), -np.inf, dtype=np.float32)
        self.labels = np.full((len(own), K + 1), -1, dtype=np.int64)

    def update(self, labels: Labels, vectors: Vectors) -> None:
        if not len(labels) or not len(self.own):
            return
        scores, rows = faiss.knn(
            self.queries, vectors, min(K + 1, len(labels)), metric=faiss.METRIC_INNER_PRODUCT
        )
        scores = np.where(rows < 0, -np.inf, scores)
        found = np.where(rows < 0, -1, labels[np.maximum(rows, 0)])
        scores = np.hstack([self.scores, scores])
        found = np.hstack([self.labels, found])
        best = np.argsort(-scores, axis=1, kind="stable")[:, : K + 1]
        self.scores = np.take_along_axis(scores, best, axis=1)
        self.labels = np.take_along_axis(found, best, axis=1)

    def recall(self, index: faiss.IndexIVF, nprobe: int) -> float:
        params = faiss.SearchParametersIVF(nprobe=nprobe)  # type: ignore[call-arg]
        _, found = index.search(self.queries, K + 1, params=params)
        hits = wanted = 0
        for own, truth_row, found_row in zip(self.own, self.labels, found):
            truth = _others(truth_row, int(own))
            hits += len(truth & _others(found_row, int(own)))
            wanted += len(truth)
        return hits / wanted if wanted else 1.0


def _others(row: Labels, own: int) -> set[int]:
    return set([label for label in row.tolist() if label not in (own, -1)][:K])


def fewest_probes(index: faiss.IndexIVF, truth: ExactNeighbours) -> int:
    """The smallest nprobe on the ladder reaching TARGET_RECALL, else every list."""
    nlist = int(index.nlist)
    for nprobe in PROBE_LADDER:
        if nprobe >= nlist:
            break
        if truth.recall(index, nprobe) >= TARGET_RECALL:
            return nprobe
    return nlist
