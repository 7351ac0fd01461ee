"""The catalog on its own: a write keeps the slot it took, and never writes into a discarded one."""

from contextlib import nullcontext

import numpy as np
import pytest

from contracts import make_doc, make_kb, unit_rows
from domain.catalog import Catalog
from domain.errors import ConflictError, KnowledgeBaseNotFoundError, ModelMismatchError
from domain.keywords import NoKeywordIndex
from domain.model import KnowledgeBase
from domain.ports import by_dimension, utc_now
from fakes import FakeDocumentRepository, FakeEmbedder, FakeKeywordIndex, FakeVectorIndex


@pytest.fixture
def embedder():
    return FakeEmbedder(dimension=8)


@pytest.fixture
def catalog(embedder):
    return Catalog(
        FakeDocumentRepository(),
        by_dimension(FakeVectorIndex),
        lambda kb: NoKeywordIndex(),
        nullcontext,
        embedder,
    )


MINE = FakeEmbedder(dimension=8).fingerprint


def knowledge_base(name="kb", model="fake-model", fingerprint=MINE):
    return KnowledgeBase(name, model, 8, utc_now(), fingerprint=fingerprint)


def test_a_write_holding_the_slot_of_a_re_created_knowledge_base_writes_nothing(catalog):
    catalog.create(knowledge_base())
    _, taken = catalog.usable("kb")  # a request takes the slot, then embeds
    catalog.remove("kb")
    catalog.create(knowledge_base())
    with pytest.raises(ConflictError, match="re-created"), catalog.writing("kb", taken):
        pytest.fail("wrote into a discarded index")
    with catalog.writing("kb", catalog.slot("kb")):
        pass


def test_a_write_holding_the_slot_of_a_deleted_knowledge_base_finds_it_gone(catalog):
    catalog.create(knowledge_base())
    taken = catalog.slot("kb")
    catalog.remove("kb")
    with pytest.raises(KnowledgeBaseNotFoundError), catalog.writing("kb", taken):
        pytest.fail("wrote into a deleted knowledge base")


def test_only_a_knowledge_base_of_the_loaded_model_is_usable(catalog):
    catalog.create(knowledge_base("mine"))
    catalog.create(knowledge_base("theirs", model="other-model", fingerprint="f" * 64))
    kb, _ = catalog.usable("mine")
    assert kb.name == "mine"
    with pytest.raises(ModelMismatchError) as refused:
        catalog.usable("theirs")
    assert refused.value.model == "other-model"
    assert "fake-model" in refused.value.message


class SharedStore(FakeDocumentRepository):
    """A store whose indexes are its own (as PostgreSQL's): a process has nothing to load."""

    def chunk_labels(self, kb):
        return None

    def load_vectors(self, kb, labels=None):
        pytest.fail("nothing is loaded from a store whose indexes are its own")


def with_one_document(repository):
    repository.add_knowledge_base(make_kb("kb", dimension=8))
    repository.add_documents("kb", [make_doc("d", [1, 2], "the cat sat")], unit_rows(2, dim=8))
    return Catalog(
        repository,
        by_dimension(FakeVectorIndex),
        lambda kb: FakeKeywordIndex(),
        nullcontext,
        FakeEmbedder(dimension=8),
    )


def test_a_knowledge_base_first_used_here_is_rebuilt_from_what_its_store_kept():
    slot = with_one_document(FakeDocumentRepository()).slot("kb")
    assert len(slot.index) == 2
    assert [doc_id for doc_id, _ in slot.keywords.search("cat", 5)] == ["d"]


def test_a_store_that_keeps_its_own_indexes_gives_the_catalog_nothing_to_load():
    slot = with_one_document(SharedStore()).slot("kb")
    assert (len(slot.index), len(slot.keywords)) == (0, 0)


def catalog_over(repository, kept):
    """A catalog whose every vector index starts from `kept`, its "copy kept between runs"."""
    return Catalog(
        repository,
        lambda kb: FakeVectorIndex(kb.dimension, kept),
        lambda kb: FakeKeywordIndex(),
        nullcontext,
        FakeEmbedder(dimension=8),
    )


def test_a_kept_index_copy_is_brought_in_line_with_the_store_at_start():
    repository = FakeDocumentRepository()
    repository.add_knowledge_base(make_kb("kb", dimension=8))
    rows = unit_rows(5, dim=8)
    repository.add_documents("kb", [make_doc("a", [1, 2]), make_doc("b", [3])], rows[:3])
    repository.add_documents("kb", [make_doc("c", [7, 8])], rows[3:])
    stale = unit_rows(1, dim=8, seed=99)[0]
    # The copy holds 1, 2 and 3 as stored, 5 (removed since) and not 7 or 8 (added since).
    kept = {1: rows[0], 2: rows[1], 3: rows[2], 5: stale}
    index = catalog_over(repository, kept).slot("kb").index
    assert sorted(index._vectors) == [1, 2, 3, 7, 8]
    assert np.array_equal(index.get([7, 8, 1]), rows[[3, 4, 0]])
    assert index.expected == []  # not a bulk load: only the two missing vectors were read


def test_without_a_kept_copy_every_vector_is_loaded_in_batches():
    repository = FakeDocumentRepository()
    repository.add_knowledge_base(make_kb("kb", dimension=8))
    rows = unit_rows(5, dim=8)
    docs = [make_doc(f"d{i}", [10 + i]) for i in range(5)]
    repository.add_documents("kb", docs, rows)
    index = catalog_over(repository, {}).slot("kb").index
    assert index.expected == [5]
    assert np.array_equal(index.get([10, 11, 12, 13, 14]), rows)


def test_a_removed_knowledge_base_discards_its_kept_copies():
    repository = FakeDocumentRepository()
    repository.add_knowledge_base(make_kb("kb", dimension=8))
    repository.add_documents("kb", [make_doc("a", [1])], unit_rows(1, dim=8))
    kept = {1: unit_rows(1, dim=8)[0]}
    catalog = catalog_over(repository, kept)
    index = catalog.slot("kb").index
    catalog.remove("kb")
    assert index.discarded and kept == {}
