"""HTTP behaviour of /v1/knowledge-bases: create, list, read, update and delete."""

from __future__ import annotations

from datetime import datetime

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


def test_listing_with_a_limit_above_the_count_is_one_page_without_a_cursor(client, create_kb):
    create_kb("one")
    create_kb("two")

    page = client.get(KBS, query_string={"limit": 10}).get_json()

    assert [item["name"] for item in page["items"]] == ["one", "two"]
    assert page.get("next_cursor") is None


def test_listing_an_empty_service_returns_no_items(client):
    page = client.get(KBS).get_json()

    assert page["items"] == []
    assert page.get("next_cursor") is None


def test_listing_walks_to_the_end_with_a_page_size_of_one(create_kb, list_all):
    names = sorted(f"walk-{i}" for i in range(5))
    for name in names:
        create_kb(name)

    assert [item["name"] for item in list_all(KBS, 1)] == names


def test_a_knowledge_base_counts_its_documents_and_chunks(client, kb, add_documents):
    long_text = " ".join(f"word{i}" for i in range(40))
    add_documents(kb, {"text": "short one"}, {"text": "short two"}, {"text": long_text})

    body = client.get(f"{KBS}/{kb}").get_json()

    assert body["document_count"] == 3
    assert body["chunk_count"] > 3


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


def test_patching_keeps_the_documents(client, kb, add_documents):
    add_documents(kb, {"id": "d1", "text": "kept text"})

    client.patch(f"{KBS}/{kb}", json={"description": "renamed"})

    assert client.get(f"{KBS}/{kb}").get_json()["document_count"] == 1
    assert client.get(f"{KBS}/{kb}/documents/d1").status_code == 200


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


def test_a_deleted_knowledge_base_leaves_the_listing(client, create_kb, list_all):
    create_kb("stay")
    create_kb("go")

    client.delete(f"{KBS}/go")

    assert [item["name"] for item in list_all(KBS)] == ["stay"]


def test_recreating_a_deleted_knowledge_base_under_the_same_name_starts_empty(
    client, create_kb, add_documents, search, list_all
):
    create_kb("again", description="first life")
    add_documents("again", {"id": "d1", "text": "the old document"}, {"text": "another old one"})
    client.delete(f"{KBS}/again")

    recreated = create_kb("again")

    assert recreated["document_count"] == 0
    assert recreated["chunk_count"] == 0
    assert recreated["description"] == ""
    assert list_all(f"{KBS}/again/documents") == []
    assert search("again", query="the old document", top_k=1000) == []
    assert client.get(f"{KBS}/again/documents/d1").status_code == 404
    assert add_documents("again", {"id": "d1", "text": "a new life"}) == ["d1"]
    (hit,) = search("again", query="the old document", top_k=1000)
    assert hit["text"] == "a new life"


def test_deleting_one_knowledge_base_leaves_the_others_untouched(
    client, create_kb, add_documents, search
):
    create_kb("left")
    create_kb("right")
    add_documents("left", {"id": "same", "text": "shared words here"})
    add_documents("right", {"id": "same", "text": "shared words here"})

    client.delete(f"{KBS}/left")

    assert client.get(f"{KBS}/right").get_json()["document_count"] == 1
    (hit,) = search("right", query="shared words here")
    assert hit["id"] == "same"
    assert hit["score"] == pytest.approx(1.0, abs=1e-5)


def test_documents_of_two_knowledge_bases_never_mix(create_kb, add_documents, search):
    create_kb("red")
    create_kb("blue")
    add_documents("red", {"id": "r", "text": "apples and cherries"})
    add_documents("blue", {"id": "b", "text": "apples and blueberries"})

    assert [hit["id"] for hit in search("red", query="apples", top_k=1000)] == ["r"]
    assert [hit["id"] for hit in search("blue", query="apples", top_k=1000)] == ["b"]


def test_a_truncating_knowledge_base_embeds_only_the_first_window_and_says_so(client, create_kb):
    create_kb("short", chunking="truncate")
    long_text = " ".join(f"word{i}" for i in range(40))

    response = client.post(f"{KBS}/short/documents", json={"id": "long", "text": long_text})

    assert response.status_code == 201
    assert response.get_json()["items"] == [{"id": "long", "chunks": 1, "truncated": True}]
    assert client.get(f"{KBS}/short/documents/long").get_json()["text"] == long_text
