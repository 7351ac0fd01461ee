"""POST /v1/knowledge-bases/{kb}/files: files become documents (201), many as a job (202), and
no file, however hostile, gets more than a 4xx."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import assert_error
from flask import Flask
from flask.testing import FlaskClient

from domain.extraction import NO_TEXT
from file_samples import billion_laughs, pdf, word, zip_bomb

URL = "/v1/knowledge-bases/kb/files"
PAGE = (
    b"<html><head><title>Cat care</title></head><body><nav>menu</nav>"
    b"<main><h1>Cats</h1><p>Cats purr when content.</p></main></body></html>"
)


def upload(client: FlaskClient, *files: tuple[str, bytes], **fields: Any) -> Any:
    """POST the files as `file` parts; `fields` values (lists for repeats) as form fields."""
    data: dict[str, Any] = {"file": [(io.BytesIO(content), name) for name, content in files]}
    for key, value in fields.items():
        data[key] = value
    return client.post(URL, data=data, content_type="multipart/form-data")


def document(client: FlaskClient, id: str) -> dict[str, Any]:
    response = client.get(f"/v1/knowledge-bases/kb/documents/{id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def finished(client: FlaskClient, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body = client.get(location).get_json()
        if body["status"] in {"succeeded", "failed", "cancelled"}:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.02)


@pytest.mark.both_backends
def test_each_file_becomes_a_document_with_the_service_metadata(client, kb):
    report = pdf(["Quarterly revenue grew.", "Costs fell."], title="Q3 report")
    notes = word([("Heading 1", "Minutes"), ("", "We met.")])
    files = [("report.pdf", report), ("cats.html", PAGE), ("minutes.docx", notes),
             ("readme.md", b"# Read me\n\nHello.")]  # fmt: skip
    response = upload(client, *files)
    assert response.status_code == 201, response.get_json()
    items = response.get_json()["items"]
    assert [item["id"] for item in items] == [name for name, _ in files]
    assert all(item["chunks"] >= 1 for item in items)
    got = document(client, "report.pdf")
    assert got["text"].startswith("Quarterly revenue grew.") and "Costs fell." in got["text"]
    assert got["metadata"] == {
        "source": "report.pdf",
        "content_type": "application/pdf",
        "title": "Q3 report",
        "source_sha256": hashlib.sha256(report).hexdigest(),
    }
    assert document(client, "cats.html")["metadata"]["title"] == "Cat care"
    assert document(client, "cats.html")["text"] == "Cats\n\nCats purr when content."
    assert document(client, "minutes.docx")["metadata"]["title"] == "Minutes"
    assert document(client, "readme.md")["metadata"]["content_type"] == "text/markdown"


@pytest.mark.both_backends
def test_ids_and_metadata_pair_with_files_in_order_and_the_clients_keys_win(client, kb):
    metadata = [json.dumps({"team": "a", "title": "Mine", "source_sha256": "forged"}),
                json.dumps({"team": "b"})]  # fmt: skip
    response = upload(
        client, ("a.txt", b"alpha"), ("b.txt", b"beta"), id=["first", ""], metadata=metadata
    )
    assert response.status_code == 201, response.get_json()
    assert [item["id"] for item in response.get_json()["items"]] == ["first", "b.txt"]
    first = document(client, "first")["metadata"]
    assert first["team"] == "a" and first["title"] == "Mine" and first["source"] == "a.txt"
    assert first["source_sha256"] == hashlib.sha256(b"alpha").hexdigest()
    assert document(client, "b.txt")["metadata"]["team"] == "b"


def test_one_metadata_field_applies_to_every_file(client, kb):
    response = upload(client, ("a.txt", b"alpha"), ("b.txt", b"beta"), metadata='{"batch": 7}')
    assert response.status_code == 201, response.get_json()
    assert document(client, "a.txt")["metadata"]["batch"] == 7
    assert document(client, "b.txt")["metadata"]["batch"] == 7


def test_ids_that_do_not_pair_with_the_files_are_refused(client, kb):
    response = upload(client, ("a.txt", b"alpha"), ("b.txt", b"beta"), id=["only-one"])
    assert_error(response, 422, "id")


def test_metadata_that_is_not_a_json_object_is_refused(client, kb):
    assert_error(upload(client, ("a.txt", b"alpha"), metadata="[1]"), 422, "metadata")
    assert_error(upload(client, ("a.txt", b"alpha"), metadata="{nope"), 422, "metadata")


def test_a_taken_id_is_a_conflict_and_nothing_is_added(client, kb):
    assert upload(client, ("a.txt", b"alpha")).status_code == 201
    assert_error(upload(client, ("new.txt", b"new"), ("a.txt", b"again")), 409, "ids")
    assert client.get("/v1/knowledge-bases/kb/documents/new.txt").status_code == 404


def test_an_unknown_knowledge_base_is_not_found(client):
    assert_error(upload(client, ("a.txt", b"alpha")), 404)


def test_an_unsupported_type_is_415_naming_the_file(client, kb):
    body = assert_error(upload(client, ("old.doc", b"\xd0\xcf\x11\xe0")), 415, "file")
    assert "old.doc" in body["message"] and ".docx" in body["message"]


def test_a_body_that_is_not_multipart_is_415(client, kb):
    assert_error(client.post(URL, json={"text": "x"}), 415)


def test_no_file_parts_is_422(client, kb):
    assert_error(client.post(URL, data={"id": "x"}, content_type="multipart/form-data"), 422)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("scan.pdf", pdf(["", ""]), NO_TEXT),
        ("locked.pdf", pdf(["secret"], password="pw"), "encrypted"),
        ("broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50, "damaged"),
        ("fake.docx", b"not a zip at all", "not a DOCX"),
        ("laughs.docx", billion_laughs(), "declares a DTD or entities"),
        ("latin.txt", "café".encode("latin-1"), "not UTF-8"),
        ("empty.md", b"   \n", "no text"),
    ],
)
def test_unreadable_files_are_422_saying_why(client, kb, name, content, message):
    body = assert_error(upload(client, ("fine.txt", b"fine"), (name, content)), 422, "file")
    assert message in body["message"] and name in body["message"]
    assert client.get("/v1/knowledge-bases/kb/documents/fine.txt").status_code == 404


def test_a_zip_bomb_is_refused_before_it_is_unpacked(make_app: Callable[..., Flask]):
    client = make_app(max_extracted_bytes=1_000_000).test_client()
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    body = assert_error(upload(client, ("bomb.docx", zip_bomb(20_000_000))), 422, "file")
    assert "KB_MAX_EXTRACTED_BYTES is 1000000" in body["message"]


def test_a_file_over_the_size_limit_is_413_naming_the_setting(make_app: Callable[..., Flask]):
    client = make_app(max_file_bytes=1000).test_client()
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    body = assert_error(upload(client, ("big.txt", b"x" * 1001)), 413)
    assert "KB_MAX_FILE_BYTES is 1000" in body["message"]


def test_an_upload_over_its_limit_is_413_naming_the_setting(make_app: Callable[..., Flask]):
    client = make_app(max_upload_bytes=5000).test_client()
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    body = assert_error(upload(client, ("big.txt", b"x" * 6000)), 413)
    assert "KB_MAX_UPLOAD_BYTES is 5000" in body["message"]


def test_too_many_files_are_refused_naming_the_setting(make_app: Callable[..., Flask]):
    client = make_app(max_upload_files=2).test_client()
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    files = [(f"{i}.txt", b"words") for i in range(3)]
    assert "KB_MAX_UPLOAD_FILES is 2" in assert_error(upload(client, *files), 422)["message"]


def test_a_read_only_key_may_not_upload(make_app: Callable[..., Flask]):
    client = make_app(api_keys="admin-key-0123", read_only_api_keys="reader-key-0123").test_client()
    admin = {"Authorization": "Bearer admin-key-0123"}
    client.post("/v1/knowledge-bases", json={"name": "kb"}, headers=admin)
    data = {"file": [(io.BytesIO(b"words"), "a.txt")]}
    response = client.post(
        URL, data=data, content_type="multipart/form-data",
        headers={"Authorization": "Bearer reader-key-0123"},
    )  # fmt: skip
    assert_error(response, 403)


@pytest.mark.both_backends
def test_a_large_upload_runs_as_a_job_that_adds_every_file(make_app, backend):
    client = make_app(files_job_files=2).test_client()
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    files = [(f"notes/{i}.md", f"# Note {i}\n\nAbout cats {i}.".encode()) for i in range(20)]
    response = upload(client, *files, metadata='{"set": "notes"}')
    assert response.status_code == 202, response.get_json()
    job = finished(client, response.headers["Location"])
    assert (job["kind"], job["status"], job["done"], job["total"]) == ("files", "succeeded", 20, 20)
    got = document(client, "notes/19.md")
    assert got["metadata"]["title"] == "Note 19" and got["metadata"]["set"] == "notes"


@pytest.mark.both_backends
def test_a_job_that_meets_an_unreadable_file_fails_and_removes_what_it_added(make_app, backend):
    client = make_app(files_job_files=2).test_client()
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    files = [(f"{i:02}.txt", b"fine words") for i in range(20)] + [("scan.pdf", pdf([""]))]
    response = upload(client, *files)
    assert response.status_code == 202, response.get_json()
    job = finished(client, response.headers["Location"])
    assert job["status"] == "failed" and NO_TEXT in job["error"] and "scan.pdf" in job["error"]
    listed = client.get("/v1/knowledge-bases/kb/documents").get_json()
    assert listed["items"] == []


def test_a_large_upload_is_checked_before_its_job_starts(make_app: Callable[..., Flask]):
    client = make_app(files_job_files=1).test_client()
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    assert_error(upload(client, ("a.txt", b"a"), ("b.exe", b"MZ")), 415, "file")
    assert_error(upload(client, ("a.txt", b"a"), ("a.txt", b"b")), 422, "id")
