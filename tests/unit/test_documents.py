"""Document writes on the service with fakes: one model call per batch, timestamps, upsert and
patch semantics, and ids that come back after a delete.

These moved here from tests/integration/test_documents_api.py, which keeps the HTTP mapping.
"""

from datetime import UTC, datetime, timedelta

import pytest

from domain import KnowledgeBaseService, NewDocument, SearchRequest
from domain.ports import by_dimension
from fakes import FakeVectorIndex

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class TickingClock:
    """A second later at every call, so each write has a time of its own."""

    def __init__(self):
        self.ticks = 0

    def __call__(self):
        self.ticks += 1
        return T0 + timedelta(seconds=self.ticks)


@pytest.fixture
def service(embedder, repository):
    clock = TickingClock()
    return KnowledgeBaseService(embedder, repository, by_dimension(FakeVectorIndex), clock=clock)


def test_a_batch_is_embedded_in_one_model_call(service, kb, embedder):
    texts = [f"text number {i}" for i in range(5)]
    service.add_documents(kb, [NewDocument(text) for text in texts])
    assert embedder.calls == [texts]


def test_an_upsert_keeps_created_at_and_moves_updated_at_forward(service, kb):
    created, _ = service.upsert_document(kb, "d1", "version one")
    replaced, _ = service.upsert_document(kb, "d1", "version two")
    assert created.created_at == created.updated_at
    assert replaced.created_at == created.created_at
    assert replaced.updated_at > created.updated_at


def test_a_metadata_patch_keeps_created_at_and_moves_updated_at_forward(service, kb):
    (added,) = service.add_documents(kb, [NewDocument("stable text", id="d1")])
    patched = service.update_document_metadata(kb, "d1", {"new": 1})
    assert patched.created_at == added.created_at
    assert patched.updated_at > added.updated_at
    assert service.get_document(kb, "d1") == patched


def test_an_upsert_replaces_a_document_added_earlier(service, kb):
    service.add_documents(kb, [NewDocument("posted", id="d1", metadata={"v": 1})])
    _, created = service.upsert_document(kb, "d1", "put over it")
    assert not created
    assert [(d.id, d.text, d.metadata) for d in service.list_documents(kb).items] == [
        ("d1", "put over it", {})
    ]
    assert service.get_knowledge_base(kb).stats.document_count == 1


def test_an_upsert_of_the_same_text_changes_what_search_returns_without_embedding(
    service, kb, embedder
):
    service.upsert_document(kb, "d1", "unchanged words", {"v": 1})
    calls = len(embedder.calls)
    service.upsert_document(kb, "d1", "unchanged words", {"v": 2})
    assert len(embedder.calls) == calls
    (hit,) = service.search(kb, SearchRequest(query="unchanged words"))
    assert (hit.id, hit.metadata) == ("d1", {"v": 2})


def test_patched_metadata_shows_up_in_search_hits_and_the_text_stays(service, kb):
    service.add_documents(
        kb, [NewDocument("findable text", id="d1", metadata={"state": "draft", "a": 1})]
    )
    patched = service.update_document_metadata(kb, "d1", {"state": "final"})
    assert (patched.text, patched.metadata) == ("findable text", {"state": "final"})
    (hit,) = service.search(kb, SearchRequest(query="findable text"))
    assert hit.metadata == {"state": "final"}
    assert hit.score == pytest.approx(1.0, abs=1e-5)


def test_a_deleted_id_can_be_added_again(service, kb):
    service.add_documents(kb, [NewDocument("first life", id="d1")])
    service.delete_document(kb, "d1")
    service.add_documents(kb, [NewDocument("second life", id="d1")])
    assert service.get_document(kb, "d1").text == "second life"


def test_a_bulk_delete_of_unknown_ids_removes_nothing(service, kb):
    service.add_documents(kb, [NewDocument("still here", id="d1")])
    assert service.delete_documents(kb, ["nope", "other"]) == []
    assert [doc.id for doc in service.list_documents(kb).items] == ["d1"]


def test_a_bulk_delete_reports_an_id_listed_twice_once(service, kb):
    service.add_documents(kb, [NewDocument(f"text {i}", id=f"d{i}") for i in range(3)])
    assert sorted(service.delete_documents(kb, ["d1", "missing", "d1"])) == ["d1"]
    assert service.get_knowledge_base(kb).stats.chunk_count == 2
