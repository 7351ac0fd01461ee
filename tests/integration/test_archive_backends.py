"""Exports on the real stacks: FAISS + SQLite memory backend and PostgreSQL with pgvector."""

import io
import threading
import time

import numpy as np
import pytest

from domain import NewDocument, SearchRequest, read_archive

pytestmark = pytest.mark.both_backends

LONG = " ".join(f"word{i}" for i in range(40))


@pytest.fixture
def service(make_container, make_app):
    container = make_container()
    make_app(container=container)  # closed and unwired after the test
    return container.service()


def read(spooled):
    manifest, entries = read_archive(io.BytesIO(b"".join(spooled.blocks())))
    return manifest, list(entries)


def test_an_export_holds_the_stored_vectors_of_every_chunk(service, fake_embedder, backend):
    service.create_knowledge_base("kb", metadata={"backend": backend})
    service.add_documents(
        "kb",
        [
            NewDocument(LONG, id="long", metadata={"n": 1.5, "tags": ["a", 2]}),
            NewDocument("a short text", id="short"),
        ],
    )
    manifest, entries = read(service.export_archive("kb"))
    assert manifest.knowledge_base == service.get_knowledge_base("kb").knowledge_base
    assert [d.id for d, _ in entries] == ["long", "short"]
    for document, vectors in entries:
        stored = service.get_document("kb", document.id)
        assert (document.metadata, document.updated_at) == (stored.metadata, stored.updated_at)
        assert [c.span for c in document.chunks] == [c.span for c in stored.chunks]
        pieces = [document.text[c.span.start : c.span.end] for c in document.chunks]
        np.testing.assert_allclose(vectors, fake_embedder.embed(pieces), atol=1e-6)
        hit = service.search("kb", SearchRequest(vector=vectors[0].tolist(), top_k=1))[0]
        assert hit.id == document.id
        assert hit.score == pytest.approx(1.0, abs=1e-5)


def test_an_export_while_clients_write_is_one_whole_state(service):
    service.create_knowledge_base("kb")
    service.add_documents("kb", [NewDocument(f"{LONG} {i}", id=f"seed{i:03d}") for i in range(50)])
    stop = threading.Event()
    written = []

    def write(worker):
        number = 0
        while not stop.is_set():
            doc_id = f"w{worker}-{number:05d}"
            service.add_documents("kb", [NewDocument(f"{LONG} {doc_id}", id=doc_id)])
            service.delete_documents("kb", [f"seed{(worker * 7 + number) % 50:03d}"])
            number += 1
            written.append(doc_id)  # back to back: the phase-fair lock still lets exports in

    writers = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for writer in writers:
        writer.start()
    try:
        while len(written) < 8:
            time.sleep(0.01)
        archives, before = [], len(written)
        while len(written) < before + 16 or len(archives) < 3:  # exports while clients write
            archives.append(read(service.export_archive("kb")))
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    for manifest, entries in archives:  # the reader also checked every count and checksum
        assert manifest.document_count == len(entries)
        assert manifest.chunk_count == sum(len(d.chunks) for d, _ in entries)
        for document, vectors in entries:
            assert len(vectors) == len(document.chunks) > 1  # every document whole
