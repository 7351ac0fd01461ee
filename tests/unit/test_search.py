"""Search behaviour on the service with fakes: ranking, top_k, min_score, more like this,
raw vectors, long texts and their passages, and hits after deletes and replacements.

These moved here from tests/integration/test_search_api.py, which keeps one HTTP path per feature.
"""

import random

import numpy as np
import pytest

from domain import NewDocument, SearchRequest
from fakes import FakeEmbedder

ANIMALS = {
    "cat": ("the cat sat on the warm mat", {"kind": "pet"}),
    "dog": ("the dog sat on the cold floor", {"kind": "pet"}),
    "fox": ("a quick brown fox jumps over fences", {"kind": "wild"}),
    "owl": ("an owl hoots at night in the forest", {"kind": "wild"}),
    "eel": ("electric eels live in muddy rivers", {"kind": "wild"}),
}


@pytest.fixture
def animals(service, kb):
    documents = [NewDocument(text, id=i, metadata=meta) for i, (text, meta) in ANIMALS.items()]
    service.add_documents(kb, documents)
    return kb


def ids(hits):
    return [hit.id for hit in hits]


def cosines(query, texts):
    vectors = FakeEmbedder().embed([query, *texts])
    return [float(score) for score in vectors[1:] @ vectors[0]]


def numbered_words(start, stop):
    return " ".join(f"word{i}" for i in range(start, stop))


def test_every_score_is_the_cosine_of_query_and_document_best_first(service, animals):
    query = "the dog sat in the forest"
    hits = service.search(animals, SearchRequest(query=query, top_k=5))
    truth = dict(zip(ANIMALS, cosines(query, [text for text, _ in ANIMALS.values()])))
    assert ids(hits) == sorted(truth, key=truth.get, reverse=True)
    assert [hit.score for hit in hits] == pytest.approx([truth[i] for i in ids(hits)], abs=1e-5)


def test_top_k_caps_the_hits_and_a_larger_top_k_returns_every_document(service, animals):
    for top_k, expected in [(1, 1), (2, 2), (1000, len(ANIMALS))]:
        assert len(service.search(animals, SearchRequest(query="the cat", top_k=top_k))) == expected


def test_min_score_keeps_exactly_the_hits_at_or_above_the_threshold(service, animals):
    query = "the cat sat on the cold floor"
    everything = service.search(animals, SearchRequest(query=query, top_k=1000))
    threshold = (everything[1].score + everything[2].score) / 2
    kept = service.search(animals, SearchRequest(query=query, top_k=1000, min_score=threshold))
    assert kept == everything[:2]


def test_searching_an_empty_knowledge_base_returns_no_hits(service, kb):
    assert service.search(kb, SearchRequest(query="anything at all")) == []


def test_more_like_this_ranks_like_searching_the_documents_text_without_it(service, animals):
    text = ANIMALS["fox"][0]
    by_text = service.search(animals, SearchRequest(query=text, top_k=1000))
    by_id = service.search(animals, SearchRequest(document_id="fox", top_k=1000))
    assert by_id == [hit for hit in by_text if hit.id != "fox"]
    assert len(service.search(animals, SearchRequest(document_id="owl", top_k=2))) == 2


def test_more_like_the_only_document_returns_no_hits(service, kb):
    service.add_documents(kb, [NewDocument("nobody else here", id="alone")])
    assert service.search(kb, SearchRequest(document_id="alone")) == []


@pytest.mark.parametrize("scale", [7.5, 1e300])
def test_a_scaled_vector_ranks_and_scores_like_the_unit_vector(service, animals, scale):
    vector = [float(x) for x in FakeEmbedder().embed(["a quick brown fox"])[0]]
    plain = service.search(animals, SearchRequest(vector=vector, top_k=1000))
    scaled = service.search(animals, SearchRequest(vector=[x * scale for x in vector], top_k=1000))
    assert ids(scaled) == ids(plain)
    assert [hit.score for hit in scaled] == pytest.approx([hit.score for hit in plain], abs=1e-5)


def test_removed_documents_never_come_back_by_query_or_more_like_this(service, animals):
    service.delete_document(animals, "cat")
    service.delete_documents(animals, ["owl"])
    for query in (ANIMALS["cat"][0], ANIMALS["owl"][0]):
        hits = service.search(animals, SearchRequest(query=query, top_k=1000))
        assert sorted(ids(hits)) == ["dog", "eel", "fox"]
    assert "cat" not in ids(service.search(animals, SearchRequest(document_id="dog", top_k=9)))


def test_a_replaced_text_no_longer_matches_the_old_text(service, animals):
    service.upsert_document(animals, "cat", "zebras graze")
    hits = service.search(animals, SearchRequest(query=ANIMALS["cat"][0], top_k=1000))
    cat = next(hit for hit in hits if hit.id == "cat")
    assert len(hits) == len(ANIMALS) and cat.score < 0.9 and cat.text == "zebras graze"
    assert ids(service.search(animals, SearchRequest(query="zebras graze", top_k=1))) == ["cat"]


def test_ids_are_never_confused_after_many_adds_removes_and_replacements(service, kb):
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(30)]
    expected: dict[str, str] = {}
    for round_ in range(12):
        batch = {
            f"doc{round_}-{n}": " ".join([f"u{round_}-{n}", *rng.sample(vocabulary, 4)])
            for n in range(rng.randint(3, 8))
        }
        service.add_documents(kb, [NewDocument(text, id=i) for i, text in batch.items()])
        expected.update(batch)
        doomed = rng.sample(sorted(expected), rng.randint(1, 4))
        service.delete_documents(kb, doomed)
        for doc_id in doomed:
            del expected[doc_id]
        changed = rng.choice(sorted(expected))
        expected[changed] = " ".join([f"v{round_}", *rng.sample(vocabulary, 4)])
        service.upsert_document(kb, changed, expected[changed])

    truth = dict(zip(expected, cosines("w1 w2 w3", list(expected.values()))))
    hits = service.search(kb, SearchRequest(query="w1 w2 w3", top_k=5))
    assert [hit.text for hit in hits] == [expected[hit.id] for hit in hits]
    assert [hit.score for hit in hits] == pytest.approx(sorted(truth.values())[-5:][::-1], abs=1e-5)
    for doc_id, text in expected.items():
        (first,) = service.search(kb, SearchRequest(query=text, top_k=1))
        assert first.id == doc_id and first.score == pytest.approx(1.0, abs=1e-5)


def test_a_long_text_counts_once_with_its_best_chunk(service, kb):
    service.add_documents(
        kb, [NewDocument(numbered_words(0, 60), id="long"), NewDocument("word1 other", id="x")]
    )
    hits = service.search(kb, SearchRequest(query="word1 word2 word50", top_k=1000))
    assert sorted(ids(hits)) == ["long", "x"]
    text = numbered_words(0, 60)
    chunks = [text[c.span.start : c.span.end] for c in service.get_document(kb, "long").chunks]
    best = max(zip(cosines("word1 word2 word50", chunks), chunks))
    long = next(hit for hit in hits if hit.id == "long")
    assert (long.score, long.passage.text) == (pytest.approx(best[0], abs=1e-5), best[1])


def test_a_passage_always_lies_inside_its_document(service, kb):
    text = "Intro line.\n\n" + ", ".join(f"item{i}" for i in range(45)) + ". The end!"
    service.add_documents(kb, [NewDocument(text, id="punctuated")])
    for query in ("Intro line", "item20 item21 item22", "The end!"):
        (hit,) = service.search(kb, SearchRequest(query=query, top_k=1))
        assert 0 <= hit.passage.start < hit.passage.end <= len(text)
        assert text[hit.passage.start : hit.passage.end] == hit.passage.text
        assert any(word in hit.passage.text for word in query.split())


def test_a_long_query_is_embedded_whole_and_finds_its_document_first(service, kb):
    text = numbered_words(0, 40)
    service.add_documents(
        kb, [NewDocument(text, id="long"), NewDocument("unrelated words", id="other")]
    )
    hits = service.search(kb, SearchRequest(query=text, top_k=1000))
    assert ids(hits) == ["long", "other"] and hits[0].score > hits[1].score
    assert all(-1.0 <= hit.score <= 1.0 for hit in hits)


def test_more_like_a_long_document_finds_its_neighbours_nearest_first(service, kb):
    service.add_documents(
        kb,
        [
            NewDocument(numbered_words(0, 40), id="long"),
            NewDocument(numbered_words(10, 20), id="near"),
            NewDocument("nothing in common", id="far"),
        ],
    )
    assert ids(service.search(kb, SearchRequest(document_id="long", top_k=1000))) == [
        "near",
        "far",
    ]


def test_the_same_search_twice_gives_the_same_finite_scores(service, animals):
    first = service.search(animals, SearchRequest(query="cold night", top_k=1000))
    assert service.search(animals, SearchRequest(query="cold night", top_k=1000)) == first
    assert np.isfinite([hit.score for hit in first]).all()


def test_exact_search_ranks_a_small_knowledge_base_like_the_default(service, animals):
    plain = service.search(animals, SearchRequest(query="sturdy cold mat", top_k=1000))
    exact = service.search(animals, SearchRequest(query="sturdy cold mat", top_k=1000, exact=True))
    assert [(h.id, h.score) for h in exact] == [(h.id, h.score) for h in plain]
