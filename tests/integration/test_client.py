"""kb_client against the real app over real HTTP: every endpoint, typed errors, retries."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.wrappers import Request, Response

from kb_client import (
    Conflict,
    Forbidden,
    Invalid,
    KBClient,
    KBConnectionError,
    KBError,
    NotFound,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Transport,
    Unauthorized,
)
from live_server import serving

ADMIN, READER = "admin-key-0123456789", "reader-key-0123456789"
ODD_IDS = [
    "notes/2024/a.md",
    "what?#now",
    "100% sure",
    "...",
    ".hidden",
    "émoji 🎉",
    "a b+c&d=e",
    "delete",
    "x" * 256,
]
# Ids the server refuses (422): each would reach another document or none once in a URL.
REFUSED_IDS = ["/a", "a/", "..", ".", "./a", "a//b", "a\nb", " a"]


@pytest.fixture
def url(make_app: Callable[..., Flask]) -> Iterator[str]:
    with serving(make_app()) as base:
        yield base


@pytest.fixture
def kb_client(url: str) -> Iterator[KBClient]:
    with KBClient(url, retries=0) as client:
        yield client


@pytest.fixture
def notes(kb_client: KBClient) -> str:
    kb_client.create_knowledge_base("notes", "team notes", {"team": "core"})
    kb_client.add_documents(
        "notes",
        [
            {"id": "bread", "text": "A man is eating bread.", "metadata": {"lang": "en"}},
            {"id": "market", "text": "The stock market fell.", "metadata": {"lang": "en"}},
            {"id": "pain", "text": "Un homme mange du pain.", "metadata": {"lang": "fr"}},
        ],
    )
    return "notes"


def test_knowledge_bases_are_created_read_listed_updated_and_deleted(kb_client):
    created = kb_client.create_knowledge_base("a", "first", {"x": 1}, chunking="truncate")
    assert created["name"] == "a" and created["chunking"] == "truncate"
    for name in "bcde":
        kb_client.create_knowledge_base(name)
    assert kb_client.get_knowledge_base("a")["description"] == "first"
    page = kb_client.list_knowledge_bases(limit=2)
    assert [kb["name"] for kb in page["items"]] == ["a", "b"] and page["next_cursor"]
    assert [kb["name"] for kb in kb_client.iter_knowledge_bases(page_size=2)] == list("abcde")
    assert kb_client.update_knowledge_base("a", metadata={"x": 2})["metadata"] == {"x": 2}
    kb_client.delete_knowledge_base("a")
    with pytest.raises(NotFound) as raised:
        kb_client.get_knowledge_base("a")
    assert raised.value.status == 404 and "'a'" in raised.value.message


def test_a_taken_name_raises_conflict_and_a_bad_name_raises_invalid_with_field_errors(kb_client):
    kb_client.create_knowledge_base("taken")
    with pytest.raises(Conflict) as conflict:
        kb_client.create_knowledge_base("taken")
    assert conflict.value.status == 409 and conflict.value.body["code"] == 409
    with pytest.raises(Invalid) as invalid:
        kb_client.create_knowledge_base("Not A Slug")
    assert invalid.value.status == 422 and "name" in str(invalid.value.errors)


@pytest.mark.both_backends
def test_documents_with_odd_ids_round_trip_through_every_per_document_call(kb_client):
    kb_client.create_knowledge_base("kb")
    for id in ODD_IDS:
        kb_client.add_document("kb", f"text of {id}", id=id, metadata={"n": 1})
    for id in ODD_IDS:
        document = kb_client.get_document("kb", id)
        assert (document["id"], document["text"]) == (id, f"text of {id}")
        replaced, created = kb_client.upsert_document("kb", id, f"new text of {id}")
        assert not created and replaced["id"] == id
        assert kb_client.update_document_metadata("kb", id, {"n": 2})["metadata"] == {"n": 2}
    listed = {d["id"]: (d["text"], d["metadata"]) for d in kb_client.iter_documents("kb")}
    assert listed == {id: (f"new text of {id}", {"n": 2}) for id in ODD_IDS}
    for id in ODD_IDS:
        kb_client.delete_document("kb", id)
        with pytest.raises(NotFound):
            kb_client.get_document("kb", id)


@pytest.mark.both_backends
def test_an_id_the_server_refuses_raises_invalid_and_never_touches_another_document(kb_client):
    kb_client.create_knowledge_base("kb")
    kb_client.add_documents("kb", [{"id": "a", "text": "alpha"}, {"id": "b", "text": "bravo"}])
    calls = [
        lambda id: kb_client.add_document("kb", "impostor", id=id),
        lambda id: kb_client.get_document("kb", id),
        lambda id: kb_client.upsert_document("kb", id, "overwritten"),
        lambda id: kb_client.update_document_metadata("kb", id, {"touched": True}),
        lambda id: kb_client.delete_document("kb", id),
    ]
    for id in REFUSED_IDS:
        for call in calls:
            with pytest.raises(Invalid) as raised:
                call(id)
            assert raised.value.status == 422 and "id" in str(raised.value.errors), id
    listed = {d["id"]: (d["text"], d["metadata"]) for d in kb_client.iter_documents("kb")}
    assert listed == {"a": ("alpha", {}), "b": ("bravo", {})}


def test_a_redirect_is_an_error_the_client_does_not_follow():
    app = Scripted((308, "", {"Location": "/v1/knowledge-bases/kb/documents/a"}))
    with serving(app) as base, pytest.raises(KBError) as raised:  # type: ignore[arg-type]
        scripted_client(base, [], retries=0).delete_document("kb", "/a")
    assert raised.value.status == 308 and app.calls == 1
    assert "documents/a" in raised.value.message and "not followed" in raised.value.message


def test_batched_adds_send_batches_and_iteration_walks_every_page(kb_client):
    kb_client.create_knowledge_base("kb")
    documents = [
        {"id": f"d{i:02}", "text": f"document number {i}", "metadata": {"even": i % 2 == 0}}
        for i in range(10)
    ]
    batches: list[int] = []
    added = kb_client.add_documents_batched(
        "kb", iter(documents), batch_size=3, on_batch=lambda items: batches.append(len(items))
    )
    assert batches == [3, 3, 3, 1] and [item["id"] for item in added] == [
        d["id"] for d in documents
    ]
    listed = [d["id"] for d in kb_client.iter_documents("kb", page_size=3)]
    assert listed == [d["id"] for d in documents]
    evens = [d["id"] for d in kb_client.iter_documents("kb", filter={"even": True}, page_size=2)]
    assert evens == ["d00", "d02", "d04", "d06", "d08"]


def test_a_batch_with_a_taken_id_adds_nothing(kb_client, notes):
    with pytest.raises(Conflict):
        kb_client.add_documents(notes, [{"id": "new", "text": "new"}, {"id": "bread", "text": "x"}])
    with pytest.raises(NotFound):
        kb_client.get_document(notes, "new")


def test_upsert_reports_creation_and_patch_changes_only_metadata(kb_client, notes):
    created, was_created = kb_client.upsert_document(notes, "tea", "Tea is brewed.", {"a": 1})
    assert was_created and created["metadata"] == {"a": 1}
    replaced, was_created = kb_client.upsert_document(notes, "tea", "Tea is steeped.")
    assert not was_created and replaced["text"] == "Tea is steeped."
    patched = kb_client.update_document_metadata(notes, "tea", {"b": True})
    assert patched["metadata"] == {"b": True} and patched["text"] == "Tea is steeped."


def test_bulk_delete_by_ids_and_filter_with_a_dry_run_first(kb_client, notes):
    dry = kb_client.delete_documents(notes, filter={"lang": "en"}, dry_run=True)
    assert dry == {"deleted": ["bread", "market"], "count": 2, "dry_run": True}
    assert kb_client.get_knowledge_base(notes)["document_count"] == 3
    both = kb_client.delete_documents(notes, ids=["bread", "pain"], filter={"lang": "en"})
    assert both["deleted"] == ["bread"] and not both["dry_run"]  # listed and matching
    assert kb_client.delete_documents(notes, ids=["pain", "gone"])["deleted"] == ["pain"]
    assert kb_client.get_knowledge_base(notes)["document_count"] == 1


def test_search_by_text_document_and_vector_with_every_option(kb_client, notes):
    hits = kb_client.search(notes, "A man is eating bread.", top_k=2)
    assert hits[0]["id"] == "bread" and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    passage = hits[0]["passage"]
    assert hits[0]["text"][passage["start"] : passage["end"]] == passage["text"]
    assert len(hits) == 2
    more = kb_client.search(notes, document_id="bread")
    assert "bread" not in [hit["id"] for hit in more]
    assert kb_client.search(notes, "bread", filter={"lang": "fr"})[0]["id"] == "pain"
    assert kb_client.search(notes, "bread", min_score=0.99) == []
    hybrid = kb_client.search(notes, "stock market", mode="hybrid", keyword_weight=0.7, rrf_k=10)
    assert hybrid[0]["id"] == "market" and "fusion_score" in hybrid[0]
    assert len(kb_client.search(notes, "bread", diversity=0.5, top_k=3)) == 3
    plain = kb_client.search(notes, "bread", top_k=3)
    assert kb_client.search(notes, "bread", top_k=3, exact=True) == plain
    assert kb_client.search(notes, "bread", top_k=3, probes=1) == plain  # small KB: exact anyway
    info = kb_client.info()
    vector = [1.0] + [0.0] * (info["dimension"] - 1)
    assert len(kb_client.search(notes, vector=vector, top_k=1)) == 1
    (lean,) = kb_client.search(notes, "A man is eating bread.", top_k=1, fields=["passage"])
    assert lean == {"id": "bread", "score": hits[0]["score"], "passage": passage}


def test_batch_search_answers_each_query_in_order(kb_client, notes):
    results = kb_client.search_batch(
        notes, [{"query": "The stock market fell."}, {"document_id": "bread", "top_k": 1}]
    )
    assert results[0][0]["id"] == "market" and len(results[1]) == 1


def test_service_endpoints_answer(kb_client):
    assert kb_client.health()["status"] == "ok"
    assert kb_client.ready()["status"] == "ready"
    assert kb_client.info()["model"] == "fake-model"


def test_unknown_knowledge_base_raises_not_found_everywhere(kb_client):
    calls: list[Callable[[], Any]] = [
        lambda: kb_client.search("ghost", "x"),
        lambda: kb_client.add_document("ghost", "x"),
        lambda: list(kb_client.iter_documents("ghost")),
        lambda: kb_client.delete_documents("ghost", ids=["a"]),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            call()


def test_the_api_key_is_sent_as_a_bearer_token(make_app):
    app = make_app(api_keys=ADMIN, read_only_api_keys=READER)
    with serving(app) as base:
        with pytest.raises(Unauthorized):
            KBClient(base, retries=0).list_knowledge_bases()
        with pytest.raises(Unauthorized):
            KBClient(base, "wrong", retries=0).list_knowledge_bases()
        KBClient(base, ADMIN, retries=0).create_knowledge_base("kb")
        reader = KBClient(base, READER, retries=0)
        assert reader.search("kb", "anything") == []
        with pytest.raises(Forbidden):
            reader.add_document("kb", "x")


class Scripted:
    """A WSGI app answering from a script of (status, body, headers); counts the calls."""

    def __init__(self, *answers: tuple[int, str, dict[str, str]]) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self, environ: Any, start_response: Any) -> Any:
        Request(environ).get_data()
        status, body, headers = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return Response(body, status, headers)(environ, start_response)


JSON = {"Content-Type": "application/json"}
BUSY = (503, '{"code": 503, "status": "Service Unavailable", "message": "starting"}', JSON)


def scripted_client(base: str, sleeps: list[float], retries: int = 4) -> KBClient:
    transport = Transport(base, retries=retries, backoff=0.01, sleep=sleeps.append)
    return KBClient(transport=transport)


def test_503_and_429_are_retried_with_growing_backoff_then_succeed():
    app = Scripted(BUSY, (429, "{}", {**JSON, "Retry-After": "0"}), BUSY, (200, '{"v": 1}', JSON))
    sleeps: list[float] = []
    with serving(app) as base:  # type: ignore[arg-type]
        assert scripted_client(base, sleeps).health() == {"v": 1}
    assert app.calls == 4 and len(sleeps) == 3
    assert sleeps[0] <= 0.01 <= sleeps[2] <= 0.04


def test_retry_after_is_honoured_up_to_the_cap_and_exhaustion_raises_the_typed_error():
    app = Scripted((429, '{"message": "slow down"}', {**JSON, "Retry-After": "3"}))
    sleeps: list[float] = []
    with serving(app) as base, pytest.raises(RateLimited) as raised:  # type: ignore[arg-type]
        scripted_client(base, sleeps, retries=2).info()
    assert sleeps == [3.0, 3.0] and app.calls == 3
    assert raised.value.retry_after == 3.0 and raised.value.message == "slow down"


def test_a_503_after_every_retry_raises_service_unavailable():
    sleeps: list[float] = []
    with serving(Scripted(BUSY)) as base, pytest.raises(ServiceUnavailable):  # type: ignore[arg-type]
        scripted_client(base, sleeps, retries=1).add_document("kb", "text")
    assert len(sleeps) == 1


def test_a_non_json_error_page_becomes_a_server_error_with_its_text():
    app = Scripted((502, "<html>Bad gateway</html>", {"Content-Type": "text/html"}))
    with serving(app) as base, pytest.raises(ServerError) as raised:  # type: ignore[arg-type]
        scripted_client(base, [], retries=3).info()
    assert raised.value.status == 502 and "Bad gateway" in raised.value.message
    assert app.calls == 1  # 502 is not a status the client retries


def test_an_unreachable_service_is_retried_then_raises_a_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    sleeps: list[float] = []
    with pytest.raises(KBConnectionError) as raised:
        # A POST that never connected sent nothing, so even an add may be retried.
        scripted_client(f"http://127.0.0.1:{port}", sleeps, retries=2).add_document("kb", "t")
    assert len(sleeps) == 2 and "Connection refused" in raised.value.message


@pytest.fixture
def dropping_server() -> Iterator[tuple[str, list[int]]]:
    """Accepts connections, reads the request, and hangs up without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = [0]

    def run() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted[0] += 1
            connection.recv(65536)
            connection.close()

    threading.Thread(target=run, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    listener.close()


def test_a_dropped_connection_is_retried_for_reads_but_not_for_adds(dropping_server):
    base, accepted = dropping_server
    with pytest.raises(KBConnectionError):
        scripted_client(base, [], retries=2).get_document("kb", "a")
    assert accepted[0] == 3
    with pytest.raises(KBConnectionError):
        scripted_client(base, [], retries=2).add_document("kb", "text")
    assert accepted[0] == 4  # the add may have happened: it is not repeated


def test_the_readme_client_example_runs_and_finds_the_cat(url, capsys):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = re.search(r"## Python client.*?```python\n(.*?)```", readme, re.S).group(1)
    runnable = example.replace('"http://127.0.0.1:8000"', repr(url))
    assert runnable != example and len([line for line in example.splitlines() if line]) <= 6
    exec(compile(runnable, "README.md", "exec"), {})
    assert capsys.readouterr().out.split()[0] == "cat"


def test_a_query_or_batch_over_the_service_limits_raises_invalid_naming_the_limit(make_app):
    app = make_app(max_query_chars=20, max_batch_queries=2)
    with serving(app) as base, KBClient(base, retries=0) as client:
        client.create_knowledge_base("kb")
        client.add_documents("kb", [{"id": "a", "text": "x y"}])
        assert client.search("kb", "x" * 20)[0]["id"] == "a"
        with pytest.raises(Invalid, match="KB_MAX_QUERY_CHARS is 20") as raised:
            client.search("kb", "x" * 21)
        assert raised.value.errors == {"query": ["KB_MAX_QUERY_CHARS is 20"]}
        assert len(client.search_batch("kb", [{"query": "x"}] * 2)) == 2
        with pytest.raises(Invalid, match="KB_MAX_BATCH_QUERIES is 2"):
            client.search_batch("kb", [{"query": "x"}] * 3)
