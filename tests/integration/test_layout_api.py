"""Documents with a Layout over HTTP on both backends: pages on passages, the layout on reads,
through a restart and a backup and restore."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from domain import Layout, NewDocument
from entrypoints.app import close_app, create_app

pytestmark = pytest.mark.both_backends


def words(prefix: str, count: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(count))


PARTS = [words("alpha", 13), words("beta", 13), words("gamma", 30)]
TEXT = "\n\n".join(PARTS)
STARTS = (0, len(PARTS[0]) + 2, len(PARTS[0]) + len(PARTS[1]) + 4)
PAGED = Layout(sections=STARTS, pages=STARTS[1:])


def serve(make_container: Callable[..., Any], **settings: Any) -> tuple[Flask, Any]:
    container = make_container(**settings)
    app = create_app(container=container)
    app.config["TESTING"] = True
    return app, container.service()


def add_paged(service: Any) -> None:
    service.create_knowledge_base("kb")
    service.add_documents(
        "kb",
        [NewDocument(TEXT, id="paged", layout=PAGED), NewDocument(TEXT, id="plain")],
    )


def pages(client: FlaskClient, kb: str, query: str) -> dict[str, Any]:
    response = client.post(f"/v1/knowledge-bases/{kb}/search", json={"query": query, "top_k": 2})
    assert response.status_code == 200, response.get_json()
    return {hit["id"]: hit["passage"].get("page") for hit in response.get_json()["hits"]}


def assert_layout_served(client: FlaskClient, kb: str) -> None:
    assert pages(client, kb, words("gamma", 12)) == {"paged": 3, "plain": None}
    assert pages(client, kb, words("alpha", 12)) == {"paged": 1, "plain": None}
    paged = client.get(f"/v1/knowledge-bases/{kb}/documents/paged").get_json()
    assert paged["layout"] == {"sections": list(STARTS), "pages": list(STARTS[1:])}
    plain = client.get(f"/v1/knowledge-bases/{kb}/documents/plain").get_json()
    assert "layout" not in plain


def test_a_hit_names_its_page_and_the_layout_survives_a_restart(make_container, tmp_path):
    settings = {"data_dir": str(tmp_path / "data")}
    app, service = serve(make_container, **settings)
    try:
        add_paged(service)
        client = app.test_client()
        assert_layout_served(client, "kb")
        response = client.post(
            "/v1/knowledge-bases/kb/search",
            json={"query": words("gamma", 12), "fields": ["passage"]},
        )
        assert response.get_json()["hits"][0]["passage"]["page"] == 3
    finally:
        close_app(app)
    app, _ = serve(make_container, **settings)
    try:
        assert_layout_served(app.test_client(), "kb")
    finally:
        close_app(app)


def test_a_backup_and_restore_keeps_the_pages(make_container, make_app):
    container = make_container()
    app = make_app(container=container)
    add_paged(container.service())
    client = app.test_client()
    archive = client.get("/v1/knowledge-bases/kb/archive").get_data()
    response = client.post(
        "/v1/knowledge-bases/copy/archive", data=archive, content_type="application/x-tar"
    )
    assert response.status_code == 202, response.get_json()
    deadline = time.monotonic() + 30
    while (job := client.get(response.headers["Location"]).get_json())["status"] != "succeeded":
        assert job["status"] in {"queued", "running"} and time.monotonic() < deadline, job
        time.sleep(0.01)
    assert_layout_served(client, "copy")


def test_the_openapi_document_describes_page_and_layout(client):
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    assert "page" in schemas["Passage"]["properties"]
    assert "absent otherwise" in schemas["Passage"]["properties"]["page"]["description"]
    assert set(schemas["Layout"]["properties"]) == {"sections", "pages"}
