"""Knowledge bases on the service with fakes: listing by cursor, counts, updates, and deletes that
leave other knowledge bases alone.

These moved here from tests/integration/test_knowledge_bases_api.py, which keeps the HTTP mapping.
"""

import pytest

from domain import KnowledgeBaseNotFoundError, NewDocument, SearchRequest


def walk(service, limit):
    names, cursor = [], None
    while True:
        page = service.list_knowledge_bases(limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        names += [info.knowledge_base.name for info in page.items]
        if page.next_cursor is None:
            return names
        cursor = page.next_cursor


def hit_ids(service, kb, query):
    return [hit.id for hit in service.search(kb, SearchRequest(query=query, top_k=1000))]


def test_listing_an_empty_service_is_one_page_without_a_cursor(service):
    page = service.list_knowledge_bases()
    assert (page.items, page.next_cursor) == ([], None)


def test_a_limit_above_the_count_is_one_page_without_a_cursor(service):
    for name in ("two", "one"):
        service.create_knowledge_base(name)
    page = service.list_knowledge_bases(limit=10)
    assert ([i.knowledge_base.name for i in page.items], page.next_cursor) == (["one", "two"], None)


@pytest.mark.parametrize("limit", [1, 3])
def test_listing_walks_every_knowledge_base_once_in_name_order(service, limit):
    names = [f"kb-{i:02d}" for i in (7, 3, 11, 0, 5, 9, 1)]
    for name in names:
        service.create_knowledge_base(name)
    assert walk(service, limit) == sorted(names)


def test_a_knowledge_base_counts_its_documents_and_chunks(service, kb):
    long_text = " ".join(f"word{i}" for i in range(40))
    added = service.add_documents(
        kb, [NewDocument("short one"), NewDocument("short two"), NewDocument(long_text)]
    )
    stats = service.get_knowledge_base(kb).stats
    assert stats.document_count == 3
    assert stats.chunk_count == sum(len(doc.chunks) for doc in added) > 3


def test_an_update_without_a_description_keeps_it_and_replaces_the_metadata(service):
    created = service.create_knowledge_base("docs", description="keep me", metadata={"a": 1})
    updated = service.update_knowledge_base("docs", metadata={"b": 2}).knowledge_base
    assert (updated.description, updated.metadata) == ("keep me", {"b": 2})
    assert updated.created_at == created.created_at


def test_an_update_keeps_the_documents(service, kb):
    service.add_documents(kb, [NewDocument("kept text", id="d1")])
    service.update_knowledge_base(kb, description="renamed")
    assert service.get_knowledge_base(kb).stats.document_count == 1
    assert service.get_document(kb, "d1").text == "kept text"


def test_a_deleted_knowledge_base_is_gone_from_every_use_case_and_the_listing(service, kb):
    service.create_knowledge_base("stay")
    service.add_documents(kb, [NewDocument("soon gone", id="d1")])
    service.delete_knowledge_base(kb)
    for use in (
        lambda: service.get_knowledge_base(kb),
        lambda: service.list_documents(kb),
        lambda: service.get_document(kb, "d1"),
        lambda: service.search(kb, SearchRequest(query="soon gone")),
        lambda: service.delete_knowledge_base(kb),
    ):
        with pytest.raises(KnowledgeBaseNotFoundError):
            use()
    assert walk(service, 10) == ["stay"]


def test_a_knowledge_base_recreated_under_its_old_name_starts_empty(service):
    service.create_knowledge_base("again", description="first life")
    service.add_documents("again", [NewDocument("the old document", id="d1")])
    service.delete_knowledge_base("again")
    recreated = service.create_knowledge_base("again")
    assert recreated.description == ""
    assert service.list_documents("again").items == []
    assert hit_ids(service, "again", "the old document") == []
    service.add_documents("again", [NewDocument("a new life", id="d1")])
    (hit,) = service.search("again", SearchRequest(query="the old document", top_k=1000))
    assert (hit.id, hit.text) == ("d1", "a new life")


def test_deleting_one_knowledge_base_leaves_the_others_untouched(service):
    for name in ("left", "right"):
        service.create_knowledge_base(name)
        service.add_documents(name, [NewDocument("shared words here", id="same")])
    service.delete_knowledge_base("left")
    assert service.get_knowledge_base("right").stats.document_count == 1
    (hit,) = service.search("right", SearchRequest(query="shared words here"))
    assert hit.id == "same" and hit.score == pytest.approx(1.0, abs=1e-5)


def test_documents_of_two_knowledge_bases_never_mix(service):
    service.create_knowledge_base("red")
    service.create_knowledge_base("blue")
    service.add_documents("red", [NewDocument("apples and cherries", id="r")])
    service.add_documents("blue", [NewDocument("apples and blueberries", id="b")])
    assert hit_ids(service, "red", "apples") == ["r"]
    assert hit_ids(service, "blue", "apples") == ["b"]
