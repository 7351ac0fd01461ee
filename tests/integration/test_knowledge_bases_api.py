"""/v1/knowledge-bases over HTTP: statuses, JSON shapes and one path per route.

Paging, counts, updates and isolation between knowledge bases are tested once on the service with
fakes (tests/unit/test_knowledge_bases.py); these check the request and response mapping.
"""

from __future__ import annotations

from datetime import datetime
from unittest.mock import ANY

import pytest

pytestmark = pytest.mark.both_backends

KBS = "/v1/knowledge-bases"


def test_creating_a_knowledge_base_returns_201_with_the_model_and_empty_counts(client):
    response = client.post(
        KBS, json={"name": "support", "description": "help desk", "metadata": {"team": "ops"}}
    )

    assert response.status_code == 201
    body = response.get_json()
    assert body["name"] == "support"
    assert body["description"] == "help desk"
    assert body["metadata"] == {"team": "ops"}
    assert body["model"] == "fake-model"
    assert body["dimension"] == 32
    assert body["chunking"] == "window"
    assert body["document_count"] == 0
    assert body["chunk_count"] == 0
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


def test_a_created_knowledge_base_reads_back_by_name(client, create_kb):
    created = create_kb("notes", description="my notes", metadata={"tags": ["a", "b"], "n": 2})

    response = client.get(f"{KBS}/notes")

    assert response.status_code == 200
    assert response.get_json() == created


def test_names_at_the_edges_of_the_slug_rule_are_accepted(client, list_all):
    names = ["a", "0kb", "a.b_c-d", "k" * 64, "9", "x-", "y.", "z_"]

    for name in names:
        assert client.post(KBS, json={"name": name}).status_code == 201, name
        assert client.get(f"{KBS}/{name}").get_json()["name"] == name

    assert sorted(item["name"] for item in list_all(KBS)) == sorted(names)


def test_listing_walks_every_knowledge_base_page_by_page_in_name_order(client, create_kb):
    names = [f"kb-{i:02d}" for i in (7, 3, 11, 0, 5, 9, 1)]
    for name in names:
        create_kb(name)

    first = client.get(KBS, query_string={"limit": 3}).get_json()
    second = client.get(KBS, query_string={"limit": 3, "cursor": first["next_cursor"]}).get_json()
    third = client.get(KBS, query_string={"limit": 3, "cursor": second["next_cursor"]}).get_json()

    pages = [first, second, third]
    assert [len(page["items"]) for page in pages] == [3, 3, 1]
    assert first["next_cursor"] and second["next_cursor"]
    assert third.get("next_cursor") is None
    walked = [item["name"] for page in pages for item in page["items"]]
    assert walked == sorted(names)


def test_listed_knowledge_bases_carry_their_counts(client, kb, add_documents, list_all):
    add_documents(kb, {"text": "alpha"}, {"text": "beta"})

    (listed,) = list_all(KBS)

    assert listed["name"] == kb
    assert listed["document_count"] == 2
    assert listed["chunk_count"] == 2


def test_patching_changes_the_description_and_replaces_the_metadata(client, create_kb):
    create_kb("docs", description="old", metadata={"a": 1, "b": 2})

    response = client.patch(f"{KBS}/docs", json={"description": "new", "metadata": {"c": True}})

    assert response.status_code == 200
    assert response.get_json()["description"] == "new"
    assert response.get_json()["metadata"] == {"c": True}
    stored = client.get(f"{KBS}/docs").get_json()
    assert (stored["description"], stored["metadata"]) == ("new", {"c": True})


def test_patching_only_the_metadata_keeps_the_description(client, create_kb):
    created = create_kb("docs", description="keep me", metadata={"a": 1})

    body = client.patch(f"{KBS}/docs", json={"metadata": {"a": 2}}).get_json()

    assert body["description"] == "keep me"
    assert body["metadata"] == {"a": 2}
    assert body["created_at"] == created["created_at"]


def test_deleting_a_knowledge_base_returns_204_and_it_is_gone_everywhere(client, kb, add_documents):
    add_documents(kb, {"id": "d1", "text": "soon gone"})

    response = client.delete(f"{KBS}/{kb}")

    assert response.status_code == 204
    assert response.get_data() == b""
    assert client.get(f"{KBS}/{kb}").status_code == 404
    assert client.get(f"{KBS}/{kb}/documents").status_code == 404
    assert client.get(f"{KBS}/{kb}/documents/d1").status_code == 404
    assert client.post(f"{KBS}/{kb}/search", json={"query": "soon gone"}).status_code == 404
    assert client.delete(f"{KBS}/{kb}").status_code == 404


def test_a_truncating_knowledge_base_embeds_only_the_first_window_and_says_so(client, create_kb):
    create_kb("short", chunking="truncate")
    long_text = " ".join(f"word{i}" for i in range(40))

    response = client.post(f"{KBS}/short/documents", json={"id": "long", "text": long_text})

    assert response.status_code == 201
    (item,) = response.get_json()["items"]
    assert item == {"id": "long", "chunks": 1, "truncated": True, "content_hash": ANY}
    assert item["content_hash"].startswith("sha256:")
    assert client.get(f"{KBS}/short/documents/long").get_json()["text"] == long_text
