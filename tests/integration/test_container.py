"""The container is the one seam: a test swaps any port of the real app, on either backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from dependency_injector import providers
from flask import Flask

from domain.limits import Limit
from domain.model import KnowledgeBase
from entrypoints.container import Container
from entrypoints.settings import BACKENDS
from fakes import FakeDocumentRepository, FakeVectorIndex

DOCUMENTS = [
    {"id": "cat", "text": "the cat sat on the mat"},
    {"id": "stock", "text": "the stock market fell sharply"},
]


def test_a_swapped_repository_receives_what_the_http_api_writes(
    make_container: Callable[..., Container], make_app: Callable[..., Flask], add_documents, search
):
    repository = FakeDocumentRepository()
    container = make_container()
    container.repository.override(repository)
    client = make_app(container=container).test_client()

    assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
    add_documents("kb", *DOCUMENTS)

    assert list(repository.kbs) == ["kb"]
    assert set(repository.docs["kb"]) == {"cat", "stock"}
    assert search("kb", query="the cat sat on the mat")[0]["id"] == "cat"


@pytest.mark.both_backends
def test_a_swapped_index_factory_builds_every_index_the_service_searches(
    make_container: Callable[..., Container], make_app: Callable[..., Flask], add_documents, search
):
    built: dict[str, FakeVectorIndex] = {}

    def fake_indexes(kb: KnowledgeBase) -> FakeVectorIndex:
        built[kb.name] = FakeVectorIndex(kb.dimension)
        return built[kb.name]

    container = make_container()
    container.index_factory.override(fake_indexes)
    client = make_app(container=container).test_client()

    assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
    add_documents("kb", *DOCUMENTS)

    assert list(built) == ["kb"]
    assert len(built["kb"]) == 2  # one chunk per short document
    hits: list[dict[str, Any]] = search("kb", query="the stock market fell sharply")
    assert [hit["id"] for hit in hits] == ["stock", "cat"]


@pytest.mark.both_backends
def test_the_container_selects_the_store_of_the_backend_in_its_settings(
    make_container: Callable[..., Container], backend: str
):
    container = make_container()
    try:
        chosen = type(container.repository()).__name__
        assert chosen.startswith({"memory": "InMemory", "postgres": "Postgres"}[backend])
        assert (
            container.storage_state() == {"memory": "in-process", "postgres": "reachable"}[backend]
        )
    finally:
        container.shutdown_resources()


def test_the_documents_views_and_the_body_check_enforce_the_limits_the_container_provides(
    make_container: Callable[..., Container], make_app: Callable[..., Flask]
):
    container = make_container()
    limits = replace(
        container.settings().limits,
        text_chars=Limit(10, "TEXT_LIMIT"),
        metadata_keys=Limit(1, "KEYS_LIMIT"),
    )
    container.limits.override(providers.Object(limits))
    client = make_app(container=container).test_client()
    assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
    documents = "/v1/knowledge-bases/kb/documents"

    added = client.post(documents, json={"text": "x" * 11})
    replaced = client.put(f"{documents}/d", json={"text": "x" * 11})
    tagged = client.post(documents, json={"text": "x", "metadata": {"a": 1, "b": 2}})

    assert [r.status_code for r in (added, replaced, tagged)] == [422, 422, 422]
    assert "TEXT_LIMIT is 10" in added.get_json()["message"]
    assert "TEXT_LIMIT is 10" in replaced.get_json()["message"]
    assert "KEYS_LIMIT is 1" in tagged.get_json()["message"]
    assert client.post(documents, json={"text": "x" * 10}).status_code == 201


def test_every_backend_the_settings_accept_has_a_bundle_and_no_other():
    assert set(Container.backend.providers) == set(BACKENDS)
