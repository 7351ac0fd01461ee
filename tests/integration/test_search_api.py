"""/v1/knowledge-bases/{kb}/search over HTTP: the hit's JSON shape and one path per way to search.

Ranking, top_k, min_score, more like this, raw vectors and long texts are tested once on the
service with fakes (tests/unit/test_search.py); these check the request and response mapping.
"""

from __future__ import annotations

import pytest

from fakes import FakeEmbedder

pytestmark = pytest.mark.both_backends

ANIMALS = [
    {"id": "cat", "text": "the cat sat on the warm mat", "metadata": {"kind": "pet"}},
    {"id": "dog", "text": "the dog sat on the cold floor", "metadata": {"kind": "pet"}},
    {"id": "fox", "text": "a quick brown fox jumps over fences", "metadata": {"kind": "wild"}},
    {"id": "owl", "text": "an owl hoots at night in the forest", "metadata": {"kind": "wild"}},
    {"id": "eel", "text": "electric eels live in muddy rivers", "metadata": {"kind": "wild"}},
]


@pytest.fixture
def animals(kb, add_documents):
    add_documents(kb, *ANIMALS)
    return kb


def cosine(a: str, b: str) -> float:
    vectors = FakeEmbedder().embed([a, b])
    return float(vectors[0] @ vectors[1])


def test_hits_are_ordered_best_first_with_cosine_scores(animals, search):
    query = "the dog sat in the forest"

    hits = search(animals, query=query)

    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= score <= 1.0 for score in scores)
    by_id = {doc["id"]: doc["text"] for doc in ANIMALS}
    for hit in hits:
        assert hit["score"] == pytest.approx(cosine(query, by_id[hit["id"]]), abs=1e-5)


def test_a_hit_carries_the_document_text_metadata_and_passage(animals, search):
    (hit,) = search(animals, query="electric eels live in muddy rivers", top_k=1)

    assert hit["id"] == "eel"
    assert hit["text"] == "electric eels live in muddy rivers"
    assert hit["metadata"] == {"kind": "wild"}
    assert hit["passage"] == {"start": 0, "end": len(hit["text"]), "text": hit["text"]}


def test_a_search_may_ask_for_only_some_hit_fields(animals, client, search):
    query = {"query": "electric eels live in muddy rivers", "top_k": 2}
    (eel, _) = search(animals, **query, fields=["metadata"])
    assert eel == {"id": "eel", "score": pytest.approx(1.0), "metadata": {"kind": "wild"}}
    (eel, _) = search(animals, **query, fields=[])
    assert set(eel) == {"id", "score"}
    batch = {"queries": [{**query, "fields": ["passage"]}, query]}
    response = client.post(f"/v1/knowledge-bases/{animals}/search/batch", json=batch)
    lean, full = (result["hits"][0] for result in response.get_json()["results"])
    assert set(lean) == {"id", "score", "passage"} and {"text", "metadata"} <= set(full)


def test_an_unknown_hit_field_is_422_naming_the_field(animals, client, expect_error):
    body = {"query": "eels", "fields": ["text", "vector"]}
    response = client.post(f"/v1/knowledge-bases/{animals}/search", json=body)
    assert "vector" in expect_error(response, 422, "fields")["message"]


def test_top_k_defaults_to_ten(kb, add_documents, search):
    add_documents(kb, *({"text": f"note number {i}"} for i in range(15)))

    assert len(search(kb, query="note number")) == 10


def test_min_score_of_one_keeps_only_identical_text(animals, search):
    hits = search(animals, query="an owl hoots at night in the forest", min_score=0.9999)

    assert [hit["id"] for hit in hits] == ["owl"]


def test_search_by_document_id_excludes_the_document_itself(animals, search):
    hits = search(animals, document_id="cat", top_k=1000)

    ids = [hit["id"] for hit in hits]
    assert "cat" not in ids
    assert ids[0] == "dog"
    assert len(ids) == len(ANIMALS) - 1


def test_search_by_vector_finds_the_document_with_that_embedding(animals, search):
    vector = FakeEmbedder().embed(["an owl hoots at night in the forest"])[0]

    hits = search(animals, vector=[float(x) for x in vector], top_k=1)

    assert hits[0]["id"] == "owl"
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_a_vector_with_huge_components_is_normalised_not_refused(animals, search):
    vector = FakeEmbedder().embed(["a quick brown fox"])[0]

    plain = search(animals, vector=[float(x) for x in vector], top_k=1000)
    huge = search(animals, vector=[float(x) * 1e300 for x in vector], top_k=1000)

    assert [hit["id"] for hit in huge] == [hit["id"] for hit in plain]


def numbered_words(start: int, stop: int) -> str:
    return " ".join(f"word{i}" for i in range(start, stop))


def test_a_long_text_hit_points_at_the_matching_window(kb, add_documents, search):
    text = numbered_words(0, 40)
    add_documents(kb, {"id": "long", "text": text}, {"id": "short", "text": "word3 word30"})

    for start in (0, 16, 24):
        window = numbered_words(start, start + 16)
        (hit,) = search(kb, query=window, top_k=1)

        passage = hit["passage"]
        assert hit["id"] == "long"
        assert hit["score"] == pytest.approx(1.0, abs=1e-5)
        assert passage["text"] == window
        assert text[passage["start"] : passage["end"]] == passage["text"]
        assert hit["text"] == text
