"""/v1/knowledge-bases/{kb}/documents over HTTP: statuses, JSON shapes and one path per route.

Upsert and patch semantics, timestamps and batching are tested once on the service with fakes
(tests/unit/test_documents.py and test_service.py); these check the request and response mapping.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import pytest

pytestmark = pytest.mark.both_backends


def docs_path(kb: str, document_id: str | None = None) -> str:
    base = f"/v1/knowledge-bases/{kb}/documents"
    return base if document_id is None else f"{base}/{document_id}"


def embedded_texts(embedder) -> list[str]:
    return [text for batch in embedder.calls for text in batch]


def test_adding_one_document_with_a_client_id_returns_201_with_its_chunk_count(client, kb):
    response = client.post(
        docs_path(kb), json={"id": "faq-1", "text": "How do I reset my password?"}
    )

    assert response.status_code == 201
    digest = hashlib.sha256(b"How do I reset my password?").hexdigest()
    assert response.get_json() == {
        "items": [
            {"id": "faq-1", "chunks": 1, "truncated": False, "content_hash": f"sha256:{digest}"}
        ]
    }


def test_an_added_document_reads_back_with_its_text_metadata_and_timestamps(client, kb):
    metadata = {"lang": "en", "stars": 4, "score": 0.5, "public": True, "tags": ["a", 1, 2.5]}
    client.post(docs_path(kb), json={"id": "d1", "text": "Hello there", "metadata": metadata})

    response = client.get(docs_path(kb, "d1"))

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == "d1"
    assert body["text"] == "Hello there"
    assert body["metadata"] == metadata
    assert body["chunks"] == 1
    created_at = datetime.fromisoformat(body["created_at"])
    assert created_at.tzinfo is not None
    assert body["updated_at"] == body["created_at"]


def test_a_batch_mixes_client_and_generated_ids_and_keeps_their_order(client, kb, list_all):
    response = client.post(
        docs_path(kb),
        json={
            "documents": [
                {"id": "b", "text": "bravo"},
                {"text": "no id one"},
                {"id": "a", "text": "alpha", "metadata": {"k": "v"}},
                {"text": "no id two"},
            ]
        },
    )

    assert response.status_code == 201
    items = response.get_json()["items"]
    ids = [item["id"] for item in items]
    assert ids[0] == "b" and ids[2] == "a"
    assert len(set(ids)) == 4
    assert all(item["chunks"] == 1 and item["truncated"] is False for item in items)
    stored = {doc["id"]: doc["text"] for doc in list_all(docs_path(kb))}
    assert stored == dict(zip(ids, ["bravo", "no id one", "alpha", "no id two"]))


def test_listing_documents_walks_every_page_in_id_order(client, kb, add_documents):
    ids = [f"doc-{i:03d}" for i in range(23)]
    add_documents(kb, *({"id": i, "text": f"text of {i}"} for i in reversed(ids)))

    walked: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 5} if cursor is None else {"limit": 5, "cursor": cursor}
        page = client.get(docs_path(kb), query_string=query).get_json()
        pages += 1
        walked.extend(doc["id"] for doc in page["items"])
        cursor = page.get("next_cursor")
        if cursor is None:
            break

    assert pages == 5
    assert walked == ids


def test_listed_documents_carry_text_and_metadata(kb, add_documents, list_all):
    add_documents(kb, {"id": "x", "text": "some text", "metadata": {"n": 1}})

    (doc,) = list_all(docs_path(kb))

    assert (doc["id"], doc["text"], doc["metadata"], doc["chunks"]) == (
        "x",
        "some text",
        {"n": 1},
        1,
    )


def test_put_creates_a_missing_document_with_201_then_replaces_it_with_200(client, kb):
    created = client.put(docs_path(kb, "d1"), json={"text": "first text", "metadata": {"v": 1}})
    replaced = client.put(docs_path(kb, "d1"), json={"text": "second text", "metadata": {"v": 2}})

    assert created.status_code == 201
    assert created.get_json()["text"] == "first text"
    assert replaced.status_code == 200
    assert replaced.get_json()["text"] == "second text"
    stored = client.get(docs_path(kb, "d1")).get_json()
    assert (stored["text"], stored["metadata"]) == ("second text", {"v": 2})
    assert client.get(f"/v1/knowledge-bases/{kb}").get_json()["document_count"] == 1


def test_put_with_new_text_re_embeds_so_search_finds_the_new_text(
    client, kb, search, fake_embedder
):
    client.put(docs_path(kb, "d1"), json={"text": "cats purr softly"})
    fake_embedder.calls.clear()

    client.put(docs_path(kb, "d1"), json={"text": "rockets launch loudly"})

    assert "rockets launch loudly" in embedded_texts(fake_embedder)
    (hit,) = search(kb, query="rockets launch loudly")
    assert hit["id"] == "d1"
    assert hit["score"] == pytest.approx(1.0, abs=1e-5)
    (old,) = search(kb, query="cats purr softly")
    assert old["score"] < 0.99


def test_patch_replaces_the_metadata_without_re_embedding(client, kb, add_documents, fake_embedder):
    add_documents(kb, {"id": "d1", "text": "stable text", "metadata": {"a": 1, "b": 2}})
    fake_embedder.calls.clear()

    response = client.patch(docs_path(kb, "d1"), json={"metadata": {"c": "three"}})

    assert response.status_code == 200
    assert response.get_json()["metadata"] == {"c": "three"}
    assert response.get_json()["text"] == "stable text"
    assert fake_embedder.calls == []
    assert client.get(docs_path(kb, "d1")).get_json()["metadata"] == {"c": "three"}


def test_deleting_a_document_returns_204_and_it_is_gone(client, kb, add_documents, list_all):
    add_documents(kb, {"id": "keep", "text": "stays"}, {"id": "drop", "text": "goes"})

    response = client.delete(docs_path(kb, "drop"))

    assert response.status_code == 204
    assert client.get(docs_path(kb, "drop")).status_code == 404
    assert [doc["id"] for doc in list_all(docs_path(kb))] == ["keep"]
    assert client.get(f"/v1/knowledge-bases/{kb}").get_json()["document_count"] == 1


def test_bulk_delete_removes_the_listed_documents_and_reports_those_that_existed(
    client, kb, add_documents, list_all
):
    add_documents(kb, *({"id": f"d{i}", "text": f"text {i}"} for i in range(5)))

    response = client.post(f"{docs_path(kb)}/delete", json={"ids": ["d1", "d3", "missing", "d1"]})

    assert response.status_code == 200
    body = response.get_json()
    assert sorted(body["deleted"]) == ["d1", "d3"]
    assert body["count"] == 2
    assert [doc["id"] for doc in list_all(docs_path(kb))] == ["d0", "d2", "d4"]
    stats = client.get(f"/v1/knowledge-bases/{kb}").get_json()
    assert (stats["document_count"], stats["chunk_count"]) == (3, 3)


def test_unusual_ids_round_trip_through_the_url(client, kb, add_documents):
    for document_id in ["a/b/c", "ünïcødé", "with space", "delete", "50%", "x" * 256]:
        add_documents(kb, {"id": document_id, "text": "odd id"})
        path = docs_path(kb, document_id)

        assert client.get(path).get_json()["id"] == document_id
        assert client.put(path, json={"text": "new"}).status_code == 200
        assert client.patch(path, json={"metadata": {"x": 1}}).status_code == 200
        assert client.delete(path).status_code == 204
        assert client.get(path).status_code == 404


def test_a_long_text_is_split_into_several_chunks_and_kept_whole(client, kb):
    long_text = " ".join(f"word{i}" for i in range(50))

    response = client.post(docs_path(kb), json={"id": "long", "text": long_text})

    item = response.get_json()["items"][0]
    assert item["chunks"] > 1
    assert item["truncated"] is False
    stored = client.get(docs_path(kb, "long")).get_json()
    assert stored["text"] == long_text
    assert stored["chunks"] == item["chunks"]
    assert client.get(f"/v1/knowledge-bases/{kb}").get_json()["chunk_count"] == item["chunks"]


@pytest.mark.parametrize(
    "document",
    [
        {"id": "a", "text": "nul \u0000 inside"},
        {"id": "b\u0000", "text": "x"},
        {"id": "c", "text": "x", "metadata": {"k\u0000": "v"}},
        {"id": "d", "text": "x", "metadata": {"k": ["v\u0000"]}},
    ],
)
def test_nul_characters_are_refused_on_every_backend(client, kb, document):
    # PostgreSQL's text types cannot hold U+0000, so no backend stores it.
    response = client.post(f"/v1/knowledge-bases/{kb}/documents", json={"documents": [document]})
    assert response.status_code == 422
    assert client.get(f"/v1/knowledge-bases/{kb}").get_json()["document_count"] == 0


def test_a_document_read_alone_carries_the_span_of_each_chunk(client, kb):
    long_text = " ".join(f"word{i}" for i in range(50))
    client.post(docs_path(kb), json={"id": "long", "text": long_text})

    stored = client.get(docs_path(kb, "long")).get_json()

    spans = stored["spans"]
    assert len(spans) == stored["chunks"] > 1
    assert spans[0]["start"] == 0 and spans[-1]["end"] == len(long_text)
    assert all(0 <= s["start"] < s["end"] <= len(long_text) for s in spans)
    assert [s["start"] for s in spans] == sorted({s["start"] for s in spans})
    listed = client.get(docs_path(kb)).get_json()["items"][0]
    assert "spans" not in listed  # listings stay small
