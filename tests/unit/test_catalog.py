"""The catalog on its own: a write keeps the slot it took, and never writes into a discarded one."""

from contextlib import nullcontext

import pytest

from domain.catalog import Catalog
from domain.errors import ConflictError, KnowledgeBaseNotFoundError, ModelMismatchError
from domain.keywords import NoKeywordIndex
from domain.model import KnowledgeBase
from domain.ports import by_dimension, utc_now
from fakes import FakeDocumentRepository, FakeEmbedder, FakeVectorIndex


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
