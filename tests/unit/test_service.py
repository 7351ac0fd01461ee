import threading

import numpy as np
import pytest

from domain import (
    DocumentExistsError,
    DocumentNotFoundError,
    InvalidInputError,
    KnowledgeBaseExistsError,
    KnowledgeBaseNotFoundError,
    KnowledgeBaseService,
    ModelMismatchError,
    NewDocument,
    SearchRequest,
)
from domain.ports import by_dimension
from fakes import FakeEmbedder, FakeVectorIndex

ANIMALS = {
    "cat": "the cat sat on the mat",
    "dog": "a dog barked at the postman",
    "fish": "fish swim in the cold sea",
}


def add(service, kb, docs=ANIMALS):
    return service.add_documents(kb, [NewDocument(text, id=i) for i, text in docs.items()])


def ids(hits):
    return [hit.id for hit in hits]


def test_a_new_knowledge_base_records_the_model_it_was_made_with(service, embedder):
    kb = service.create_knowledge_base("docs", description="d", metadata={"team": "x"})
    info = service.get_knowledge_base("docs")
    assert (kb.model, kb.dimension) == (embedder.model_name, embedder.dimension)
    assert info.knowledge_base.metadata == {"team": "x"}
    assert (info.stats.document_count, info.stats.chunk_count) == (0, 0)


def test_a_knowledge_base_name_can_only_be_used_once(service, kb):
    with pytest.raises(KnowledgeBaseExistsError):
        service.create_knowledge_base(kb)


def test_chunk_overlap_must_be_smaller_than_the_window(service):
    with pytest.raises(InvalidInputError):
        service.create_knowledge_base("kb2", chunk_overlap=16)


def test_search_returns_closest_document_first_and_identical_text_scores_one(service, kb):
    add(service, kb)
    hits = service.search(kb, SearchRequest(query="the cat sat on the mat", top_k=3))
    assert ids(hits)[0] == "cat"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_generated_ids_are_unique(service, kb):
    added = service.add_documents(kb, [NewDocument("same text") for _ in range(20)])
    assert len({doc.id for doc in added}) == 20


def test_a_taken_id_fails_the_whole_batch_before_embedding(service, kb, embedder):
    add(service, kb)
    calls = len(embedder.calls)
    with pytest.raises(DocumentExistsError):
        service.add_documents(kb, [NewDocument("new", id="new"), NewDocument("x", id="cat")])
    assert len(embedder.calls) == calls
    assert service.get_knowledge_base(kb).stats.document_count == 3


def test_a_batch_repeating_an_id_is_refused_whole(service, kb):
    with pytest.raises(InvalidInputError):
        service.add_documents(kb, [NewDocument("a", id="x"), NewDocument("b", id="x")])
    assert service.get_knowledge_base(kb).stats.document_count == 0


def test_more_like_this_leaves_out_the_document_itself(service, kb):
    add(service, kb)
    hits = service.search(kb, SearchRequest(document_id="cat", top_k=10))
    assert "cat" not in ids(hits)
    assert sorted(ids(hits)) == ["dog", "fish"]


def test_min_score_drops_weaker_hits(service, kb):
    add(service, kb)
    hits = service.search(kb, SearchRequest(query="the cat sat on the mat", min_score=0.99))
    assert ids(hits) == ["cat"]


def test_a_raw_vector_query_is_normalised(service, kb, embedder):
    add(service, kb)
    vector = embedder.embed([ANIMALS["fish"]])[0] * 7.0
    hits = service.search(kb, SearchRequest(vector=vector.tolist(), top_k=1))
    assert ids(hits) == ["fish"] and hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_a_vector_of_the_wrong_length_is_refused(service, kb):
    with pytest.raises(InvalidInputError):
        service.search(kb, SearchRequest(vector=[1.0, 2.0]))


LONG = (
    " ".join(f"filler{i}" for i in range(40))
    + " zebra giraffe okapi "
    + " ".join(f"padding{i}" for i in range(40))
)


def test_a_long_document_is_found_by_its_middle_and_the_passage_says_where(service, kb):
    add(service, kb)
    (doc,) = service.add_documents(kb, [NewDocument(LONG, id="long")])
    assert len(doc.chunks) > 3 and not doc.truncated
    (hit,) = service.search(kb, SearchRequest(query="zebra giraffe okapi", top_k=1))
    assert hit.id == "long"
    assert "zebra giraffe okapi" in hit.passage.text
    assert LONG[hit.passage.start : hit.passage.end] == hit.passage.text
    assert hit.passage.start > 0 and hit.passage.end < len(LONG)


def test_many_chunks_of_one_document_do_not_crowd_out_other_documents(service, kb):
    service.add_documents(kb, [NewDocument("zebra " * 200, id="zebras")])
    add(service, kb)
    hits = service.search(kb, SearchRequest(query="zebra", top_k=4))
    assert ids(hits)[0] == "zebras"
    assert sorted(ids(hits)) == ["cat", "dog", "fish", "zebras"]


def test_truncate_mode_embeds_the_first_window_and_flags_it(service):
    service.create_knowledge_base("short", chunking="truncate")
    (doc,) = service.add_documents("short", [NewDocument(LONG, id="long")])
    assert doc.truncated and len(doc.chunks) == 1
    assert doc.chunks[0].span.start == 0 and doc.chunks[0].span.end < len(LONG)


def test_upsert_creates_then_replaces_and_reembeds_only_changed_text(service, kb, embedder):
    doc, created = service.upsert_document(kb, "x", "the cat sat on the mat", {"v": 1})
    assert created
    calls = len(embedder.calls)
    doc, created = service.upsert_document(kb, "x", "the cat sat on the mat", {"v": 2})
    assert not created and doc.metadata == {"v": 2}
    assert len(embedder.calls) == calls
    service.upsert_document(kb, "x", "fish swim in the cold sea")
    assert len(embedder.calls) == calls + 1
    (hit,) = service.search(kb, SearchRequest(query="fish swim in the cold sea", top_k=1))
    assert hit.id == "x" and hit.score == pytest.approx(1.0, abs=1e-5)
    assert service.get_knowledge_base(kb).stats.chunk_count == 1


def test_metadata_updates_never_embed(service, kb, embedder):
    add(service, kb)
    calls = len(embedder.calls)
    doc = service.update_document_metadata(kb, "cat", {"colour": "black"})
    assert doc.metadata == {"colour": "black"}
    assert len(embedder.calls) == calls


def test_a_deleted_document_never_comes_back(service, kb):
    add(service, kb)
    service.delete_document(kb, "cat")
    hits = service.search(kb, SearchRequest(query="the cat sat on the mat", top_k=10))
    assert "cat" not in ids(hits)
    with pytest.raises(DocumentNotFoundError):
        service.delete_document(kb, "cat")


def test_bulk_delete_reports_what_it_removed(service, kb):
    add(service, kb)
    assert service.delete_documents(kb, ["cat", "nope", "dog"]) == ["cat", "dog"]


def test_a_deleted_knowledge_base_is_gone_with_its_vectors(service, kb):
    add(service, kb)
    service.delete_knowledge_base(kb)
    with pytest.raises(KnowledgeBaseNotFoundError):
        service.search(kb, SearchRequest(query="cat"))
    service.create_knowledge_base(kb)
    assert service.search(kb, SearchRequest(query="the cat sat on the mat")) == []


def test_listing_walks_every_document_once_by_cursor(service, kb):
    service.add_documents(kb, [NewDocument(f"text {i}", id=f"d{i:02}") for i in range(25)])
    seen, cursor = [], None
    while True:
        page = service.list_documents(kb, limit=7, cursor=cursor)
        seen += [doc.id for doc in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"d{i:02}" for i in range(25)]


def test_a_forged_cursor_is_refused(service, kb):
    with pytest.raises(InvalidInputError):
        service.list_documents(kb, cursor="***")


def test_a_knowledge_base_of_another_model_is_refused_not_mixed(repository, kb, service):
    other = KnowledgeBaseService(
        FakeEmbedder(model_name="other"), repository, by_dimension(FakeVectorIndex)
    )
    other.load()
    with pytest.raises(ModelMismatchError, match="run the service with model 'fake-model'") as e:
        other.add_documents(kb, [NewDocument("text")])
    assert e.value.model == "fake-model"
    with pytest.raises(ModelMismatchError):
        other.search(kb, SearchRequest(query="text"))


def test_load_rebuilds_indexes_from_kept_vectors_without_embedding(repository, kb, service):
    add(service, kb)
    embedder = FakeEmbedder()
    restarted = KnowledgeBaseService(embedder, repository, by_dimension(FakeVectorIndex))
    assert restarted.load() == 1
    hits = restarted.search(kb, SearchRequest(document_id="cat", top_k=5))
    assert sorted(ids(hits)) == ["dog", "fish"]
    assert embedder.calls == []


class BlockingEmbedder(FakeEmbedder):
    def __init__(self):
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def embed(self, texts):
        if texts == ["slow"]:
            self.entered.set()
            self.release.wait(5)
        return super().embed(texts)


def test_embedding_happens_outside_the_knowledge_base_lock(repository):
    embedder = BlockingEmbedder()
    service = KnowledgeBaseService(embedder, repository, by_dimension(FakeVectorIndex))
    service.create_knowledge_base("kb")
    add(service, "kb")
    writer = threading.Thread(target=service.add_documents, args=("kb", [NewDocument("slow")]))
    writer.start()
    assert embedder.entered.wait(5)
    vector = np.ones(32).tolist()
    assert len(service.search("kb", SearchRequest(vector=vector, top_k=3))) == 3
    embedder.release.set()
    writer.join(5)
    assert service.get_knowledge_base("kb").stats.document_count == 4


def test_truncate_mode_lets_the_model_cut_the_whole_text_itself(service, embedder):
    service.create_knowledge_base("short", chunking="truncate")
    service.add_documents("short", [NewDocument(LONG, id="long")])
    assert embedder.calls[-1] == [LONG]


def test_truncate_mode_queries_are_cut_like_the_documents(service, embedder):
    service.create_knowledge_base("short", chunking="truncate")
    service.add_documents("short", [NewDocument(LONG, id="long")])
    (hit,) = service.search("short", SearchRequest(query=LONG, top_k=1))
    assert embedder.calls[-1] == [LONG]
    assert hit.score == pytest.approx(1.0, abs=1e-5)
