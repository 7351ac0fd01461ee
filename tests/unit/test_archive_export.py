"""Exporting a knowledge base: every document whole, with its stored vectors, from one state."""

import io
import threading

import numpy as np
import pytest

from domain import KnowledgeBaseNotFoundError, NewDocument, read_archive
from domain.archives import EXPORT_PAGE
from domain.ports import by_dimension
from domain.services import KnowledgeBaseService
from fakes import FakeDocumentRepository, FakeEmbedder, FakeVectorIndex

LONG = " ".join(f"word{i}" for i in range(40))  # several chunks with the fixtures' window of 16


def read(spooled):
    manifest, entries = read_archive(io.BytesIO(b"".join(spooled.blocks())))
    return manifest, list(entries)


def test_an_export_holds_every_document_with_its_spans_and_stored_vectors(service, repository, kb):
    docs = [NewDocument(LONG, id="long", metadata={"n": 1}), NewDocument("short one", id="s")]
    service.add_documents(kb, docs)
    manifest, entries = read(service.export_archive(kb))
    info = service.get_knowledge_base(kb)
    assert manifest.knowledge_base == info.knowledge_base
    assert (manifest.document_count, manifest.chunk_count) == (2, info.stats.chunk_count)
    assert info.stats.chunk_count > 2
    for document, vectors in entries:
        stored = service.get_document(kb, document.id)
        assert (document.text, document.metadata) == (stored.text, stored.metadata)
        assert (document.created_at, document.updated_at) == (stored.created_at, stored.updated_at)
        assert [c.span for c in document.chunks] == [c.span for c in stored.chunks]
        kept = np.vstack([repository.vectors[kb][c.id] for c in stored.chunks])
        assert vectors.tobytes() == kept.tobytes()


def test_an_export_pages_through_many_documents_in_id_order(service, kb):
    count = EXPORT_PAGE + 7
    service.add_documents(kb, [NewDocument(f"text {i}", id=f"d{i:04d}") for i in range(count)])
    _, entries = read(service.export_archive(kb))
    assert [d.id for d, _ in entries] == [f"d{i:04d}" for i in range(count)]


def test_an_empty_knowledge_base_exports(service, kb):
    spooled = service.export_archive(kb)
    data = b"".join(spooled.blocks())
    assert len(data) == spooled.size
    assert read_archive(io.BytesIO(data))[0].document_count == 0


def test_a_knowledge_base_of_another_model_still_exports(repository):
    old = KnowledgeBaseService(
        FakeEmbedder(model_name="old"), repository, by_dimension(FakeVectorIndex)
    )
    old.create_knowledge_base("kb")
    old.add_documents("kb", [NewDocument("kept text", id="a")])
    new = KnowledgeBaseService(
        FakeEmbedder(model_name="new"), repository, by_dimension(FakeVectorIndex)
    )
    new.load()
    manifest, entries = read(new.export_archive("kb"))
    assert manifest.knowledge_base.model == "old"
    assert [d.id for d, _ in entries] == ["a"]


def test_exporting_an_unknown_knowledge_base_is_not_found(service):
    with pytest.raises(KnowledgeBaseNotFoundError):
        service.export_archive("nope")


class PausingRepository(FakeDocumentRepository):
    """Lets a test act while an export is half-way through its pages."""

    def __init__(self):
        super().__init__()
        self.on_page = lambda: None

    def list_documents(self, kb, limit, after=None, where=None):
        page = super().list_documents(kb, limit, after, where)
        if after is not None:
            self.on_page()
        return page


def test_a_write_during_an_export_waits_so_the_archive_is_one_state():
    repository = PausingRepository()
    service = KnowledgeBaseService(FakeEmbedder(), repository, by_dimension(FakeVectorIndex))
    service.create_knowledge_base("kb")
    service.add_documents("kb", [NewDocument(f"text {i}", id=f"d{i:04d}") for i in range(600)])
    writer = threading.Thread(
        target=lambda: service.delete_documents("kb", [f"d{i:04d}" for i in range(600)])
    )

    def write_meanwhile():
        repository.on_page = lambda: None
        writer.start()
        writer.join(0.3)
        assert writer.is_alive()  # held off until the data is spooled

    repository.on_page = write_meanwhile
    spooled = service.export_archive("kb")
    writer.join(5)
    assert not writer.is_alive()
    assert service.list_documents("kb").items == []
    manifest, entries = read(spooled)
    assert manifest.document_count == len(entries) == 600
