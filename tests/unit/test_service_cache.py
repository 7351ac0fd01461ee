"""The service over a cached embedder: the same text is never embedded twice, across requests
and knowledge bases, and nothing a user sees changes."""

import numpy as np
import pytest

from adapters.embedding.caching import CachingEmbedder
from adapters.embedding.vector_cache import VectorCache
from domain import KnowledgeBaseService, NewDocument, SearchRequest
from fakes import FakeDocumentRepository, FakeEmbedder, FakeKeywordIndex, FakeVectorIndex

WORDS = [
    "apple",
    "river",
    "tax",
    "owl",
    "fox",
    "stone",
    "cloud",
    "paper",
    "music",
    "garden",
    "engine",
    "salt",
    "bread",
    "iron",
]


def paragraph(seed: int, words: int = 30) -> str:
    return " ".join(WORDS[(seed * 7 + n * (seed % 5 + 1)) % len(WORDS)] for n in range(words))


DOCUMENTS = [f"short document {n} about {WORDS[n % len(WORDS)]}" for n in range(20)]
LONG = "\n\n".join(paragraph(seed) for seed in range(8))


class RecordingIndex(FakeVectorIndex):
    """Keeps every row added, in order, to compare knowledge bases' stored vectors bit for bit."""

    def __init__(self, dimension):
        super().__init__(dimension)
        self.added: list[bytes] = []

    def add(self, labels, vectors):
        super().add(labels, vectors)
        self.added += [row.tobytes() for row in np.asarray(vectors, np.float32)]


class NoisyEmbedder(FakeEmbedder):
    """Like a real model, a text's last bits depend on the batch it went in (padding, kernels)."""

    def embed(self, texts):
        rows = super().embed(texts)
        return (rows * np.float32(1 + 1e-6 * len(texts))).astype(np.float32)


def make_service(model, cache_bytes=2**20, indexes=None):
    embedder = CachingEmbedder(model, VectorCache(cache_bytes)) if cache_bytes else model

    def index(kb):
        made = RecordingIndex(kb.dimension)
        if indexes is not None:
            indexes.append(made)
        return made

    return KnowledgeBaseService(
        embedder, FakeDocumentRepository(), index, lambda kb: FakeKeywordIndex()
    )


def import_into(service, name, texts):
    service.create_knowledge_base(name)
    service.add_documents(name, [NewDocument(text, id=f"d{n}") for n, text in enumerate(texts)])


def test_importing_the_same_documents_into_a_second_knowledge_base_calls_the_model_0_times():
    model = FakeEmbedder(dimension=32, window=16)
    service = make_service(model)
    import_into(service, "first", [*DOCUMENTS, LONG])
    calls = len(model.calls)
    assert calls == 1
    import_into(service, "second", [*DOCUMENTS, LONG])
    service.upsert_document("second", "d3", DOCUMENTS[3])  # the same text again
    assert len(model.calls) == calls


def import_twice(service):
    """The same documents into two knowledge bases, the second time in other batches."""
    import_into(service, "first", [*DOCUMENTS, LONG])
    service.create_knowledge_base("second")
    service.add_documents("second", [NewDocument(LONG, id="long")])
    service.add_documents("second", [NewDocument(text) for text in DOCUMENTS[::-1]])


def test_a_cache_hit_stores_exactly_the_bits_the_model_produced():
    indexes: list[RecordingIndex] = []
    import_twice(make_service(NoisyEmbedder(dimension=32, window=16), indexes=indexes))
    first, second = indexes
    assert sorted(first.added) == sorted(second.added)
    # Without the cache the same texts in other batches come out with other last bits.
    uncached: list[RecordingIndex] = []
    import_twice(make_service(NoisyEmbedder(dimension=32, window=16), 0, uncached))
    assert sorted(uncached[0].added) != sorted(uncached[1].added)


def scenario(service):
    """Adds, an upsert, a delete and searches of every kind; returns every hit in full."""
    import_into(service, "kb", [*DOCUMENTS, LONG, LONG + " coda"])
    service.upsert_document("kb", "d2", "apple river tax and a new ending")
    service.delete_document("kb", "d5")
    import_into(service, "copy", [*DOCUMENTS[:10], LONG])
    queries = [
        SearchRequest(query="apple river"),
        SearchRequest(query="apple river"),
        SearchRequest(query=DOCUMENTS[4]),
        SearchRequest(query=LONG),
        SearchRequest(document_id="d1"),
        SearchRequest(query="owl fox", mode="hybrid", top_k=3),
        SearchRequest(query="stone cloud", diversity=0.5),
    ]
    hits = [service.search(name, query) for name in ("kb", "copy") for query in queries]
    return hits + service.search_many("kb", queries)


def test_every_result_is_the_same_with_and_without_the_cache():
    with_cache = scenario(make_service(FakeEmbedder(dimension=32, window=16)))
    without = scenario(make_service(FakeEmbedder(dimension=32, window=16), cache_bytes=0))
    assert with_cache == without
    assert all(hits for hits in with_cache)


def test_a_repeated_query_is_embedded_once():
    model = FakeEmbedder(dimension=32, window=16)
    service = make_service(model)
    import_into(service, "kb", DOCUMENTS)
    model.calls.clear()
    first = service.search("kb", SearchRequest(query="apple river stone"))
    second = service.search("kb", SearchRequest(query="apple river stone"))
    assert model.calls == [["apple river stone"]]
    assert first == second


@pytest.mark.parametrize(("old", "new"), [("music", "bread"), ("music", "music box lid")])
def test_an_upsert_re_embeds_only_the_windows_whose_text_changed(old, new):
    model = FakeEmbedder(dimension=32, window=16)
    service = make_service(model)
    import_into(service, "kb", [LONG])
    paragraphs = LONG.split("\n\n")
    at = paragraphs[5].index(old)
    paragraphs[5] = paragraphs[5][:at] + new + paragraphs[5][at + len(old) :]
    model.calls.clear()
    document, _ = service.upsert_document("kb", "d0", "\n\n".join(paragraphs))
    (texts,) = model.calls
    changed = sum(len(p) + 2 for p in paragraphs[:5]) + at  # where the edit starts
    starting_after = [c for c in document.chunks if c.span.end > changed]
    assert 0 < len(texts) <= len(starting_after) < len(document.chunks)
    if len(old) == len(new):  # same length: the windows past the edit are the same texts
        assert len(texts) <= 2
