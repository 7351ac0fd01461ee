"""NDJSON streaming imports over HTTP on both backends: jobs, refusals, keys, limits, client."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from kb_client import KBClient
from live_server import serving

pytestmark = pytest.mark.both_backends

NDJSON = "application/x-ndjson"
ADMIN, READER = "admin-key-0123456789", "reader-key-0123456789"


def lines(*records: Any) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def docs(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": f"doc-{i:05d}", "text": f"document {i} about topic {i % 17}", "metadata": {"n": i}}
        for i in range(start, start + count)
    ]


def post(client, kb: str, body: str, query: str = "", **headers: str):
    return client.post(
        f"/v1/knowledge-bases/{kb}/documents{query}",
        data=body,
        headers={"Content-Type": NDJSON, **headers},
    )


def finished(client, location: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body = client.get(location, headers=headers).get_json()
        if body["status"] in {"succeeded", "failed", "cancelled"}:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.02)


def test_a_stream_of_thousands_of_documents_is_imported_as_a_job(client, kb, fake_embedder):
    response = post(client, kb, lines(*docs(3000)))
    assert response.status_code == 202, response.get_json()
    started = response.get_json()
    assert response.headers["Location"] == f"/v1/jobs/{started['id']}"
    assert (started["kind"], started["knowledge_base"], started["total"]) == ("import", kb, 3000)
    job = finished(client, response.headers["Location"])
    assert (job["status"], job["done"], job["total"]) == ("succeeded", 3000, 3000)
    assert job["counts"] == {"added": 3000, "replaced": 0, "unchanged": 0}
    assert (job["refused"], job["refused_count"]) == ([], 0)
    assert client.get(f"/v1/knowledge-bases/{kb}").get_json()["document_count"] == 3000
    stored = client.get(f"/v1/knowledge-bases/{kb}/documents/doc-01234").get_json()
    assert (stored["text"], stored["metadata"]) == ("document 1234 about topic 10", {"n": 1234})
    hits = client.post(
        f"/v1/knowledge-bases/{kb}/search", json={"query": "document 2999 about topic 7"}
    ).get_json()["hits"]
    assert hits[0]["id"] == "doc-02999"
    fake_embedder.calls.clear()
    again = finished(client, post(client, kb, lines(*docs(3000))).headers["Location"])
    assert again["counts"] == {"added": 0, "replaced": 0, "unchanged": 3000}
    assert fake_embedder.calls == []  # a rerun embeds nothing


def test_refused_lines_are_listed_with_their_numbers_and_the_rest_imported(make_app):
    client = make_app(max_import_line_bytes=300).test_client()
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    body = lines(
        {"id": "a", "text": "first"},
        "{broken json",
        "",
        {"id": "../x", "text": "a bad id"},
        {"id": "long", "text": "x" * 400},
        {"text": "no id"},
        {"id": "b", "text": "last"},
    )
    job = finished(client, post(client, "kb", body).headers["Location"])
    assert (job["status"], job["done"], job["total"], job["refused_count"]) == (
        "succeeded", 7, 7, 4,
    )  # fmt: skip
    refused = {each["line"]: each for each in job["refused"]}
    assert sorted(refused) == [2, 4, 5, 6]
    assert "malformed JSON" in refused[2]["reason"]
    assert refused[4]["id"] == "../x" and "invalid document id" in refused[4]["reason"]
    assert "KB_MAX_IMPORT_LINE_BYTES is 300" in refused[5]["reason"]
    assert "id is required" in refused[6]["reason"]
    assert job["counts"]["added"] == 2


def test_keys_the_knowledge_base_and_limits_are_checked_before_the_upload(make_app, expect_error):
    client = make_app(
        api_keys=ADMIN, read_only_api_keys=READER, max_import_bytes=1000
    ).test_client()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    client.post("/v1/knowledge-bases", json={"name": "kb"}, headers=admin)
    body = lines(*docs(3))
    expect_error(post(client, "kb", body), 401)
    expect_error(post(client, "kb", body, Authorization=f"Bearer {READER}"), 403)
    expect_error(post(client, "nope", body, **admin), 404)
    expect_error(post(client, "kb", body, "?on_conflict=merge", **admin), 422, "on_conflict")
    too_big = expect_error(post(client, "kb", lines(*docs(40)), **admin), 413)
    assert "KB_MAX_IMPORT_BYTES" in too_big["message"]
    assert client.get("/v1/knowledge-bases/kb", headers=admin).get_json()["document_count"] == 0
    job = finished(client, post(client, "kb", body, **admin).headers["Location"], admin)
    assert job["counts"]["added"] == 3


def test_on_conflict_refuse_keeps_what_is_stored_and_replace_takes_the_new_line(client, kb):
    client.post(f"/v1/knowledge-bases/{kb}/documents", json={"id": "a", "text": "old text"})
    body = lines({"id": "a", "text": "new text"}, {"id": "b", "text": "other"})
    job = finished(client, post(client, kb, body, "?on_conflict=refuse").headers["Location"])
    assert [(r["line"], r["id"]) for r in job["refused"]] == [(1, "a")]
    assert client.get(f"/v1/knowledge-bases/{kb}/documents/a").get_json()["text"] == "old text"
    job = finished(client, post(client, kb, body).headers["Location"])
    assert job["counts"] == {"added": 0, "replaced": 1, "unchanged": 1}
    assert client.get(f"/v1/knowledge-bases/{kb}/documents/a").get_json()["text"] == "new text"


def test_a_json_body_still_adds_documents_at_once(client, kb):
    response = client.post(
        f"/v1/knowledge-bases/{kb}/documents", json={"documents": [{"id": "j", "text": "hello"}]}
    )
    assert response.status_code == 201 and response.get_json()["items"][0]["id"] == "j"


def test_the_openapi_document_describes_the_streaming_import(client):
    operation = client.get("/openapi.json").get_json()["paths"][
        "/v1/knowledge-bases/{kb}/documents"
    ]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/json", NDJSON}
    assert {"201", "202", "404", "413"} <= set(operation["responses"])
    (parameter,) = [p for p in operation["parameters"] if p["name"] == "on_conflict"]
    assert parameter["schema"]["enum"] == ["replace", "refuse"]
    assert "refused" in operation["description"]


def test_kb_client_streams_a_generator_and_follows_the_job(app, kb):
    produced: list[int] = []

    def generate():
        for document in docs(2000):
            produced.append(1)
            yield document

    seen: list[tuple[int, int | None]] = []
    with serving(app) as url, KBClient(url, retries=0) as client:
        job = client.import_documents(
            kb, generate(), poll=0.05, on_progress=lambda j: seen.append((j["done"], j["total"]))
        )
        assert (job["status"], job["done"], job["counts"]["added"]) == ("succeeded", 2000, 2000)
        assert seen[-1] == (2000, 2000) and len(produced) == 2000
        assert client.get_knowledge_base(kb)["document_count"] == 2000


def test_a_rerun_finds_documents_with_every_kind_of_metadata_unchanged(client, kb):
    metadata = {"tags": ["a", "b"], "score": 0.5, "whole": 2.0, "flag": True, "n": -3, "s": "é"}
    body = lines({"id": "m", "text": "with metadata", "metadata": metadata})
    assert finished(client, post(client, kb, body).headers["Location"])["counts"]["added"] == 1
    again = finished(client, post(client, kb, body).headers["Location"])
    assert again["counts"] == {"added": 0, "replaced": 0, "unchanged": 1}
