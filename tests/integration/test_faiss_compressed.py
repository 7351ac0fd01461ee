"""Compressed (SQ8) FAISS indexes: 8-bit codes in RAM, candidates re-scored from float32 vectors."""

from __future__ import annotations

import numpy as np
import pytest
from test_faiss_ann import SettledFaissVectorIndex, clustered, labels_from, recall, settled

from adapters.faiss import ivf as faiss_ivf
from adapters.faiss.index import FaissVectorIndex
from contracts import VectorIndexContract, unit_rows
from domain.ports import Labels, Vectors

DIM = 64
COUNT = 20_000


class DictStore:
    """A `VectorStore` in a dict: what the SQLite file is to the memory backend."""

    def __init__(self) -> None:
        self.rows: dict[int, np.ndarray] = {}
        self.reads = 0

    def put(self, labels: Labels, vectors: Vectors) -> None:
        self.rows.update(zip(np.asarray(labels).tolist(), np.asarray(vectors, np.float32)))

    def read(self, labels: Labels) -> tuple[Labels, Vectors]:
        self.reads += 1
        present = np.array([k for k in np.asarray(labels).tolist() if k in self.rows], np.int64)
        if not len(present):
            return present, np.zeros((0, 0), dtype=np.float32)
        return present, np.stack([self.rows[k] for k in present.tolist()])


class StoredIndex(SettledFaissVectorIndex):
    """Puts vectors in its store before adding them (the repository commits them first), and
    waits for the rebuild each write starts, so every step sees the settled layout."""

    def __init__(self, dimension: int, ann_threshold: int = 2, compress_threshold: int = 2):
        self.store = DictStore()
        super().__init__(dimension, ann_threshold, compress_threshold, store=self.store)

    def add(self, labels, vectors):
        self.store.put(labels, vectors)
        super().add(labels, vectors)


class TestCompressedFaissVectorIndex(VectorIndexContract):
    """Past a compression threshold of 2 vectors every contract step runs on SQ8 codes."""

    @pytest.fixture
    def make_index(self):
        return StoredIndex

    def test_the_index_is_compressed_past_the_threshold(self, index):
        index.add(labels_from(1, 3), unit_rows(3))
        assert index.compressed and index.approximate
        assert index.describe().kind == "ivf-sq8"


@pytest.fixture(scope="module")
def compressed_index() -> tuple[StoredIndex, np.ndarray]:
    rows = clustered(COUNT, dim=DIM)
    index = StoredIndex(DIM, ann_threshold=2000, compress_threshold=10_000)
    index.add(labels_from(1, COUNT), rows)
    assert index.compressed
    return index, rows


def test_scores_are_the_true_inner_products_and_recall_holds(compressed_index):
    index, rows = compressed_index
    queries = clustered(200, seed=9, dim=DIM)
    for query in queries[:20]:
        found = index.search(query, 10)
        labels = np.array([label for label, _ in found]) - 1
        assert np.allclose([s for _, s in found], rows[labels] @ query, rtol=0, atol=1e-6)
    assert recall(index, rows, queries) >= 0.95
    assert recall(index, rows, queries, exact=True) == 1.0


def test_get_returns_the_float32_vectors_exactly_and_only_for_held_labels(compressed_index):
    index, rows = compressed_index
    assert np.array_equal(index.get([5, 1, COUNT]), rows[[4, 0, COUNT - 1]])
    index.store.put(labels_from(COUNT + 1, 1), unit_rows(1, dim=DIM))  # another index's vector
    with pytest.raises(KeyError):
        index.get([COUNT + 1])


def test_the_codes_take_under_a_third_of_the_float32_lists(compressed_index):
    index, rows = compressed_index
    flat = FaissVectorIndex(DIM, ann_threshold=2000)
    flat.add(labels_from(1, COUNT), rows)
    settled(flat)
    assert index.describe().memory_bytes < flat.describe().memory_bytes / 2
    assert index.lists == flat.lists


def test_removes_and_updates_stay_exact_on_codes():
    index = StoredIndex(DIM, ann_threshold=200, compress_threshold=400)
    rows = clustered(1000, dim=DIM)
    index.add(labels_from(1, 1000), rows)
    assert index.compressed
    index.remove([1, 2])
    index.add(labels_from(1001, 1), rows[:1])  # document 1 updated: a new label, same vector
    found = index.search(rows[0], 3)
    assert found[0] == (1001, pytest.approx(1.0, abs=1e-6))
    assert 1 not in {label for label, _ in found} and len(index) == 999
    with pytest.raises(KeyError):
        index.get([2])


def test_it_compresses_above_the_threshold_and_decompresses_below_half():
    index = StoredIndex(DIM, ann_threshold=200, compress_threshold=1000)
    rows = clustered(1500, dim=DIM)
    index.add(labels_from(1, 1000), rows[:1000])
    assert index.approximate and not index.compressed
    before = index.search(rows[7], 10)
    index.add(labels_from(1001, 500), rows[1000:])
    assert index.compressed
    after = index.search(rows[7], 10, allowed=set(range(1, 1001)))
    assert [label for label, _ in after] == [label for label, _ in before]
    assert np.allclose([s for _, s in after], [s for _, s in before], atol=1e-6)
    index.remove(range(1, 1001))  # 500 left: at half the threshold, still compressed
    assert index.compressed
    index.remove(range(1001, 1011))
    assert index.approximate and not index.compressed
    assert np.array_equal(index.get([1011, 1500]), rows[[1010, 1499]])  # decoded from the store


def test_an_expected_bulk_load_goes_straight_into_codes():
    rows = clustered(COUNT, dim=DIM)
    index = StoredIndex(DIM, ann_threshold=2000, compress_threshold=10_000)
    index.expect(COUNT)
    for start in range(0, COUNT, 5000):
        index.add(labels_from(1 + start, 5000), rows[start : start + 5000])
        assert not index.rebuilding
    assert index.compressed and index.lists == faiss_ivf.lists_for(COUNT)
    assert recall(index, rows, clustered(100, seed=9, dim=DIM)) >= 0.95


def test_without_a_store_the_index_never_compresses():
    index = FaissVectorIndex(DIM, ann_threshold=200, compress_threshold=400)
    index.add(labels_from(1, 1000), clustered(1000, dim=DIM))
    assert settled(index).approximate and not index.compressed
