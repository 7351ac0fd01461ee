"""FaissVectorIndex.expect: a bulk load past the ANN threshold goes straight into IVF lists."""

from __future__ import annotations

import numpy as np
import pytest
from test_faiss_ann import clustered, labels_from, recall

from adapters.faiss import ivf as faiss_ivf
from adapters.faiss import rebuild as faiss_rebuild
from adapters.faiss.index import FaissVectorIndex
from contracts import unit_rows

THRESHOLD = 2000
DIM = 64
COUNT = 20_000


def bulk_loaded(rows: np.ndarray, batch: int) -> tuple[FaissVectorIndex, list[bool]]:
    """An index filled after `expect(len(rows))`, and whether a rebuild ran after each batch."""
    index = FaissVectorIndex(DIM, ann_threshold=THRESHOLD)
    index.expect(len(rows))
    rebuilding = []
    for start in range(0, len(rows), batch):
        index.add(
            labels_from(1 + start, len(rows[start : start + batch])), rows[start : batch + start]
        )
        rebuilding.append(index.rebuilding)
    return index, rebuilding


@pytest.mark.parametrize("batch", [500, COUNT], ids=["restore-batches", "one-load"])
def test_an_expected_bulk_load_ends_approximate_without_a_rebuild(batch):
    rows = clustered(COUNT, dim=DIM)
    index, rebuilding = bulk_loaded(rows, batch)
    assert not any(rebuilding)
    assert index.approximate
    assert index.lists == faiss_ivf.lists_for(COUNT)
    assert len(index) == COUNT
    assert index.probes >= min(index.lists, faiss_ivf.MIN_DEFAULT_PROBES)
    assert recall(index, rows, clustered(200, seed=9, dim=DIM)) >= 0.95
    assert np.array_equal(index.get([1, COUNT]), rows[[0, COUNT - 1]])


def test_a_bulk_load_calibrates_its_probes_on_data_that_clusters_badly():
    rows = unit_rows(COUNT, seed=4, dim=DIM)
    index, _ = bulk_loaded(rows, 1000)
    assert index.approximate
    assert index.probes > faiss_ivf.MIN_DEFAULT_PROBES
    assert recall(index, rows, unit_rows(100, seed=5, dim=DIM)) >= 0.95


def test_searches_are_right_at_every_stage_of_a_bulk_load():
    rows = clustered(COUNT, dim=DIM)
    index = FaissVectorIndex(DIM, ann_threshold=THRESHOLD)
    index.expect(COUNT)
    sample = faiss_ivf.lists_for(COUNT) * faiss_ivf.TRAIN_POINTS_PER_LIST
    for stop in (1000, sample - 1, sample + 1000, COUNT):
        index.add(labels_from(1 + len(index), stop - len(index)), rows[len(index) : stop])
        assert index.search(rows[stop - 1], 1)[0][0] == stop
        assert index.approximate == (stop >= sample)


def test_the_hint_is_ignored_below_the_threshold_or_on_a_filled_index():
    small = FaissVectorIndex(DIM, ann_threshold=THRESHOLD)
    small.expect(THRESHOLD)
    small.add(labels_from(1, THRESHOLD), clustered(THRESHOLD, dim=DIM))
    assert not small.approximate and not small.rebuilding

    filled = FaissVectorIndex(DIM, ann_threshold=THRESHOLD)
    filled.add(labels_from(1, 10), clustered(10, dim=DIM))
    filled.expect(COUNT)
    filled.add(labels_from(11, COUNT - 10), clustered(COUNT - 10, seed=1, dim=DIM))
    assert filled.wait_for_rebuild(timeout=30)
    assert filled.approximate  # the ordinary way: exact index, then a background rebuild


def test_a_load_that_stops_short_leaves_a_working_index_and_a_remove_ends_it():
    rows = clustered(COUNT, dim=DIM)
    index = FaissVectorIndex(DIM, ann_threshold=THRESHOLD)
    index.expect(COUNT * 2)  # more than will come
    index.add(labels_from(1, COUNT), rows)
    assert index.approximate and index.probes == min(index.lists, faiss_ivf.MIN_DEFAULT_PROBES)
    assert recall(index, rows, clustered(100, seed=9, dim=DIM)) >= 0.9
    assert index.remove([1]) == 1
    assert index.probes >= min(index.lists, faiss_ivf.MIN_DEFAULT_PROBES)  # calibrated
    # Ordinary writes again: growing 4x past the size it was trained for retrains it.
    more = clustered(COUNT * 8, seed=2, dim=DIM)
    index.add(labels_from(COUNT + 1, len(more)), more)
    assert index.wait_for_rebuild(timeout=60)
    assert index.lists == faiss_ivf.lists_for(len(index))


def test_a_knowledge_base_loaded_at_start_is_approximate_at_once(tmp_path, monkeypatch):
    from adapters.sqlite.repository import SqliteDocumentRepository
    from domain.model import NewDocument
    from domain.ports import by_dimension
    from domain.search_request import SearchRequest
    from domain.services import KnowledgeBaseService
    from fakes import FakeEmbedder

    def service_and_indexes():
        indexes: list[FaissVectorIndex] = []

        def make_index(dimension: int) -> FaissVectorIndex:
            indexes.append(FaissVectorIndex(dimension, ann_threshold=200))
            return indexes[-1]

        repository = SqliteDocumentRepository(str(tmp_path / "kb.sqlite3"))
        service = KnowledgeBaseService(FakeEmbedder(), repository, by_dimension(make_index))
        return service, indexes, repository

    service, _, repository = service_and_indexes()
    service.create_knowledge_base("big")
    words = [f"w{i}" for i in range(60)]
    texts = [" ".join(words[(i * 7 + j * 13) % 60] for j in range(6)) for i in range(500)]
    service.add_documents("big", [NewDocument(text=t, id=f"d{i}") for i, t in enumerate(texts)])
    repository.close()
    rebuilds = []
    original = faiss_rebuild.rebuilt
    monkeypatch.setattr(faiss_rebuild, "rebuilt", lambda *a: rebuilds.append(1) or original(*a))
    restarted, indexes, _ = service_and_indexes()
    first = restarted.search("big", SearchRequest(query=texts[7], top_k=1))[0]
    assert first.id == "d7" and first.score == pytest.approx(1.0, abs=1e-5)
    assert indexes[0].approximate and not indexes[0].rebuilding and not rebuilds
