"""Threads adding, upserting, deleting and searching one knowledge base at once over HTTP."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from entrypoints.app import close_app
from fakes import FakeEmbedder

pytestmark = pytest.mark.both_backends

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
            claim = {"id": "contested", "text": text_of("contested", f"by{thread}")}
            contested = client.post(DOCS, json=claim)
            assert contested.status_code in (201, 409), contested.get_json()
            expected.contested_wins += contested.status_code == 201
            shared = client.put(f"{DOCS}/shared", json={"text": text_of("shared", f"by{thread}")})
            assert shared.status_code in (200, 201), shared.get_json()
        if j % 2 == 1:
            check_hits(client.post(SEARCH, json={"query": "long0 long1 long2", "top_k": 20}))
    return expected


@pytest.fixture
def busy_kb(create_kb):
    return create_kb(KB)["name"]


def walk(client, path: str, limit: int = 37) -> list[dict]:
    items, cursor = [], None
    while True:
        query = {"limit": limit} if cursor is None else {"limit": limit, "cursor": cursor}
        page = client.get(path, query_string=query).get_json()
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if cursor is None:
            return items


def run_threads(app) -> dict[str, tuple[str, dict]]:
    start = threading.Barrier(THREADS)
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(work, app, thread, start) for thread in range(THREADS)]
        outcomes = [future.result(timeout=60) for future in futures]
    assert sum(outcome.contested_wins for outcome in outcomes) == 1
    return {doc_id: doc for outcome in outcomes for doc_id, doc in outcome.documents.items()}


def assert_documents_and_index_agree(client, expected: dict[str, tuple[str, dict]]) -> None:
    stored = {doc["id"]: doc for doc in walk(client, DOCS)}
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


@pytest.mark.parametrize("storage", ["ram", "sqlite"])
def test_concurrent_writes_and_searches_leave_index_and_documents_in_agreement(
    make_app, tmp_path, storage
):
    data_dir = ":memory:" if storage == "ram" else str(tmp_path / "kb-data")
    app = make_app(data_dir=data_dir)
    assert app.test_client().post("/v1/knowledge-bases", json={"name": KB}).status_code == 201

    expected = run_threads(app)

    assert_documents_and_index_agree(app.test_client(), expected)
    if storage == "sqlite":
        # What the threads were told was stored must come back, index and all, after a restart.
        close_app(app)
        assert_documents_and_index_agree(make_app(data_dir=data_dir).test_client(), expected)


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


class GatedEmbedder(FakeEmbedder):
    """Holds any batch mentioning "gate" until released, to pin a race in place."""

    def __init__(self) -> None:
        super().__init__(dimension=32, window=16)
        self.entered = threading.Event()
        self.release = threading.Event()

    def embed(self, texts):
        if any("gate" in text for text in texts):
            self.entered.set()
            assert self.release.wait(10)
        return super().embed(texts)


class TestWritesRacingTheDeleteOfTheirKnowledgeBase:
    @pytest.fixture
    def fake_embedder(self):
        return GatedEmbedder()

    @pytest.mark.parametrize("write", ["post", "put"])
    def test_a_write_racing_a_delete_and_recreate_never_leaves_an_unsearchable_document(
        self, app, client, fake_embedder, write
    ):
        client.post("/v1/knowledge-bases", json={"name": KB})
        outcome = {}

        def racing_write():
            writer = app.test_client()
            if write == "post":
                outcome["response"] = writer.post(DOCS, json={"id": "g", "text": "gate text"})
            else:
                outcome["response"] = writer.put(f"{DOCS}/g", json={"text": "gate text"})

        thread = threading.Thread(target=racing_write)
        thread.start()
        assert fake_embedder.entered.wait(10)
        assert client.delete(f"/v1/knowledge-bases/{KB}").status_code == 204
        assert client.post("/v1/knowledge-bases", json={"name": KB}).status_code == 201
        fake_embedder.release.set()
        thread.join(10)

        assert outcome["response"].status_code < 500
        listed = [doc["id"] for doc in walk(client, DOCS)]
        found = check_hits(client.post(SEARCH, json={"query": "gate text", "top_k": 1000}))
        assert [hit["id"] for hit in found] == listed
        stats = client.get(f"/v1/knowledge-bases/{KB}").get_json()
        assert stats["document_count"] == len(listed)
