"""GET and POST /v1/knowledge-bases/{kb}/archive: back up, restore, move between backends."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from domain import read_archive
from entrypoints.app import close_app, create_app

LONG = " ".join(f"word{i}" for i in range(40))  # several chunks with the fake model's window
TOPICS = ["alpha", "beta", "gamma", "delta"]
SEARCHES: dict[str, dict[str, Any]] = {
    "dense": {"query": "alpha word3 topic", "top_k": 8},
    "filtered": {"query": "beta topic", "top_k": 8, "filter": {"group": {"$in": ["b", "c"]}}},
    "hybrid": {"query": "gamma word7", "top_k": 8, "mode": "hybrid"},
    "mmr": {"query": "delta topic word1", "top_k": 8, "diversity": 0.6},
    "more-like-this": {"document_id": "d05", "top_k": 8},
    "by-vector": {"vector": [((i * 7) % 5 - 2) / 10 for i in range(32)], "top_k": 8},
}


def documents(count: int = 24) -> list[dict[str, Any]]:
    return [
        {
            "id": f"d{i:02d}",
            # Long texts of words of their own: equal chunks would tie, and ties order freely.
            "text": f"{TOPICS[i % 4]} topic {i} "
            + (LONG.replace("word", f"w{i}x") if i % 3 == 0 else f"word{i} short"),
            "metadata": {"group": "abc"[i % 3], "n": i, "tags": [TOPICS[i % 4], i % 2 == 0]},
        }
        for i in range(count)
    ]


@contextmanager
def serving(make_container: Callable[..., Any], **settings: Any) -> Iterator[FlaskClient]:
    """One app at a time: wiring is process-global, so each is closed before the next."""
    app: Flask = create_app(container=make_container(**settings))
    app.config["TESTING"] = True
    try:
        yield app.test_client()
    finally:
        close_app(app)


def backup(client: FlaskClient, kb: str) -> bytes:
    response = client.get(f"/v1/knowledge-bases/{kb}/archive")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/x-tar"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{kb}.kbar"'
    data = response.get_data()
    assert int(response.headers["Content-Length"]) == len(data)
    return data


def finished(client: FlaskClient, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        body = client.get(location).get_json()
        if body["status"] in {"succeeded", "failed", "cancelled"}:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.01)


def post_archive(client: FlaskClient, kb: str, data: bytes, **query: Any) -> Any:
    return client.post(
        f"/v1/knowledge-bases/{kb}/archive",
        data=data,
        content_type="application/x-tar",
        query_string=query,
    )


def restore(client: FlaskClient, kb: str, data: bytes, **query: Any) -> dict[str, Any]:
    response = post_archive(client, kb, data, **query)
    assert response.status_code == 202, response.get_json()
    assert response.headers["Location"] == f"/v1/jobs/{response.get_json()['id']}"
    assert response.get_json()["kind"] == "restore"
    return finished(client, response.headers["Location"])


def results(client: FlaskClient, kb: str) -> dict[str, list[tuple[str, float]]]:
    found = {}
    for name, body in SEARCHES.items():
        response = client.post(f"/v1/knowledge-bases/{kb}/search", json=body)
        assert response.status_code == 200, (name, response.get_json())
        found[name] = [(hit["id"], hit["score"]) for hit in response.get_json()["hits"]]
    return found


def assert_same_results(got: dict[str, Any], expected: dict[str, Any]) -> None:
    for name, hits in expected.items():
        assert [i for i, _ in got[name]] == [i for i, _ in hits], (name, got[name], hits)
        assert np.allclose([s for _, s in got[name]], [s for _, s in hits], atol=1e-6), name


def contents(archive: bytes) -> tuple[Any, list[tuple[Any, np.ndarray]]]:
    manifest, entries = read_archive(io.BytesIO(archive))
    return manifest, list(entries)


def assert_same_archive(archive: bytes, original: bytes) -> None:
    """Same knowledge base, documents, timestamps, chunk spans (labels are each store's own)."""
    (manifest, entries), (first, expected) = contents(archive), contents(original)
    assert replace(manifest.knowledge_base, name="kb") == first.knowledge_base
    assert (manifest.document_count, manifest.chunk_count) == (
        first.document_count,
        first.chunk_count,
    )
    for (document, vectors), (was, was_vectors) in zip(entries, expected, strict=True):
        assert document == was  # the reader labels chunks by row, so spans and rows compare
        np.testing.assert_allclose(vectors, was_vectors, atol=1e-6)


def make_original(client: FlaskClient, kb: str = "kb") -> None:
    response = client.post(
        "/v1/knowledge-bases",
        json={"name": kb, "description": "the original", "metadata": {"team": "x"}},
    )
    assert response.status_code == 201
    for start in (0, 12):  # two batches, so updated_at and created_at differ between documents
        response = client.post(
            f"/v1/knowledge-bases/{kb}/documents",
            json={"documents": documents()[start : start + 12]},
        )
        assert response.status_code == 201, response.get_json()
    response = client.patch(
        f"/v1/knowledge-bases/{kb}/documents/d03", json={"metadata": {"new": 1}}
    )
    assert response.status_code == 200, response.get_json()


def test_memory_to_postgres_to_memory_keeps_documents_spans_and_every_search(
    make_container, fake_embedder
):
    with serving(make_container, backend="memory") as client:
        make_original(client)
        expected = results(client, "kb")
        original = backup(client, "kb")
        kb_body = client.get("/v1/knowledge-bases/kb").get_json()
    with serving(make_container, backend="postgres") as client:
        calls = len(fake_embedder.calls)
        assert restore(client, "kb", original)["status"] == "succeeded"
        assert len(fake_embedder.calls) == calls  # the stored vectors, nothing embedded
        restored = results(client, "kb")
        # Hybrid fuses with each backend's own keyword engine (SQLite FTS5 here, PostgreSQL's
        # text search there), which rank differently: there the reference is the same
        # documents written to PostgreSQL directly. Every other search matches the original.
        make_original(client, "native")
        assert_same_results(restored, {**expected, "hybrid": results(client, "native")["hybrid"]})
        moved = backup(client, "kb")
        body = client.get("/v1/knowledge-bases/kb").get_json()
        for key in ("description", "metadata", "created_at", "model", "document_count"):
            assert body[key] == kb_body[key], key
    assert_same_archive(moved, original)
    with serving(make_container, backend="memory") as client:
        calls = len(fake_embedder.calls)
        job = restore(client, "back", moved)
        assert (job["status"], job["done"], job["total"]) == ("succeeded", 24, 24)
        assert len(fake_embedder.calls) == calls
        assert_same_results(results(client, "back"), expected)
        assert_same_archive(backup(client, "back"), original)
