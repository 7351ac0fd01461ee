"""Filters before ranking, diversity, batch search and bulk delete, on the service with fakes."""

import pytest

from domain import InvalidInputError, NewDocument, SearchRequest


@pytest.fixture
def library(service, kb):
    docs = [
        NewDocument(
            f"common words shared by all {i}", id=f"d{i:03}", metadata={"n": i, "even": i % 2 == 0}
        )
        for i in range(200)
    ]
    service.add_documents(kb, docs)
    return kb


def ids(hits):
    return [hit.id for hit in hits]


def test_a_filter_matching_few_documents_still_fills_top_k(service, library):
    request = SearchRequest(
        query="common words", top_k=5, filter={"n": {"$in": [3, 150, 199, 7, 42, 60]}}
    )
    hits = service.search(library, request)
    assert len(hits) == 5
    assert set(ids(hits)) <= {"d003", "d150", "d199", "d007", "d042", "d060"}


def test_a_filter_over_many_documents_uses_the_index_and_keeps_only_matches(
    service, library, monkeypatch
):
    monkeypatch.setattr("domain.ranking.EXACT_PASS_LIMIT", 10)
    hits = service.search(library, SearchRequest(query="shared", top_k=50, filter={"even": True}))
    assert len(hits) == 50
    assert all(hit.metadata["even"] for hit in hits)


def test_a_filtered_search_ranks_like_an_unfiltered_one_restricted_afterwards(service, library):
    unfiltered = service.search(library, SearchRequest(query="all 17", top_k=200))
    filtered = service.search(
        library, SearchRequest(query="all 17", top_k=10, filter={"n": {"$lt": 100}})
    )
    expected = [h.id for h in unfiltered if h.metadata["n"] < 100][:10]
    assert ids(filtered) == expected


def test_a_filter_matching_nothing_returns_no_hits(service, library):
    assert service.search(library, SearchRequest(query="words", filter={"n": -1})) == []


def test_a_malformed_filter_is_refused(service, library):
    with pytest.raises(InvalidInputError, match=r"filter\.n\.\$bad"):
        service.search(library, SearchRequest(query="words", filter={"n": {"$bad": 1}}))


def test_diversity_skips_near_duplicates_when_distinct_documents_exist(service, kb):
    twins = [NewDocument("solar panels on the roof", id=f"twin{i}") for i in range(5)]
    others = [
        NewDocument("solar energy policy in europe", id="policy"),
        NewDocument("roof repair after the storm", id="roof"),
    ]
    service.add_documents(kb, twins + others)
    plain = service.search(kb, SearchRequest(query="solar panels on the roof", top_k=3))
    assert ids(plain) == ["twin0", "twin1", "twin2"] or all(
        i.startswith("twin") for i in ids(plain)
    )
    diverse = service.search(
        kb, SearchRequest(query="solar panels on the roof", top_k=3, diversity=0.5)
    )
    assert sum(i.startswith("twin") for i in ids(diverse)) == 1
    assert {"policy", "roof"} <= set(ids(diverse))
    assert diverse[0].score == pytest.approx(1.0, abs=1e-5)


def test_diversity_zero_is_plain_similarity_order(service, library):
    plain = service.search(library, SearchRequest(query="shared 5", top_k=10))
    zero = service.search(library, SearchRequest(query="shared 5", top_k=10, diversity=0.0))
    assert ids(plain) == ids(zero)


def test_batch_search_equals_the_same_queries_one_by_one_in_one_model_call(
    service, library, embedder
):
    requests = [
        SearchRequest(query="common words 5", top_k=3),
        SearchRequest(document_id="d010", top_k=4),
        SearchRequest(query="shared by all 77", top_k=2, filter={"even": False}),
        SearchRequest(vector=[0.5] * 32, top_k=1),
    ]
    calls = len(embedder.calls)
    batched = service.search_many(library, requests)
    assert len(embedder.calls) == calls + 1
    assert batched == [service.search(library, r) for r in requests]


def test_a_batch_of_more_than_64_searches_is_refused(service, library):
    with pytest.raises(InvalidInputError):
        service.search_many(library, [SearchRequest(query="x")] * 65)


def test_bulk_delete_by_filter_dry_run_removes_nothing(service, library):
    doomed = service.delete_documents(library, filter={"n": {"$gte": 190}}, dry_run=True)
    assert doomed == [f"d{i}" for i in range(190, 200)]
    assert service.get_knowledge_base(library).stats.document_count == 200
    assert service.delete_documents(library, filter={"n": {"$gte": 190}}) == doomed
    assert service.get_knowledge_base(library).stats.document_count == 190
    assert (
        service.search(library, SearchRequest(query="all 195", filter={"n": {"$gte": 190}})) == []
    )


def test_bulk_delete_by_ids_and_filter_needs_both(service, library):
    removed = service.delete_documents(library, ["d001", "d002", "d003"], filter={"even": True})
    assert removed == ["d002"]


def test_listing_with_a_filter_pages_through_matches_only(service, library):
    seen, cursor = [], None
    while True:
        page = service.list_documents(
            library, limit=7, cursor=cursor, filter={"n": {"$lt": 20}, "even": True}
        )
        seen += [doc.id for doc in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"d{i:03}" for i in range(0, 20, 2)]


@pytest.fixture
def hybrid_service(embedder, repository):
    from domain import KnowledgeBaseService, by_dimension
    from fakes import FakeKeywordIndex, FakeVectorIndex

    service = KnowledgeBaseService(
        embedder, repository, by_dimension(FakeVectorIndex), lambda kb: FakeKeywordIndex()
    )
    service.create_knowledge_base("logs")
    docs = {
        "general": "the parser failed with an error in the parser module",
        "exact": "E1234",
        **{f"noise{i}": f"parser error number {i} in module" for i in range(8)},
    }
    service.add_documents("logs", [NewDocument(text, id=i) for i, text in docs.items()])
    return service


def test_hybrid_ranks_an_exact_keyword_match_first_where_dense_alone_does_not(hybrid_service):
    query = "parser error E1234"
    dense = hybrid_service.search("logs", SearchRequest(query=query, top_k=3))
    hybrid = hybrid_service.search(
        "logs", SearchRequest(query=query, top_k=3, mode="hybrid", keyword_weight=0.7)
    )
    assert dense[0].id != "exact"
    assert hybrid[0].id == "exact"
    assert hybrid[0].fusion_score is not None
    assert -1.0 <= hybrid[0].score <= 1.0  # still the cosine similarity


def test_hybrid_keeps_the_keyword_index_in_step_with_updates_and_deletes(hybrid_service):
    hybrid_service.upsert_document("logs", "exact", "nothing to see")
    hits = hybrid_service.search("logs", SearchRequest(query="E1234", mode="hybrid", top_k=20))
    # No document holds E1234 any more: every fusion score comes from the dense side alone.
    assert all(h.fusion_score == pytest.approx(0.7 * h.score) for h in hits)
    hybrid_service.upsert_document("logs", "fresh", "E1234 again")
    hits = hybrid_service.search("logs", SearchRequest(query="E1234", mode="hybrid", top_k=1))
    assert hits[0].id == "fresh"
    hybrid_service.delete_document("logs", "fresh")
    hits = hybrid_service.search("logs", SearchRequest(query="E1234", mode="hybrid", top_k=20))
    assert "fresh" not in [h.id for h in hits]


def test_hybrid_respects_filters_and_the_more_like_this_exclusion(hybrid_service):
    hits = hybrid_service.search(
        "logs", SearchRequest(document_id="exact", mode="hybrid", top_k=20)
    )
    assert "exact" not in [h.id for h in hits]
    hybrid_service.update_document_metadata("logs", "noise3", {"keep": True})
    hits = hybrid_service.search(
        "logs", SearchRequest(query="E1234 parser", mode="hybrid", filter={"keep": True})
    )
    assert [h.id for h in hits] == ["noise3"]


def test_hybrid_without_a_keyword_index_is_refused(service, kb):
    service.add_documents(kb, [NewDocument("text", id="x")])
    with pytest.raises(InvalidInputError, match="keyword index"):
        service.search(kb, SearchRequest(query="text", mode="hybrid"))


def test_exact_and_probes_together_are_refused():
    with pytest.raises(InvalidInputError, match="not both"):
        SearchRequest(query="words", exact=True, probes=8)
    assert SearchRequest(query="words", exact=True).exact


def test_a_search_returns_only_the_hit_fields_asked_for(service, library):
    everything = service.search(library, SearchRequest(query="doc 3", top_k=2))
    lean = service.search(library, SearchRequest(query="doc 3", top_k=2, fields=["passage"]))
    assert ids(lean) == ids(everything) and [h.score for h in lean] == [h.score for h in everything]
    assert all(h.text is None and h.metadata is None for h in lean)
    assert [h.passage for h in lean] == [h.passage for h in everything]
    bare = service.search(library, SearchRequest(query="doc 3", top_k=2, fields=[]))
    assert all(h.text is None and h.metadata is None and h.passage is None for h in bare)


def test_a_hit_field_that_does_not_exist_is_refused_naming_the_ones_that_do():
    with pytest.raises(InvalidInputError) as refused:
        SearchRequest(query="q", fields=["text", "vector"])
    assert "vector" in refused.value.message and "'metadata'" in refused.value.message
    assert "fields" in refused.value.errors
