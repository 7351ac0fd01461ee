"""Content hashes over HTTP on both backends: on every document body, in the `fields` listing
(ids and hashes a page at a time, no texts), and computed for documents stored before them."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import psycopg
import pytest

import postgres
from adapters.postgres import schema as postgres_schema
from adapters.sqlite import schema as sqlite_schema
from aging import undo_since
from entrypoints.app import close_app
from entrypoints.backends.memory import DATABASE_FILE

pytestmark = pytest.mark.both_backends

ODD_IDS = ["naïve café", "日本語/ファイル.md", "with inner spaces", "a/b/c.txt", "#?%&"]


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def docs_path(kb: str) -> str:
    return f"/v1/knowledge-bases/{kb}/documents"


def test_every_document_body_carries_the_hash_of_its_text(client, kb):
    added = client.post(docs_path(kb), json={"id": "a", "text": "first text"}).get_json()
    assert added["items"][0]["content_hash"] == sha("first text")
    assert client.get(f"{docs_path(kb)}/a").get_json()["content_hash"] == sha("first text")
    replaced = client.put(f"{docs_path(kb)}/a", json={"text": "second text", "metadata": {"x": 1}})
    assert replaced.status_code == 200 and replaced.get_json()["content_hash"] == sha("second text")
    patched = client.patch(f"{docs_path(kb)}/a", json={"metadata": {"x": 2}}).get_json()
    assert patched["content_hash"] == sha("second text")
    listed = client.get(docs_path(kb)).get_json()["items"]
    assert [item["content_hash"] for item in listed] == [sha("second text")]


def hash_pages(client, kb: str, limit: int) -> list[dict]:
    """Every item of the hash listing, following next_cursor; each page at most `limit`."""
    items: list[dict] = []
    query = {"fields": "id,content_hash,metadata", "limit": limit}
    while True:
        page = client.get(docs_path(kb), query_string=query).get_json()
        assert len(page["items"]) <= limit
        items += page["items"]
        if page.get("next_cursor") is None:
            return items
        query["cursor"] = page["next_cursor"]


def test_the_hash_listing_pages_ids_hashes_and_metadata_without_texts(client, kb):
    documents = [
        {"id": doc_id, "text": f"text {n} ü", "metadata": {"n": n}}
        for n, doc_id in enumerate(ODD_IDS)
    ]
    assert client.post(docs_path(kb), json={"documents": documents}).status_code == 201
    listed = hash_pages(client, kb, limit=2)
    expected = sorted(
        ({"id": d["id"], "content_hash": sha(d["text"]), "metadata": d["metadata"]}
         for d in documents),
        key=lambda item: item["id"],
    )  # fmt: skip
    assert listed == expected
    only_hashes = client.get(docs_path(kb), query_string={"fields": "content_hash"}).get_json()
    assert set(only_hashes["items"][0]) == {"id", "content_hash"}  # the id always comes


def test_the_hash_listing_takes_a_filter_and_other_fields_come_from_the_full_listing(client, kb):
    documents = [{"id": f"d{n}", "text": f"text {n}", "metadata": {"n": n}} for n in range(4)]
    client.post(docs_path(kb), json={"documents": documents})
    query = {"fields": "id,content_hash", "filter": '{"n": {"$gte": 2}}'}
    page = client.get(docs_path(kb), query_string=query).get_json()
    assert page["items"] == [{"id": f"d{n}", "content_hash": sha(f"text {n}")} for n in (2, 3)]
    page = client.get(docs_path(kb), query_string={"fields": "text,chunks", "limit": 1})
    assert page.get_json()["items"] == [{"id": "d0", "text": "text 0", "chunks": 1}]


def test_an_unknown_field_is_a_422_and_an_unknown_knowledge_base_a_404(client, kb, expect_error):
    expect_error(client.get(docs_path(kb), query_string={"fields": "id,vector"}), 422, "fields")
    expect_error(client.get(docs_path(kb), query_string={"fields": ","}), 422, "fields")
    expect_error(client.get(docs_path("nope"), query_string={"fields": "id"}), 404)


def test_an_emptied_knowledge_base_lists_no_hashes(client, kb):
    client.post(docs_path(kb), json={"documents": [{"id": "a", "text": "x"}]})
    client.post(f"{docs_path(kb)}/delete", json={"ids": ["a"]})
    page = client.get(docs_path(kb), query_string={"fields": "id,content_hash"}).get_json()
    assert page["items"] == [] and page.get("next_cursor") is None


def before_hashes(migrations: list[str]) -> int:
    """The schema version just before the migration that added `content_hash`."""
    return next(i for i, step in enumerate(migrations) if "ADD COLUMN content_hash" in step)


def age(backend: str, data_dir: Path) -> None:
    """Make the stored documents look as kb-service wrote them before content hashes."""
    if backend == "memory":
        version = before_hashes(sqlite_schema.MIGRATIONS)
        with sqlite3.connect(data_dir / DATABASE_FILE) as db:
            for statement in undo_since(sqlite_schema.MIGRATIONS, version):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version}")
        db.close()
        return
    with psycopg.connect(postgres.database_url(), autocommit=True) as conn:
        version = before_hashes(postgres_schema.MIGRATIONS)
        for statement in undo_since(postgres_schema.MIGRATIONS, version):
            conn.execute(statement)
        conn.execute("UPDATE kb_schema SET version = %s", (version,))


def test_documents_stored_before_hashes_get_theirs_when_the_store_is_migrated(
    make_app, backend, tmp_path
):
    settings = {"data_dir": str(tmp_path / "data")}
    app = make_app(**settings)
    client = app.test_client()
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    texts = {"a": "alpha text", "ü/b": "beta ☃ text"}
    documents = [{"id": doc_id, "text": text} for doc_id, text in texts.items()]
    assert client.post(docs_path("kb"), json={"documents": documents}).status_code == 201
    close_app(app)
    age(backend, tmp_path / "data")
    client = make_app(**settings).test_client()
    page = client.get(docs_path("kb"), query_string={"fields": "id,content_hash"}).get_json()
    assert page["items"] == [{"id": i, "content_hash": sha(t)} for i, t in sorted(texts.items())]
    assert client.get(f"{docs_path('kb')}/a").get_json()["content_hash"] == sha("alpha text")


def test_the_hash_listing_says_what_the_full_listing_says(client, kb):
    metadata = {"z": 1, "a": [1.5, "ü", True], "m": -0.0, "big": 2**53 + 1}
    documents = [{"id": f"d{n}", "text": f"text {n}", "metadata": metadata} for n in range(3)]
    client.post(docs_path(kb), json={"documents": documents})
    query = {"limit": 2}
    fast = client.get(docs_path(kb), query_string={**query, "fields": "metadata,content_hash"})
    full = client.get(docs_path(kb), query_string=query).get_json()
    keep = ("id", "content_hash", "metadata")
    projected = [{name: item[name] for name in keep} for item in full["items"]]
    assert (
        fast.get_data()
        == client.get(
            docs_path(kb), query_string={**query, "fields": "id,content_hash,metadata"}
        ).get_data()
    )
    assert fast.get_json() == {"items": projected, "next_cursor": full["next_cursor"]}
