"""Hybrid search at the service level: stop words, score fusion, and `explain`."""

import pytest

from domain import KnowledgeBaseService, by_dimension
from domain.fusion import coverage
from domain.keywords import TermMatches, query_terms
from domain.model import NewDocument
from domain.search_request import SearchRequest
from fakes import FakeKeywordIndex, FakeVectorIndex

QUESTION = "where can I put my bicycle"
NOTES = {
    # Shares "where can I ... my" with the question: the bag-of-words embedder's best match.
    "strong": "where can I keep my things",
    # Shares one rare word: a weak keyword match.
    "weak": "bicycle repair kit pump levers tyre",
    **{f"note{i}": f"office kitchen rule number {i} about the fridge" for i in range(8)},
}


@pytest.fixture
def notes(embedder, repository):
    service = KnowledgeBaseService(
        embedder, repository, by_dimension(FakeVectorIndex), lambda kb: FakeKeywordIndex()
    )
    service.create_knowledge_base("notes")
    service.add_documents("notes", [NewDocument(text, id=i) for i, text in NOTES.items()])
    return service


def search(service, **options):
    return service.search("notes", SearchRequest(**options))


def test_query_terms_leave_out_stop_words():
    assert query_terms("Where can I leave my Bike? my bike!") == ["leave", "bike"]


def test_a_question_of_stop_words_only_finds_no_keyword_match(notes):
    hits = search(notes, query="where can I", mode="hybrid", explain=True)
    assert all(hit.explain.keyword is None for hit in hits)
    assert [h.id for h in hits] == [h.id for h in search(notes, query="where can I")]


def test_a_weak_keyword_match_cannot_outrank_a_strong_dense_match(notes):
    dense = search(notes, query=QUESTION)
    assert dense[0].id == "strong"
    hybrid = search(notes, query=QUESTION, mode="hybrid")
    assert hybrid[0].id == "strong"
    # Reciprocal rank fusion gives the one-word match the same pull as a full one.
    assert search(notes, query=QUESTION, mode="hybrid", fusion="rrf")[0].id == "weak"


def test_a_document_holding_every_rare_query_word_moves_up(notes):
    notes.add_documents(
        "notes",
        [
            NewDocument("where is my stuff", id="stuff"),
            NewDocument("ladder XK-4471", id="serial"),
        ],
    )
    query = "where is my XK 4471"
    assert search(notes, query=query)[0].id != "serial"
    assert search(notes, query=query, mode="hybrid")[0].id == "serial"


def test_coverage_weighs_words_by_rarity_and_common_words_weigh_nothing():
    matches = TermMatches(
        documents=10,
        terms={"bike": 1, "leave": 3, "a": 9},
        matched={"d1": frozenset({"bike", "a"}), "d2": frozenset({"leave", "a"})},
    )
    covered = coverage(matches)
    assert covered["d1"] > 0.5 > covered["d2"] > 0
    assert covered["d1"] + covered["d2"] == pytest.approx(1.0)  # "a" weighs nothing
    assert coverage(TermMatches(10, {"a": 9}, {"d1": frozenset({"a"})})) == {}


def test_explain_in_hybrid_search_matches_the_order_and_both_rankings(notes):
    hits = search(notes, query=QUESTION, mode="hybrid", explain=True, top_k=10)
    fused = [hit.explain.fused for hit in hits]
    assert fused == sorted(fused, reverse=True)
    assert fused == [hit.fusion_score for hit in hits]
    dense_order = [h.id for h in search(notes, query=QUESTION, top_k=10)]
    for hit in hits:
        assert hit.explain.dense.score == hit.score
        assert dense_order[hit.explain.dense.rank - 1] == hit.id
        expected = 0.7 * hit.score
        if hit.explain.keyword is not None:
            expected += 0.3 * hit.explain.keyword.coverage**4
        assert hit.explain.fused == pytest.approx(expected)
    matched = {h.id: h.explain.keyword for h in hits if h.explain.keyword is not None}
    assert list(matched) == ["weak"] and matched["weak"].rank == 1
    assert matched["weak"].score > 0 and 0 < matched["weak"].coverage < 1


def test_explain_in_rrf_fusion_gives_the_reciprocal_ranks(notes):
    hits = search(notes, query=QUESTION, mode="hybrid", fusion="rrf", rrf_k=10, explain=True)
    for hit in hits:
        keyword = hit.explain.keyword
        expected = 0.5 / (10 + hit.explain.dense.rank)
        expected += 0.5 / (10 + keyword.rank) if keyword else 0.0
        assert hit.explain.fused == pytest.approx(expected) == hit.fusion_score


def test_explain_in_dense_search_has_the_dense_part_only(notes):
    hits = search(notes, query=QUESTION, explain=True, top_k=4)
    assert [h.explain.dense.rank for h in hits] == [1, 2, 3, 4]
    assert all(h.explain.dense.score == h.score for h in hits)
    assert all(h.explain.keyword is None and h.explain.fused is None for h in hits)
    assert all(h.explain is None for h in search(notes, query=QUESTION))


def test_keyword_weight_defaults_per_fusion_and_unknown_fusions_are_refused():
    from domain.errors import InvalidInputError

    assert SearchRequest(query="x", mode="hybrid").weight == 0.3
    assert SearchRequest(query="x", mode="hybrid", fusion="rrf").weight == 0.5
    assert SearchRequest(query="x", keyword_weight=0.9).weight == 0.9
    with pytest.raises(InvalidInputError, match="fusion"):
        SearchRequest(query="x", fusion="max")
