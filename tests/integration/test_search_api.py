"""HTTP behaviour of /v1/knowledge-bases/{kb}/search: ranking, filters of size and score, chunks."""

from __future__ import annotations

import random

import numpy as np
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


def test_identical_text_scores_one(animals, search):
    hits = search(animals, query="the cat sat on the warm mat")

    assert hits[0]["id"] == "cat"
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-5)


def test_search_returns_closest_document_first(animals, search):
    hits = search(animals, query="a cat on a mat")

    assert hits[0]["id"] == "cat"
    assert hits[0]["score"] < 1.0


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


def test_top_k_limits_the_number_of_hits(animals, search):
    assert len(search(animals, query="the cat", top_k=2)) == 2
    assert len(search(animals, query="the cat", top_k=1)) == 1
    assert len(search(animals, query="the cat", top_k=1000)) == len(ANIMALS)


def test_top_k_defaults_to_ten(kb, add_documents, search):
    add_documents(kb, *({"text": f"note number {i}"} for i in range(15)))

    assert len(search(kb, query="note number")) == 10


def test_min_score_drops_hits_below_the_threshold_and_keeps_the_rest(animals, search):
    everything = search(animals, query="the cat sat on the cold floor", top_k=1000)
    threshold = (everything[1]["score"] + everything[2]["score"]) / 2

    kept = search(animals, query="the cat sat on the cold floor", top_k=1000, min_score=threshold)

    assert kept == everything[:2]
    assert all(hit["score"] >= threshold for hit in kept)


def test_min_score_of_one_keeps_only_identical_text(animals, search):
    hits = search(animals, query="an owl hoots at night in the forest", min_score=0.9999)

    assert [hit["id"] for hit in hits] == ["owl"]


def test_searching_an_empty_knowledge_base_returns_no_hits(kb, search):
    assert search(kb, query="anything at all") == []


def test_search_by_document_id_excludes_the_document_itself(animals, search):
    hits = search(animals, document_id="cat", top_k=1000)

    ids = [hit["id"] for hit in hits]
    assert "cat" not in ids
    assert ids[0] == "dog"
    assert len(ids) == len(ANIMALS) - 1


def test_search_by_document_id_ranks_like_searching_its_text(animals, search):
    by_id = search(animals, document_id="fox", top_k=1000)
    by_text = search(animals, query="a quick brown fox jumps over fences", top_k=1000)

    assert by_id == [hit for hit in by_text if hit["id"] != "fox"]


def test_search_by_document_id_respects_top_k(animals, search):
    assert len(search(animals, document_id="owl", top_k=2)) == 2


def test_search_by_the_only_documents_id_returns_no_hits(kb, add_documents, search):
    add_documents(kb, {"id": "alone", "text": "nobody else here"})

    assert search(kb, document_id="alone") == []


def test_search_by_vector_finds_the_document_with_that_embedding(animals, search):
    vector = FakeEmbedder().embed(["an owl hoots at night in the forest"])[0]

    hits = search(animals, vector=[float(x) for x in vector], top_k=1)

    assert hits[0]["id"] == "owl"
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-5)


def test_search_by_vector_normalises_the_vector_first(animals, search):
    vector = FakeEmbedder().embed(["a quick brown fox"])[0]

    plain = search(animals, vector=[float(x) for x in vector], top_k=1000)
    scaled = search(animals, vector=[float(x) * 7.5 for x in vector], top_k=1000)

    assert [hit["id"] for hit in scaled] == [hit["id"] for hit in plain]
    for a, b in zip(scaled, plain):
        assert a["score"] == pytest.approx(b["score"], abs=1e-5)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_a_vector_with_huge_components_is_normalised_not_refused(animals, search):
    vector = FakeEmbedder().embed(["a quick brown fox"])[0]

    plain = search(animals, vector=[float(x) for x in vector], top_k=1000)
    huge = search(animals, vector=[float(x) * 1e300 for x in vector], top_k=1000)

    assert [hit["id"] for hit in huge] == [hit["id"] for hit in plain]


def test_a_removed_document_never_comes_back_in_search(client, animals, search):
    client.delete(f"/v1/knowledge-bases/{animals}/documents/cat")
    client.post(f"/v1/knowledge-bases/{animals}/documents/delete", json={"ids": ["owl"]})

    for query in ("the cat sat on the warm mat", "an owl hoots at night in the forest"):
        ids = [hit["id"] for hit in search(animals, query=query, top_k=1000)]
        assert "cat" not in ids and "owl" not in ids
        assert sorted(ids) == ["dog", "eel", "fox"]
    assert all(hit["id"] != "cat" for hit in search(animals, document_id="dog", top_k=1000))


def test_a_replaced_text_no_longer_matches_the_old_text(client, animals, search):
    client.put(f"/v1/knowledge-bases/{animals}/documents/cat", json={"text": "zebras graze"})

    hits = search(animals, query="the cat sat on the warm mat", top_k=1000)

    assert len(hits) == len(ANIMALS)
    cat = next(hit for hit in hits if hit["id"] == "cat")
    assert cat["score"] < 0.9
    assert cat["text"] == "zebras graze"
    assert search(animals, query="zebras graze", top_k=1)[0]["id"] == "cat"


def test_ids_are_never_confused_after_many_adds_and_removes(client, kb, add_documents, search):
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(30)]
    expected: dict[str, str] = {}
    serial = 0
    for _ in range(12):
        batch = []
        for _ in range(rng.randint(3, 8)):
            serial += 1
            words = rng.sample(vocabulary, rng.randint(2, 6))
            batch.append({"id": f"doc{serial}", "text": " ".join([f"u{serial}", *words])})
        add_documents(kb, *batch)
        expected.update({doc["id"]: doc["text"] for doc in batch})
        doomed = rng.sample(sorted(expected), rng.randint(1, 4))
        client.post(f"/v1/knowledge-bases/{kb}/documents/delete", json={"ids": doomed})
        for doc_id in doomed:
            del expected[doc_id]
        if expected:
            changed = rng.choice(sorted(expected))
            expected[changed] = " ".join([f"v{serial}", *rng.sample(vocabulary, 4)])
            client.put(
                f"/v1/knowledge-bases/{kb}/documents/{changed}", json={"text": expected[changed]}
            )

    ids = sorted(expected)
    texts = [expected[doc_id] for doc_id in ids]
    for query in ["w1 w2 w3", "w10 w20", "w5 w6 w7 w8 w9", *rng.sample(texts, 3)]:
        brute = dict(zip(ids, cosine_scores(query, texts)))
        hits = search(kb, query=query, top_k=5)
        assert len(hits) == 5
        assert len({hit["id"] for hit in hits}) == 5
        for hit in hits:
            assert hit["text"] == expected[hit["id"]]
            assert hit["score"] == pytest.approx(brute[hit["id"]], abs=1e-5)
        fifth_best = sorted(brute.values(), reverse=True)[4]
        assert hits[-1]["score"] >= fifth_best - 1e-5
    for doc_id, text in expected.items():
        first = search(kb, query=text, top_k=1)[0]
        assert first["id"] == doc_id
        assert first["score"] == pytest.approx(1.0, abs=1e-5)
    assert len(search(kb, query="w1", top_k=1000)) == len(expected)


def cosine_scores(query: str, texts: list[str]) -> list[float]:
    vectors = FakeEmbedder().embed([query, *texts])
    return [float(score) for score in vectors[1:] @ vectors[0]]


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


def test_a_long_text_counts_once_with_its_best_chunk(kb, add_documents, search):
    add_documents(kb, {"id": "long", "text": numbered_words(0, 60)}, {"text": "word1 other"})

    hits = search(kb, query="word1 word2 word50", top_k=1000)

    assert sorted(hit["id"] for hit in hits).count("long") == 1
    assert len(hits) == 2


def test_a_passage_always_lies_inside_its_document(kb, add_documents, search):
    text = "Intro line.\n\n" + ", ".join(f"item{i}" for i in range(45)) + ". The end!"
    add_documents(kb, {"id": "punctuated", "text": text})

    for query in ("Intro line", "item20 item21 item22", "The end!"):
        (hit,) = search(kb, query=query, top_k=1)
        start, end = hit["passage"]["start"], hit["passage"]["end"]
        assert 0 <= start < end <= len(text)
        assert text[start:end] == hit["passage"]["text"]
        assert any(word in hit["passage"]["text"] for word in query.split())


def test_a_long_query_is_embedded_whole_and_still_finds_its_document(kb, add_documents, search):
    text = numbered_words(0, 40)
    add_documents(kb, {"id": "long", "text": text}, {"id": "other", "text": "unrelated words"})

    hits = search(kb, query=text, top_k=1000)

    assert hits[0]["id"] == "long"
    assert all(-1.0 <= hit["score"] <= 1.0 for hit in hits)
    assert hits[0]["score"] > hits[1]["score"]


def test_search_by_a_long_documents_id_finds_its_neighbours(kb, add_documents, search):
    add_documents(
        kb,
        {"id": "long", "text": numbered_words(0, 40)},
        {"id": "near", "text": numbered_words(10, 20)},
        {"id": "far", "text": "nothing in common"},
    )

    hits = search(kb, document_id="long", top_k=1000)

    assert [hit["id"] for hit in hits] == ["near", "far"]


def test_scores_are_stable_float_cosines(animals, search):
    first = search(animals, query="cold night", top_k=1000)
    second = search(animals, query="cold night", top_k=1000)

    assert first == second
    assert np.isfinite([hit["score"] for hit in first]).all()
