"""FaissVectorIndex switches between exact and IVF search with its size, serving all along."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from adapters.faiss import ivf as faiss_ivf
from adapters.faiss.index import FaissVectorIndex
from adapters.memory.repository import InMemoryDocumentRepository
from contracts import VectorIndexContract, unit_rows
from domain.model import NewDocument
from domain.ports import by_dimension
from domain.search_request import SearchRequest
from domain.services import KnowledgeBaseService
from fakes import FakeEmbedder

THRESHOLD = 2000
DIM = 32


def clustered(count: int, seed: int = 0, dim: int = DIM, clusters: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = unit_rows(clusters, seed=1000, dim=dim)  # queries share the centres
    rows = centres[rng.integers(0, clusters, count)] + 0.1 * rng.standard_normal((count, dim))
    rows = rows.astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def labels_from(first: int, count: int) -> np.ndarray:
    return np.arange(first, first + count, dtype=np.int64)


def settled(index: FaissVectorIndex) -> FaissVectorIndex:
    assert index.wait_for_rebuild(timeout=20)
    return index


class SettledFaissVectorIndex(FaissVectorIndex):
    """Waits for the rebuild each write starts, so every contract step sees the settled mode."""

    def add(self, labels, vectors):
        super().add(labels, vectors)
        settled(self)

    def remove(self, labels):
        removed = super().remove(labels)
        settled(self)
        return removed


class TestFaissVectorIndexApproximate(VectorIndexContract):
    """Past a threshold of 2 vectors every contract step runs on an IVF index."""

    @pytest.fixture
    def make_index(self):
        return functools.partial(SettledFaissVectorIndex, ann_threshold=2)

    def test_the_index_is_approximate_past_the_threshold(self, index):
        index.add(labels_from(1, 3), unit_rows(3))
        assert index.approximate
        assert index.describe().kind == "ivf"


class TestFaissVectorIndexWhileRebuilding(VectorIndexContract):
    """The same contract while rebuilds run in the background between the steps."""

    @pytest.fixture
    def make_index(self):
        return functools.partial(FaissVectorIndex, ann_threshold=2)


@pytest.fixture
def paused_training(monkeypatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """(started, release): the next IVF training signals `started`, then waits for `release`."""
    started, release = threading.Event(), threading.Event()
    train = faiss_ivf.new_approximate

    def paused(sample, nlist):
        started.set()
        assert release.wait(timeout=20)
        return train(sample, nlist)

    monkeypatch.setattr(faiss_ivf, "new_approximate", paused)
    yield started, release
    release.set()


def test_it_turns_approximate_above_the_threshold_and_exact_below_half():
    index = FaissVectorIndex(DIM, ann_threshold=THRESHOLD)
    rows = clustered(3000)
    index.add(labels_from(1, THRESHOLD), rows[:THRESHOLD])
    assert not settled(index).approximate
    index.add(labels_from(THRESHOLD + 1, 1000), rows[THRESHOLD:])
    assert settled(index).approximate
    index.remove(range(1, 1501))  # 1500 left: above half the threshold, stays approximate
    assert settled(index).approximate
    index.remove(range(1501, 2002))  # 999 left
    assert not settled(index).approximate
    assert len(index) == 999
    assert index.describe().kind == "flat"


def test_get_and_describe_answer_the_same_in_both_modes():
    index = FaissVectorIndex(DIM, ann_threshold=THRESHOLD)
    rows = clustered(3000)
    index.add(labels_from(1, 3000), rows)
    exact = index.describe()
    assert exact.kind == "flat"
    assert np.array_equal(index.get([7, 2999, 1]), rows[[6, 2998, 0]])
    settled(index)
    approximate = index.describe()
    assert approximate.kind == "ivf"
    assert approximate.memory_bytes >= 3000 * DIM * 4
    assert np.array_equal(index.get([7, 2999, 1]), rows[[6, 2998, 0]])
    with pytest.raises(KeyError):
        index.get([1, 5000])


def test_writes_during_a_build_are_all_there_after_the_swap(paused_training):
    started, release = paused_training
    index = FaissVectorIndex(DIM, ann_threshold=THRESHOLD)
    rows = clustered(3300)
    index.add(labels_from(1, 3000), rows[:3000])
    assert started.wait(timeout=10)
    removed = list(range(1, 3001, 10))
    assert index.remove(removed) == len(removed)
    index.add(labels_from(5001, 300), rows[3000:])
    found = {label for label, _ in index.search(rows[0], 50)}
    assert not found & set(removed)
    release.set()
    assert settled(index).approximate
    assert len(index) == 3300 - len(removed)
    for label, row in zip(labels_from(5001, 300), rows[3000:]):
        assert index.search(row, 1, probes=4096)[0] == (label, pytest.approx(1.0, abs=1e-5))
    with pytest.raises(KeyError):
        index.get([11])
    for row in rows[:3000:10]:
        assert not {label for label, _ in index.search(row, 10)} & set(removed)


def test_searches_do_not_wait_while_the_builder_holds_the_writers_lock(monkeypatch):
    copying, release = threading.Event(), threading.Event()
    copy = faiss_ivf.copy

    def slow_copy(index, labels):
        copying.set()
        assert release.wait(timeout=20)
        return copy(index, labels)

    monkeypatch.setattr(faiss_ivf, "copy", slow_copy)
    index = FaissVectorIndex(DIM, ann_threshold=THRESHOLD)
    rows = clustered(3000)
    index.add(labels_from(1, 3000), rows)
    assert copying.wait(timeout=10)
    answers: list[list[tuple[int, float]]] = []
    searcher = threading.Thread(target=lambda: answers.append(index.search(rows[5], 3)))
    searcher.start()
    searcher.join(timeout=5)
    release.set()
    assert answers and answers[0][0][0] == 6
    assert settled(index).approximate


def recall(
    index: FaissVectorIndex, rows: np.ndarray, queries: np.ndarray, probes=None, exact=False
) -> float:
    best = np.argsort(-(queries @ rows.T), axis=1)[:, :10] + 1
    hits = 0
    for query, truth in zip(queries, best):
        found = {label for label, _ in index.search(query, 10, probes=probes, exact=exact)}
        hits += len(found & set(truth.tolist()))
    return hits / (10 * len(queries))


@pytest.fixture(scope="module")
def approximate_index() -> tuple[FaissVectorIndex, np.ndarray, np.ndarray]:
    rows = clustered(20_000, dim=64)
    index = FaissVectorIndex(64, ann_threshold=THRESHOLD)
    index.add(labels_from(1, len(rows)), rows)
    assert settled(index).approximate
    return index, rows, clustered(200, seed=9, dim=64)


def test_recall_at_10_against_exact_is_at_least_095_at_default_probes(approximate_index):
    index, rows, queries = approximate_index
    assert index.probes < index.lists
    assert recall(index, rows, queries) >= 0.95


def test_data_that_clusters_badly_gets_more_probes_not_worse_recall():
    rows = unit_rows(20_000, seed=4, dim=64)  # no clusters at all
    index = FaissVectorIndex(64, ann_threshold=THRESHOLD)
    index.add(labels_from(1, len(rows)), rows)
    assert settled(index).approximate
    assert index.probes > faiss_ivf.MIN_DEFAULT_PROBES
    assert recall(index, rows, unit_rows(100, seed=5, dim=64)) >= 0.95


def test_one_probe_recalls_less_than_all_of_them(approximate_index):
    index, rows, queries = approximate_index
    assert recall(index, rows, queries, probes=1) < recall(index, rows, queries, probes=4096)
    assert recall(index, rows, queries, probes=4096) == 1.0


def test_an_exact_search_on_the_approximate_index_finds_the_true_top_10(approximate_index):
    index, rows, queries = approximate_index
    assert recall(index, rows, queries, probes=1) < 1.0  # so the index is really approximate
    assert recall(index, rows, queries, exact=True) == 1.0
    allowed = set(range(1, 20_001, 2))
    for query in queries[:20]:
        scores = rows @ query
        truth = [int(i) + 1 for i in np.argsort(-scores) if int(i) + 1 in allowed][:10]
        found = index.search(query, 10, allowed=allowed, probes=None, exact=True)
        assert [label for label, _ in found] == truth


def test_filtered_searches_on_the_approximate_index_still_fill_top_k(approximate_index):
    index, rows, _ = approximate_index
    allowed = set(range(1, 20_001, 97))  # 207 labels scattered over every list
    found = index.search(rows[0], 10, allowed=allowed, probes=1)
    assert len(found) == 10 and {label for label, _ in found} <= allowed
    assert found[0] == (1, pytest.approx(1.0, abs=1e-5))
    assert [score for _, score in found] == sorted((score for _, score in found), reverse=True)


def test_a_knowledge_base_keeps_working_through_the_switch(paused_training):
    started, release = paused_training
    indexes: list[FaissVectorIndex] = []

    def make_index(dimension: int) -> FaissVectorIndex:
        indexes.append(FaissVectorIndex(dimension, ann_threshold=200))
        return indexes[-1]

    service = KnowledgeBaseService(
        FakeEmbedder(), InMemoryDocumentRepository(), by_dimension(make_index)
    )
    service.create_knowledge_base("big")
    words = [f"w{i}" for i in range(60)]
    texts = [" ".join(words[(i * 7 + j * 13) % 60] for j in range(6)) for i in range(300)]
    service.add_documents("big", [NewDocument(text=t, id=f"d{i}") for i, t in enumerate(texts)])
    assert started.wait(timeout=10)
    service.add_documents("big", [NewDocument(text="w1 w2 w3 w4 w5 late", id="late")])
    service.delete_document("big", "d3")
    release.set()
    assert settled(indexes[0]).approximate
    assert service.get_knowledge_base("big").index.kind == "ivf"
    hits = service.search("big", SearchRequest(document_id="late", top_k=5))
    assert len(hits) == 5 and "late" not in {hit.id for hit in hits}
    first = service.search("big", SearchRequest(query="w1 w2 w3 w4 w5 late", top_k=3))[0]
    assert first.id == "late" and first.score == pytest.approx(1.0, abs=1e-5)
    assert "d3" not in {hit.id for hit in service.search("big", SearchRequest(query=texts[3]))}
