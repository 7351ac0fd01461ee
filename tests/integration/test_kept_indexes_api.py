"""Over HTTP on the memory backend: the vector index keeps a copy in KB_DATA_DIR/indexes, a
restart takes it back, and what the folder holds of knowledge bases that are gone is swept."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from test_compressed_api import TEXTS, searches, start, wait_for

from entrypoints.app import close_app

DOCUMENTS = [{"id": f"d{i}", "text": text} for i, text in enumerate(TEXTS)]


@pytest.fixture
def loads(monkeypatch):
    """The `labels` of every load of stored vectors (None: all of them)."""
    seen: list[object] = []
    from adapters.sqlite.repository import SqliteDocumentRepository

    original = SqliteDocumentRepository.load_vectors

    def load_vectors(self, kb, labels=None):
        seen.append(None if labels is None else len(labels))
        return original(self, kb, labels)

    monkeypatch.setattr(SqliteDocumentRepository, "load_vectors", load_vectors)
    return seen


def kept(data_dir, suffix: str):
    return sorted((data_dir / "indexes").glob(f"kb.*{suffix}"))


def test_a_restart_takes_back_the_vector_index_and_a_deletion_takes_its_copy(tmp_path, loads):
    data_dir = tmp_path / "data"
    app, client = start(str(data_dir))
    try:
        client.post("/v1/knowledge-bases", json={"name": "kb"})
        assert client.post(
            "/v1/knowledge-bases/kb/documents", json={"documents": DOCUMENTS}
        ).status_code == 201  # fmt: skip
        wait_for(client, "ivf-sq8")
        before = searches(client)
    finally:
        close_app(app)  # shutdown: the copy is written if anything changed since the build
    (copy,) = kept(data_dir, ".faiss")
    assert faiss.read_index(str(copy)).ntotal == len(TEXTS)

    app, client = start(str(data_dir))
    try:
        assert client.get("/v1/knowledge-bases/kb").get_json()["index"]["type"] == "ivf-sq8"
        assert loads == []  # nothing read from the file: the copy had it all
        for mine, theirs in zip(searches(client), before):
            assert [i for i, _ in mine] == [i for i, _ in theirs]
            assert np.allclose([s for _, s in mine], [s for _, s in theirs], rtol=0, atol=1e-6)
        assert client.delete("/v1/knowledge-bases/kb").status_code == 204
        assert kept(data_dir, ".faiss") == [] and kept(data_dir, ".fts") == []
    finally:
        close_app(app)


def test_a_start_sweeps_copies_of_gone_knowledge_bases_and_temporary_files(tmp_path):
    data_dir = tmp_path / "data"
    app, client = start(str(data_dir))
    try:
        client.post("/v1/knowledge-bases", json={"name": "kb"})
        client.post("/v1/knowledge-bases/kb/documents", json={"documents": DOCUMENTS})
        wait_for(client, "ivf-sq8")
    finally:
        close_app(app)
    folder = data_dir / "indexes"
    live = {p.name for p in folder.iterdir()}
    left = [
        "gone.1796493646601456.faiss",  # a knowledge base deleted while its copy was written
        "gone.1796493646601456.fts",
        "gone.1796493646601456.fts-wal",
        next(iter(kept(data_dir, ".faiss"))).name + ".tmp",  # a write a SIGKILL cut short
        "kb.123.faiss",  # "kb" under another creation instant: an earlier kb of that name
        "notes.txt",
    ]
    for name in left:
        (folder / name).write_bytes(b"left behind")
    app, client = start(str(data_dir))
    try:
        now = {p.name for p in folder.iterdir()}
        assert not now & set(left) and live <= now  # (+ the open keyword file's -wal, -shm)
        assert client.get("/v1/knowledge-bases/kb").get_json()["index"]["type"] == "ivf-sq8"
    finally:
        close_app(app)
