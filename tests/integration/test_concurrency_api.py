"""Threads adding, upserting, deleting and searching one knowledge base at once over HTTP."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

THREADS = 8
ROUNDS = 6
KB = "busy"
DOCS = f"/v1/knowledge-bases/{KB}/documents"
SEARCH = f"/v1/knowledge-bases/{KB}/search"
LONG_TAIL = " ".join(f"long{k}" for k in range(30))


@dataclass
class Expected:
    """What one thread's operations must leave behind: id -> (text, metadata)."""

    documents: dict[str, tuple[str, dict]] = field(default_factory=dict)
    contested_wins: int = 0


def text_of(doc_id: str, version: str, long: bool = False) -> str:
    # The id is the first word, so a hit whose text does not start with its id is confused.
    text = f"{doc_id} {version} words {doc_id[-1]}"
    return f"{text} {LONG_TAIL}" if long else text


def probe(text: str) -> str:
    """A query equal to the text's first window, so its best chunk scores exactly 1.0."""
    return " ".join(text.split()[:16])


def check_hits(response, allowed: set[str] | None = None) -> list[dict]:
    assert response.status_code == 200, response.get_json()
    hits = response.get_json()["hits"]
    ids = [hit["id"] for hit in hits]
    assert len(ids) == len(set(ids)), ids
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)
    for hit in hits:
        assert hit["text"].split()[0] == hit["id"], hit
        if allowed is not None:
            assert hit["id"] in allowed
    return hits


def work(app, thread: int, start: threading.Barrier) -> Expected:
    client = app.test_client()
    expected = Expected()
    start.wait()
    for j in range(ROUNDS):
        a, b = f"t{thread}_r{j}_a", f"t{thread}_r{j}_b"
        long = j % 4 == 1
        first, second = text_of(a, "one", long), text_of(a, "two", not long)
        response = client.post(
            DOCS,
            json={"documents": [{"id": a, "text": first}, {"id": b, "text": text_of(b, "one")}]},
        )
        assert response.status_code == 201, response.get_json()

        response = client.put(f"{DOCS}/{a}", json={"text": second, "metadata": {"v": 2}})
        assert response.status_code == 200, response.get_json()
        response = client.put(f"{DOCS}/{b}", json={"text": text_of(b, "one"), "metadata": {"v": 2}})
        assert response.status_code == 200, response.get_json()

        check_hits(client.post(SEARCH, json={"query": f"{a} two words", "top_k": 5}))
        own = check_hits(client.post(SEARCH, json={"document_id": b, "top_k": 5}))
        assert b not in {hit["id"] for hit in own}

        if j % 2 == 0:
            assert client.delete(f"{DOCS}/{b}").status_code == 204
        else:
            expected.documents[b] = (text_of(b, "one"), {"v": 2})
        if j % 3 == 0:
            deleted = client.post(f"{DOCS}/delete", json={"ids": [a, "never-existed"]})
            assert deleted.get_json()["deleted"] == [a]
        else:
            expected.documents[a] = (second, {"v": 2})

        if j == ROUNDS // 2:
            contested = client.post(DOCS, json={"id": "contested", "text": text_of("contested", f"by{thread}")})
            assert contested.status_code in (201, 409), contested.get_json()
            expected.contested_wins += contested.status_code == 201
            shared = client.put(f"{DOCS}/shared", json={"text": text_of("shared", f"by{thread}")})
            assert shared.status_code in (200, 201), shared.get_json()
        if j % 2 == 1:
            check_hits(client.post(SEARCH, json={"query": "long0 long1 long2", "top_k": 1000}))
    return expected


@pytest.fixture
def busy_kb(create_kb):
    return create_kb(KB)["name"]


def test_concurrent_writes_and_searches_leave_index_and_documents_in_agreement(
    app, client, busy_kb, list_all
):
    start = threading.Barrier(THREADS)
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(work, app, thread, start) for thread in range(THREADS)]
        outcomes = [future.result(timeout=60) for future in futures]

    expected = {doc_id: doc for outcome in outcomes for doc_id, doc in outcome.documents.items()}
    assert sum(outcome.contested_wins for outcome in outcomes) == 1
    stored = {doc["id"]: doc for doc in list_all(DOCS, 37)}
    assert set(stored) == set(expected) | {"contested", "shared"}
    for doc_id, (text, metadata) in expected.items():
        assert (stored[doc_id]["text"], stored[doc_id]["metadata"]) == (text, metadata)
    winners = {text_of(name, f"by{t}") for t in range(THREADS) for name in ("contested", "shared")}
    assert stored["contested"]["text"] in winners
    assert stored["shared"]["text"] in winners

    stats = client.get(f"/v1/knowledge-bases/{KB}").get_json()
    assert stats["document_count"] == len(stored)
    assert stats["chunk_count"] == sum(doc["chunks"] for doc in stored.values())

    everyone = set(stored)
    for query in ("words", "long0 long1", "t3_r1_a two", "contested shared"):
        hits = check_hits(client.post(SEARCH, json={"query": query, "top_k": 1000}), everyone)
        assert len(hits) == len(everyone)
    some = sorted(everyone)[0]
    hits = check_hits(client.post(SEARCH, json={"document_id": some, "top_k": 1000}), everyone)
    assert {hit["id"] for hit in hits} == everyone - {some}

    for doc_id, doc in stored.items():
        (first,) = check_hits(
            client.post(SEARCH, json={"query": probe(doc["text"]), "top_k": 1}), everyone
        )
        assert first["id"] == doc_id
        assert first["score"] == pytest.approx(1.0, abs=1e-5)


def test_concurrent_adds_of_one_id_let_exactly_one_win(app, busy_kb, list_all):
    start = threading.Barrier(THREADS)

    def add(thread: int) -> int:
        client = app.test_client()
        start.wait()
        response = client.post(DOCS, json={"id": "race", "text": f"race won by thread{thread}"})
        return response.status_code

    with ThreadPoolExecutor(THREADS) as pool:
        statuses = list(pool.map(add, range(THREADS)))

    assert sorted(statuses) == [201] + [409] * (THREADS - 1)
    (stored,) = list_all(DOCS)
    winner = stored["text"]
    (hit,) = app.test_client().post(SEARCH, json={"query": winner}).get_json()["hits"]
    assert (hit["id"], hit["text"]) == ("race", winner)
    assert hit["score"] == pytest.approx(1.0, abs=1e-5)


def test_searches_during_a_knowledge_base_delete_see_it_whole_or_not_at_all(
    app, busy_kb, add_documents
):
    add_documents(KB, *({"id": f"d{i}", "text": f"d{i} shared words"} for i in range(50)))
    start = threading.Barrier(THREADS)

    def search_until_gone(thread: int) -> set[int]:
        client = app.test_client()
        start.wait()
        seen: set[int] = set()
        for _ in range(40):
            response = client.post(SEARCH, json={"query": "shared words", "top_k": 1000})
            assert response.status_code in (200, 404), response.get_json()
            if response.status_code == 200:
                seen.add(len(response.get_json()["hits"]))
        return seen

    with ThreadPoolExecutor(THREADS + 1) as pool:
        futures = [pool.submit(search_until_gone, thread) for thread in range(THREADS - 1)]
        start.wait()
        deleted = app.test_client().delete(f"/v1/knowledge-bases/{KB}")
        sizes = set().union(*(future.result(timeout=60) for future in futures))

    assert deleted.status_code == 204
    assert sizes <= {50}
