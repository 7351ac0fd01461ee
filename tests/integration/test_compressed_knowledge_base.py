"""A knowledge base on the memory backend's SQLite file crosses into SQ8 codes and back, and
restarts compressed: the service answers as an uncompressed twin does, to 1e-6."""

from __future__ import annotations

import functools
import random
from pathlib import Path

import numpy as np
import pytest

from adapters.faiss.index import FaissVectorIndex
from adapters.memory.repository import InMemoryDocumentRepository
from adapters.sqlite.repository import SqliteDocumentRepository
from adapters.sqlite.vectors import SqliteVectorStore
from contracts import kept_vectors_of
from domain.model import NewDocument
from domain.ports import by_dimension
from domain.search_request import SearchRequest
from domain.services import KnowledgeBaseService
from fakes import FakeEmbedder

ANN, COMPRESS = 40, 150
WORDS = [f"w{i}" for i in range(80)]


def text(number: int) -> str:
    return " ".join(random.Random(number).sample(WORDS, 6))  # distinct texts: no ties


def documents(first: int, count: int) -> list[NewDocument]:
    return [NewDocument(text=text(n), id=f"d{n}") for n in range(first, first + count)]


class Stack:
    """A service over a SQLite file, its vector store and FAISS indexes that compress."""

    def __init__(self, path: Path) -> None:
        self.repository = SqliteDocumentRepository(path)
        self.store = SqliteVectorStore(path)
        self.indexes: list[FaissVectorIndex] = []
        self.service = KnowledgeBaseService(
            FakeEmbedder(), self.repository, by_dimension(self.make)
        )

    def make(self, dimension: int) -> FaissVectorIndex:
        index = FaissVectorIndex(dimension, ANN, COMPRESS, store=self.store)
        self.indexes.append(index)
        return index

    def settled(self) -> FaissVectorIndex:
        assert self.indexes[-1].wait_for_rebuild(timeout=20)
        return self.indexes[-1]

    def close(self) -> None:
        self.store.close()
        self.repository.close()


def twin() -> KnowledgeBaseService:
    make = functools.partial(FaissVectorIndex, ann_threshold=ANN)
    return KnowledgeBaseService(FakeEmbedder(), InMemoryDocumentRepository(), by_dimension(make))


REQUESTS = [
    SearchRequest(query=text(3), top_k=5),
    SearchRequest(query="w1 w2 w3 w40 w41", top_k=8),
    SearchRequest(document_id="d35", top_k=5),  # more like this: reads d5's vectors back
    SearchRequest(query=text(41), top_k=5, filter={"n": {"$lt": 60}}),
]


def answers(service: KnowledgeBaseService) -> list[list[tuple[str, float]]]:
    return [[(hit.id, hit.score) for hit in service.search("kb", r)] for r in REQUESTS]


def assert_same(got, wanted) -> None:
    for mine, theirs in zip(got, wanted):
        assert [i for i, _ in mine] == [i for i, _ in theirs]
        assert np.allclose([s for _, s in mine], [s for _, s in theirs], rtol=0, atol=1e-6)


def add(services, first: int, count: int) -> None:
    batch = documents(first, count)
    for doc in batch:
        doc.metadata["n"] = int(doc.id[1:])
    for service in services:
        service.add_documents("kb", batch)


@pytest.fixture
def stack(tmp_path):
    made = Stack(tmp_path / "kb.sqlite3")
    made.service.create_knowledge_base("kb")
    yield made
    made.close()


def test_searches_answer_the_same_across_the_compression_threshold(stack):
    plain = twin()
    plain.create_knowledge_base("kb")
    add([stack.service, plain], 0, 120)
    assert stack.settled().approximate and not stack.indexes[-1].compressed
    assert_same(answers(stack.service), answers(plain))
    add([stack.service, plain], 120, 80)  # 200 chunks: past 150
    assert stack.settled().compressed
    assert stack.service.get_knowledge_base("kb").index.kind == "ivf-sq8"
    assert_same(answers(stack.service), answers(plain))
    for service in (stack.service, plain):
        service.upsert_document("kb", "d3", "w1 w2 w3 w40 w41 changed", {"n": 3})
        service.delete_documents("kb", [f"d{n}" for n in range(100, 130)])  # 170: compressed
    assert stack.settled().compressed
    assert_same(answers(stack.service), answers(plain))
    for service in (stack.service, plain):
        service.delete_documents("kb", [f"d{n}" for n in range(130, 200)])  # 100
        service.delete_documents("kb", [f"d{n}" for n in range(0, 30)])  # 70: below half
    index = stack.settled()
    assert index.approximate and not index.compressed
    assert stack.service.get_knowledge_base("kb").index.kind == "ivf"
    assert_same(answers(stack.service), answers(plain))


def test_a_compressed_knowledge_base_restarts_compressed_with_the_same_answers(tmp_path, stack):
    add([stack.service], 0, 300)
    assert stack.settled().compressed
    before = answers(stack.service)
    stack.close()
    again = Stack(tmp_path / "kb.sqlite3")
    try:
        assert again.service.load() == 1
        index = again.settled()
        assert index.compressed and not index.rebuilding and len(index) == 300
        assert_same(answers(again.service), before)
        assert again.service.search("kb", SearchRequest(query=text(42), top_k=1))[0].score == (
            pytest.approx(1.0, abs=1e-6)
        )
    finally:
        again.close()


def test_the_vector_store_reads_committed_vectors_in_the_order_asked(stack):
    add([stack.service], 0, 3)
    labels = [doc.chunks[0].id for doc in stack.repository.list_documents("kb", 10)]
    stored = kept_vectors_of(stack.repository, "kb")
    assert stored is not None
    by_label = dict(zip(stored[0].tolist(), stored[1]))
    asked = np.array([labels[2], 999_999, labels[0]], dtype=np.int64)
    present, vectors = stack.store.read(asked)
    assert present.tolist() == [labels[2], labels[0]]
    assert np.array_equal(vectors, np.stack([by_label[labels[2]], by_label[labels[0]]]))
    stack.service.delete_document("kb", stack.repository.list_documents("kb", 10)[0].id)
    assert len(stack.store.read(np.array(labels, dtype=np.int64))[0]) == 2  # gone once deleted
