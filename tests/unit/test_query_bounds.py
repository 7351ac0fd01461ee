"""The work one search can cause is bounded: characters and chunks per query text, searches
per batch, and the text a keyword search looks up (issue 15 item 4)."""

import pytest

from domain import InvalidInputError, NewDocument, SearchRequest
from domain.chunking import chunk_spans
from domain.ports import by_dimension
from domain.search_request import (
    MAX_BATCH_QUERIES,
    MAX_KEYWORD_QUERY_CHARS,
    MAX_QUERY_CHARS,
    MAX_QUERY_CHUNKS,
)
from domain.services import KnowledgeBaseService
from fakes import FakeKeywordIndex, FakeVectorIndex


def words(count):
    return " ".join(f"w{i}" for i in range(count))


def text_of_chunks(embedder, chunks, overlap):
    """The shortest text of w0 w1 ... that the knowledge base splits into `chunks` chunks."""
    count = 1
    while True:
        text = words(count)
        spans, _ = chunk_spans(embedder.token_offsets(text), len(text), embedder.window, overlap)
        if len(spans) == chunks:
            return text
        count += 1


@pytest.fixture
def overlap(service, kb):
    return service.get_knowledge_base(kb).knowledge_base.chunk_overlap


def test_a_query_of_as_many_chunks_as_the_limit_is_embedded_in_one_call(
    service, kb, embedder, overlap
):
    service.add_documents(kb, [NewDocument("w1 w2 w3", id="a")])
    query = text_of_chunks(embedder, MAX_QUERY_CHUNKS, overlap)
    embedder.calls.clear()
    assert [hit.id for hit in service.search(kb, SearchRequest(query=query))] == ["a"]
    assert [len(call) for call in embedder.calls] == [MAX_QUERY_CHUNKS]


def test_a_query_of_one_chunk_more_is_refused_before_anything_is_embedded(
    service, kb, embedder, overlap
):
    query = text_of_chunks(embedder, MAX_QUERY_CHUNKS + 1, overlap)
    assert len(query) < MAX_QUERY_CHARS
    embedder.calls.clear()
    with pytest.raises(InvalidInputError, match=f"MAX_QUERY_CHUNKS is {MAX_QUERY_CHUNKS}") as e:
        service.search_many(kb, [SearchRequest(query="w1"), SearchRequest(query=query)])
    assert "query" in e.value.errors
    assert embedder.calls == []


def test_the_query_texts_of_a_batch_share_the_chunk_limit(service, kb, embedder, overlap):
    service.add_documents(kb, [NewDocument("w1 w2 w3", id="a")])
    half = text_of_chunks(embedder, MAX_QUERY_CHUNKS // 2, overlap)
    at_limit = [SearchRequest(query=half), SearchRequest(query=half)]
    assert len(service.search_many(kb, at_limit)) == 2
    embedder.calls.clear()
    with pytest.raises(InvalidInputError, match=f"MAX_QUERY_CHUNKS is {MAX_QUERY_CHUNKS}"):
        service.search_many(kb, [*at_limit, SearchRequest(query="w1")])
    assert embedder.calls == []


def test_a_query_longer_than_the_domain_allows_is_refused_naming_the_limit():
    assert SearchRequest(query="x" * MAX_QUERY_CHARS).query
    with pytest.raises(InvalidInputError, match=f"MAX_QUERY_CHARS is {MAX_QUERY_CHARS}") as e:
        SearchRequest(query="x" * (MAX_QUERY_CHARS + 1))
    assert "query" in e.value.errors


def test_a_batch_holds_at_most_the_domain_limit_of_searches(service, kb):
    service.add_documents(kb, [NewDocument("w1", id="a")])
    batch = [SearchRequest(query="w1")] * MAX_BATCH_QUERIES
    assert len(service.search_many(kb, batch)) == MAX_BATCH_QUERIES
    with pytest.raises(InvalidInputError, match=str(MAX_BATCH_QUERIES)):
        service.search_many(kb, [SearchRequest(query="w1")] * (MAX_BATCH_QUERIES + 1))


class RecordingKeywordIndex(FakeKeywordIndex):
    """Remembers every text it is asked to look up, in `looked_up`."""

    def __init__(self, looked_up):
        super().__init__()
        self.looked_up = looked_up

    def search(self, text, k, allowed=None):
        self.looked_up.append(text)
        return super().search(text, k, allowed)


@pytest.fixture
def looked_up():
    return []


@pytest.fixture
def hybrid(embedder, repository, looked_up):
    def keywords(kb):
        return RecordingKeywordIndex(looked_up)

    service = KnowledgeBaseService(embedder, repository, by_dimension(FakeVectorIndex), keywords)
    service.create_knowledge_base("kb")
    return service


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_more_like_a_long_document_embeds_nothing_and_looks_up_a_bounded_text(
    hybrid, embedder, looked_up, mode
):
    long_text = words(MAX_KEYWORD_QUERY_CHARS // 2)  # far more chunks than a query may have
    hybrid.add_documents(
        "kb", [NewDocument(long_text, id="long"), NewDocument("w1 w2 other", id="other")]
    )
    embedder.calls.clear()
    hits = hybrid.search("kb", SearchRequest(document_id="long", mode=mode))
    assert [hit.id for hit in hits] == ["other"]
    assert embedder.calls == []
    if mode == "hybrid":
        assert looked_up == [long_text[:MAX_KEYWORD_QUERY_CHARS]]


def test_a_hybrid_text_query_is_looked_up_up_to_the_keyword_limit(hybrid, looked_up):
    hybrid.add_documents("kb", [NewDocument("w1 w2", id="a")])
    query = "w1" + " " * MAX_KEYWORD_QUERY_CHARS + "w2"  # two words, one chunk
    hybrid.search("kb", SearchRequest(query=query, mode="hybrid"))
    assert looked_up == [query[:MAX_KEYWORD_QUERY_CHARS]]
