"""GET and POST /v1/knowledge-bases/{kb}/archive: back up, restore, move between backends."""

from __future__ import annotations

import hashlib
import io
import json
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
from fakes import FakeEmbedder

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


# Tampered, foreign and refused archives: answered at once when the manifest tells, else the job
# fails; either way nothing is left behind.


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def repack(archive: bytes, change: Callable[[dict[str, bytes], dict[str, Any]], None]) -> bytes:
    """The archive with its members changed by `change(members, manifest)`, its checksums
    recomputed: consistent in every way the change does not break on purpose."""
    parts = members(archive)
    manifest = json.loads(parts["manifest.json"])
    change(parts, manifest)
    for name in ("documents.jsonl", "vectors.npy"):
        manifest["sha256"][name] = hashlib.sha256(parts[name]).hexdigest()
    parts["manifest.json"] = json.dumps(manifest).encode()
    parts["SHA256SUMS"] = "".join(
        f"{hashlib.sha256(parts[n]).hexdigest()}  {n}\n"
        for n in ("manifest.json", "documents.jsonl", "vectors.npy")
    ).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name in ("manifest.json", "documents.jsonl", "vectors.npy", "SHA256SUMS"):
            info = tarfile.TarInfo(name)
            info.size = len(parts[name])
            tar.addfile(info, io.BytesIO(parts[name]))
    return out.getvalue()


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def wrong_dimension(parts: dict[str, bytes], manifest: dict[str, Any]) -> None:
    rows = np.load(io.BytesIO(parts["vectors.npy"]))
    out = io.BytesIO()
    np.save(out, np.ascontiguousarray(rows.reshape(-1, rows.shape[1] // 2)))
    parts["vectors.npy"] = out.getvalue()
    manifest["counts"]["chunks"] = rows.shape[0] * 2


def duplicate_ids(parts: dict[str, bytes], manifest: dict[str, Any]) -> None:
    lines = parts["documents.jsonl"].splitlines(keepends=True)
    first = json.loads(lines[0])
    rows = np.load(io.BytesIO(parts["vectors.npy"]))
    chunks = len(first["chunks"])
    parts["documents.jsonl"] = lines[0] + b"".join(lines)
    out = io.BytesIO()
    np.save(out, np.vstack([rows[:chunks], rows]))
    parts["vectors.npy"] = out.getvalue()
    manifest["counts"]["documents"] += 1
    manifest["counts"]["chunks"] += chunks


TAMPERED: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    # name: (tamper, how it is answered: "direct" 422, or "job" failed with the reason)
    "flipped byte in the manifest": (lambda a: flip(a, a.index(b'"documents"') + 3), "direct"),
    "flipped byte in the documents": (lambda a: flip(a, a.index(b'"text"') + 12), "job"),
    "flipped byte in the vectors": (lambda a: flip(a, a.index(b"\x93NUMPY") + 400), "job"),
    "cut short": (lambda a: a[: a.index(b"\x93NUMPY") + 300], "job"),
    "wrong dimension": (lambda a: repack(a, wrong_dimension), "job"),
    "duplicate ids": (lambda a: repack(a, duplicate_ids), "job"),
    "not an archive": (lambda a: b"just some bytes, not a tar stream" * 40, "direct"),
    "another tar": (lambda a: repack_foreign(), "direct"),
}


def repack_foreign() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("notes.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    return out.getvalue()


@pytest.fixture
def original(client, create_kb, add_documents) -> bytes:
    create_kb("kb")
    add_documents("kb", *documents(12))
    return backup(client, "kb")


def nothing_left(app: Flask, client: FlaskClient, name: str) -> None:
    assert client.get(f"/v1/knowledge-bases/{name}").status_code == 404
    repository = app.extensions["kb_container"].repository()
    assert repository.unpublished_knowledge_bases() == []
    names = [kb["name"] for kb in client.get("/v1/knowledge-bases").get_json()["items"]]
    assert name not in names


@pytest.mark.both_backends
@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_archive_is_a_422_and_leaves_nothing(
    app, client, original, expect_error, case, backend
):
    tamper, answered = TAMPERED[case]
    response = post_archive(client, "copy", tamper(original))
    if answered == "direct":
        expect_error(response, 422)
    else:
        assert response.status_code == 202, response.get_json()
        job = finished(client, response.headers["Location"])
        assert job["status"] == "failed"
        assert job["error"], job
    nothing_left(app, client, "copy")
    # The original is untouched, and a sound copy of it still restores under that name.
    assert restore(client, "copy", original)["status"] == "succeeded"


def test_the_tampered_cases_say_what_is_wrong(app, client, original):
    reasons = {
        "wrong dimension": "columns",
        "duplicate ids": "appears twice",
        "cut short": "cut short",
        "flipped byte in the vectors": "sha256",
    }
    for case, words in reasons.items():
        response = post_archive(client, "copy", TAMPERED[case][0](original))
        job = finished(client, response.headers["Location"])
        assert words in job["error"], (case, job["error"])


@pytest.mark.both_backends
def test_a_taken_name_is_a_409_at_once(client, original, expect_error, backend):
    expect_error(post_archive(client, "kb", original), 409)


@pytest.mark.both_backends
def test_another_models_archive_needs_reembed(make_container, expect_error, backend):
    other = FakeEmbedder(dimension=24, window=8, model_name="other-model")
    container = make_container()
    container.embedder.override(other)
    with serving(lambda: container) as client:
        assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
        added = client.post("/v1/knowledge-bases/kb/documents", json={"documents": documents(6)})
        assert added.status_code == 201
        archive = backup(client, "kb")
    with serving(make_container) as client:
        body = expect_error(post_archive(client, "moved", archive), 409)
        assert "other-model" in body["message"] and "fake-model" in body["message"]
        assert "reembed" in body["message"]
        expect_error(post_archive(client, "moved", archive, reembed="false"), 409)
        assert restore(client, "moved", archive, reembed="true")["status"] == "succeeded"
        kb = client.get("/v1/knowledge-bases/moved").get_json()
        assert (kb["model"], kb["dimension"], kb["document_count"]) == ("fake-model", 32, 6)
        hits = client.post(
            "/v1/knowledge-bases/moved/search", json={"query": documents(6)[4]["text"]}
        )
        assert hits.get_json()["hits"][0]["id"] == "d04"


def test_an_archive_may_exceed_the_body_limit_but_not_its_own(make_app, expect_error):
    app = make_app(max_body_bytes=4096, max_archive_bytes=1 << 20)
    client = app.test_client()
    assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
    for start in range(0, 24, 6):
        body = {"documents": documents(24)[start : start + 6]}
        assert client.post("/v1/knowledge-bases/kb/documents", json=body).status_code == 201
    archive = backup(client, "kb")
    assert len(archive) > 4096
    assert restore(client, "copy", archive)["status"] == "succeeded"
    too_big = archive + b"\0" * (1 << 20)
    body = expect_error(post_archive(client, "big", too_big), 413)
    assert "KB_MAX_ARCHIVE_BYTES" in body["message"]
    body = expect_error(client.post("/v1/knowledge-bases", data=b"x" * 5000), 413)
    assert "KB_MAX_BODY_BYTES" in body["message"]
    nothing_left(app, client, "big")


def test_an_archive_must_come_as_the_raw_body(client, original, expect_error):
    response = client.post("/v1/knowledge-bases/copy/archive", json={"archive": "no"})
    expect_error(response, 415)


def test_a_read_only_key_backs_up_but_cannot_restore(make_app, expect_error):
    admin, reader = "admin-key-0123456789", "reader-key-0123456789"
    client = make_app(api_keys=admin, read_only_api_keys=reader).test_client()
    headers = {"Authorization": f"Bearer {admin}"}
    assert (
        client.post("/v1/knowledge-bases", json={"name": "kb"}, headers=headers).status_code == 201
    )
    readers = {"Authorization": f"Bearer {reader}"}
    archive = client.get("/v1/knowledge-bases/kb/archive", headers=readers)
    assert archive.status_code == 200
    refused = client.post(
        "/v1/knowledge-bases/copy/archive",
        data=archive.get_data(),
        content_type="application/x-tar",
        headers=readers,
    )
    expect_error(refused, 403)
    expect_error(client.get("/v1/knowledge-bases/kb/archive"), 401)
