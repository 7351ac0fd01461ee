"""The `postgres` backend beyond the port contracts: filters as SQL, schema migration, answers
equal to the `memory` backend's, the HNSW path's recall, and two servers on one database."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
import pytest

import postgres
from adapters.postgres.database import PostgresDatabase
from adapters.postgres.keyword_index import PgKeywordIndex
from adapters.postgres.pgvector_index import PgVectorIndex
from adapters.postgres.repository import PostgresDocumentRepository
from adapters.postgres.schema import LATEST, MIGRATIONS
from contracts import make_doc, make_kb, unit_rows
from domain.errors import StorageError, StorageUnavailableError
from domain.filters import matches, parse_filter
from domain.model import Chunk, Document, Layout, Span
from fakes import FakeEmbedder
from model_folder import l6_folder
from server import Server


@pytest.fixture
def database(pg_database: PostgresDatabase) -> PostgresDatabase:
    return pg_database


@pytest.fixture
def fresh_database_url() -> Iterator[str]:
    """The URL of a new, empty database on the test server (dropped afterwards)."""
    url = postgres.database_url()
    name = f"kb_fresh_{random.randrange(10**9)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    yield psycopg.conninfo.make_conninfo(**info)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


# Filters: SQL/JSON path in PostgreSQL, Python in the memory backend, the same answers.

VALUES: list[Any] = [
    0,
    1,
    2,
    2.5,
    -1,
    10**12,
    True,
    False,
    "a",
    "b",
    "B",
    "é",
    "ab",
    "",
    "5%",
    "%s",
]


def random_value(rng: random.Random) -> Any:
    if rng.random() < 0.25:
        return [rng.choice(VALUES) for _ in range(rng.randint(0, 3))]
    return rng.choice(VALUES)


def random_filter(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    if depth < 2 and rng.random() < 0.3:
        op = rng.choice(["$and", "$or"])
        return {op: [random_filter(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    if depth < 2 and rng.random() < 0.1:
        return {"$not": random_filter(rng, depth + 1)}
    key = rng.choice(["k", "n", "tag", "missing", "odd key \"'$.", "100%s"])
    op = rng.choice(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"])
    if op == "$exists":
        return {key: {op: rng.random() < 0.5}}
    if op in ("$in", "$nin"):
        return {key: {op: [rng.choice(VALUES) for _ in range(rng.randint(0, 3))]}}
    value = rng.choice([v for v in VALUES if not isinstance(v, bool)] if "t" in op else VALUES)
    return {key: {op: value}}


def test_every_filter_selects_the_same_documents_as_the_memory_backend(database):
    rng = random.Random(7)
    now = datetime.now(UTC)
    documents = []
    for i in range(60):
        metadata = {
            key: random_value(rng)
            for key in ("k", "n", "tag", "odd key \"'$.", "100%s")
            if rng.random() < 0.8
        }
        chunk = Chunk(i + 1, Span(0, 4))
        documents.append(Document(f"d{i:02d}", "text", metadata, now, now, (chunk,)))
    repository = PostgresDocumentRepository(database)
    repository.add_knowledge_base(make_kb())
    repository.add_documents("kb", documents, np.zeros((60, 8), np.float32))

    for spec in [{}, *(random_filter(rng) for _ in range(300))]:
        where = parse_filter(spec)
        expected = [doc.id for doc in documents if matches(where, doc.metadata)]
        found = [doc.id for doc in repository.list_documents("kb", 1000, where=where)]
        assert found == expected, spec
        labels = sorted(repository.chunk_ids_matching("kb", where))
        assert labels == [int(doc_id[1:]) + 1 for doc_id in expected], spec


def test_metadata_and_texts_come_back_exactly(database):
    now = datetime.now(UTC)
    metadata = {"z": 1, "a": 1.0, "big": 2**53 + 1, "list": ["x", 2, False], "ü": "ñ 😀"}
    document = Document("id é 😀", "text with ünïcode 😀\n\ttabs", metadata, now, now)
    repository = PostgresDocumentRepository(database)
    repository.add_knowledge_base(make_kb())
    repository.add_documents("kb", [document], np.zeros((0, 8), np.float32))
    stored = repository.get_document("kb", "id é 😀")
    assert stored == document
    assert list(stored.metadata) == ["z", "a", "big", "list", "ü"]  # key order kept
    assert isinstance(stored.metadata["a"], float) and isinstance(stored.metadata["z"], int)
    assert stored.created_at == now


# Schema


def test_workers_starting_together_create_the_schema_once(fresh_database_url):
    start = threading.Barrier(4)

    def open_database() -> None:
        start.wait()
        PostgresDatabase(fresh_database_url, pool_size=1).close()

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(open_database) for _ in range(4)]:
            future.result(timeout=60)
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT version FROM kb_schema").fetchall() == [(LATEST,)]


def test_a_newer_schema_is_refused_and_left_untouched(fresh_database_url):
    PostgresDatabase(fresh_database_url, pool_size=1).close()
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        conn.execute("UPDATE kb_schema SET version = %s", (LATEST + 1,))
    with pytest.raises(StorageError, match="newer"):
        PostgresDatabase(fresh_database_url, pool_size=1)
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT version FROM kb_schema").fetchall() == [(LATEST + 1,)]


def test_an_unreachable_database_is_a_storage_error_without_the_password():
    with pytest.raises(StorageError) as caught:
        PostgresDatabase("postgresql://kb:s3cret@127.0.0.1:1/kb", pool_size=1)
    assert "s3cret" not in caught.value.message


# The same answers as the memory backend

SEARCHES: list[dict[str, Any]] = [
    {"query": "red fruit", "top_k": 5},
    {"query": "a large animal", "top_k": 3, "filter": {"kind": "animal"}},
    {"query": "fruit or animal", "top_k": 4, "filter": {"n": {"$gte": 3, "$lt": 9}}},
    {"query": "banana", "top_k": 4, "diversity": 0.7},
    {"document_id": "d3", "top_k": 3},
    {"query": "stone", "top_k": 10, "min_score": 0.1},
    {"vector": [0.25] * 16, "top_k": 4},
]


def test_every_search_answers_as_on_the_memory_backend(make_app):
    words = ["red", "apple", "banana", "stone", "elephant", "large", "animal", "fruit", "grey"]
    rng = random.Random(3)
    documents = [
        {
            "id": f"d{i}",
            "text": " ".join(rng.choice(words) for _ in range(rng.randint(3, 30))),
            "metadata": {"kind": rng.choice(["animal", "fruit"]), "n": i},
        }
        for i in range(40)
    ]
    answers = []
    for backend in ("memory", "postgres"):
        client = make_app(backend=backend).test_client()
        assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
        response = client.post("/v1/knowledge-bases/kb/documents", json={"documents": documents})
        assert response.status_code == 201
        batch = client.post("/v1/knowledge-bases/kb/search/batch", json={"queries": SEARCHES})
        assert batch.status_code == 200, batch.get_json()
        answers.append(batch.get_json()["results"])
    memory, pg = answers
    for search, on_memory, on_postgres in zip(SEARCHES, memory, pg):
        assert [h["id"] for h in on_postgres["hits"]] == [h["id"] for h in on_memory["hits"]], (
            search
        )
        for a, b in zip(on_memory["hits"], on_postgres["hits"]):
            assert b["score"] == pytest.approx(a["score"], abs=1e-5)
            assert b["passage"] == a["passage"]


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder(dimension=16, window=8)


# The HNSW path


def test_a_filtered_search_through_hnsw_still_fills_top_k(database):
    PostgresDocumentRepository(database).add_knowledge_base(make_kb("kb", 16))
    index = PgVectorIndex(database, "kb", 16, exact_limit=0, background=False)
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(3000, 16)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    index.add(np.arange(1, 3001, dtype=np.int64), rows)
    assert index.build_index() and index.describe().kind == "hnsw"
    allowed = set(range(2900, 3001))  # 101 of 3,000: far from most queries
    for query in rows[:5]:
        found = index.search(query, 20, allowed)
        assert len(found) == 20 and {label for label, _ in found} <= allowed
        expected = sorted(allowed, key=lambda label: -float(rows[label - 1] @ query))[:20]
        assert [label for label, _ in found] == expected


@pytest.mark.model
@pytest.mark.timeout(600)  # embeds 2,150 texts with the real model
def test_hnsw_finds_at_least_098_of_the_exact_top_10_on_real_embeddings(database):
    from bench import corpus

    from adapters.embedding.batching import CoalescingEmbedder
    from adapters.embedding.sentence_transformer_encoder import SentenceTransformerEncoder

    texts = corpus.short_texts(2150)  # WordNet glosses: a few thousand real embeddings
    vectors = CoalescingEmbedder(SentenceTransformerEncoder(l6_folder())).embed(texts)
    documents, queries = vectors[:2000], vectors[2000:]
    PostgresDocumentRepository(database).add_knowledge_base(make_kb("kb", 384))
    approximate = PgVectorIndex(database, "kb", 384, exact_limit=0, background=False)
    exact = PgVectorIndex(database, "kb", 384, exact_limit=10**9)
    approximate.add(np.arange(1, 2001, dtype=np.int64), documents)
    assert approximate.build_index() and approximate.describe().kind == "hnsw"
    found = 0
    for query in queries:
        truth = {label for label, _ in exact.search(query, 10)}
        found += len(truth & {label for label, _ in approximate.search(query, 10)})
    assert found / (10 * len(queries)) >= 0.98


# Two servers, one database


def every_worker_ready(server: Server) -> None:
    """/readyz answers from whichever worker accepts: 20 successes in a row means all are up."""
    streak = 0
    for _ in range(3000):
        streak = streak + 1 if server.call("GET", "/readyz")[0] == 200 else 0
        if streak == 20:
            return
        time.sleep(0.05)
    raise TimeoutError("not every worker became ready")


@pytest.mark.server
@pytest.mark.model
@pytest.mark.timeout(900)  # three workers start, then 100 writes race
def test_two_servers_on_one_database_lose_no_write_and_answer_alike(tmp_path):
    url = postgres.database_url()
    postgres.clean(url)
    settings = {"KB_BACKEND": "postgres", "KB_DATABASE_URL": url, "KB_EMBEDDING_MODEL": l6_folder()}
    servers = [
        Server(tmp_path / "a.log", KB_WORKERS="2", **settings),
        Server(tmp_path / "b.log", **settings),
    ]
    try:
        for server in servers:
            server.wait_ready()
            every_worker_ready(server)
        assert servers[0].call("POST", "/v1/knowledge-bases", {"name": "shared"})[0] == 201
        docs = "/v1/knowledge-bases/shared/documents"

        def write(writer: int) -> list[str]:
            server = servers[writer % 2]
            stored = []
            for i in range(12):
                doc = {"id": f"w{writer}-{i}", "text": f"note {i} from writer {writer}"}
                status, body = server.call("POST", docs, {"documents": [doc]})
                assert status == 201, body
                stored.append(doc["id"])
                status, body = server.call(
                    "POST", "/v1/knowledge-bases/shared/search", {"query": "note"}
                )
                assert status in (200, 404), body
            return stored

        def race(attempt: int) -> int:
            doc = {"id": "contested", "text": f"attempt {attempt}"}
            return servers[attempt % 2].call("POST", docs, {"documents": [doc]})[0]

        with ThreadPoolExecutor(8) as pool:
            writers = [pool.submit(write, w) for w in range(4)]
            races = [pool.submit(race, a) for a in range(4)]
            expected = sorted(i for f in writers for i in f.result(timeout=300))
            outcomes = sorted(f.result(timeout=300) for f in races)
        assert outcomes == [201, 409, 409, 409]

        listings, answers = [], []
        for server in servers:
            status, page = server.call("GET", docs + "?limit=1000")
            assert status == 200
            listings.append([item["id"] for item in page["items"]])
            status, found = server.call(
                "POST", "/v1/knowledge-bases/shared/search", {"query": "writer 2", "top_k": 20}
            )
            assert status == 200
            answers.append([(hit["id"], round(hit["score"], 5)) for hit in found["hits"]])
        assert listings[0] == listings[1] == sorted([*expected, "contested"])
        assert answers[0] == answers[1] and len(answers[0]) == 20
        status, info = servers[1].call("GET", "/v1/knowledge-bases/shared")
        assert info["document_count"] == len(expected) + 1
    finally:
        for server in servers:
            server.stop()


def test_ping_says_the_database_does_not_answer_once_the_pool_is_gone(database):
    database.ping()
    database.close()
    with pytest.raises(StorageUnavailableError, match="PostgreSQL does not answer"):
        database.ping()


def test_a_statement_too_complex_is_a_storage_error_that_does_not_invite_a_retry(database):
    nested = "SELECT " + "(1+" * 1000 + "1" + ")" * 1000
    with pytest.raises(StorageError, match="stack depth") as caught, database.connection() as conn:
        conn.execute("SET max_stack_depth = '100kB'")  # undone with the failed transaction
        conn.execute(nested)  # type: ignore[arg-type]
    assert not isinstance(caught.value, StorageUnavailableError)


class FailingKeywords(PgKeywordIndex):
    """Writes its rows, then fails: the last step of a write going wrong."""

    def add(self, documents):
        super().add(documents)
        raise RuntimeError("keyword index failed")


def test_a_write_that_fails_half_way_leaves_nothing_behind(database):
    from domain import KnowledgeBaseService, NewDocument

    repository = PostgresDocumentRepository(database)
    service = KnowledgeBaseService(
        FakeEmbedder(dimension=8, window=8),
        repository,
        lambda kb: PgVectorIndex(database, kb.name, kb.dimension),
        lambda kb: FailingKeywords(database, kb.name),
        transaction=database.transaction,
        snapshot=database.snapshot,
    )
    service.create_knowledge_base("kb")
    batch = [NewDocument(f"text {i} " * 20, id=f"d{i}") for i in range(5)]
    with pytest.raises(RuntimeError, match="keyword index failed"):
        service.add_documents("kb", batch)
    assert repository.stats("kb").document_count == 0
    assert repository.list_documents("kb", 10) == []
    assert len(PgVectorIndex(database, "kb", 8)) == 0
    assert len(PgKeywordIndex(database, "kb")) == 0
    with database.connection() as conn:
        assert conn.execute("SELECT count(*) FROM kb_vectors").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM kb_chunks").fetchone() == (0,)


def test_passing_the_exact_limit_builds_the_hnsw_index_in_the_background(database):
    from domain import KnowledgeBaseService, NewDocument, SearchRequest

    service = KnowledgeBaseService(
        FakeEmbedder(dimension=8, window=8),
        PostgresDocumentRepository(database),
        lambda kb: PgVectorIndex(database, kb.name, kb.dimension, exact_limit=50),
        transaction=database.transaction,
        snapshot=database.snapshot,
    )
    service.create_knowledge_base("kb")
    service.add_documents("kb", [NewDocument(f"doc {i} words", id=f"d{i}") for i in range(40)])
    assert service.get_knowledge_base("kb").index.kind == "flat"
    service.add_documents("kb", [NewDocument(f"more {i} text", id=f"m{i}") for i in range(40)])
    deadline = time.monotonic() + 60
    while service.get_knowledge_base("kb").index.kind != "hnsw":
        assert time.monotonic() < deadline, "the HNSW index was not built"
        time.sleep(0.2)
    hits = service.search("kb", SearchRequest(query="doc 7 words", top_k=3))
    assert hits[0].id == "d7" and hits[0].score == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_database_gone_mid_service_is_a_503_that_says_so(make_app):
    app = make_app()
    client = app.test_client()
    assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
    app.extensions["kb_container"].backend().database().close()
    response = client.get("/v1/knowledge-bases/kb")
    assert response.status_code == 503
    assert "database unavailable" in response.get_json()["message"]
    assert client.get("/readyz").status_code == 503


def wait_for_lock_waiters(count: int, seconds: float = 30) -> None:
    """Until `count` sessions of the test database wait on a lock. In autocommit, so each poll
    reads pg_stat_activity afresh: inside one transaction it is a snapshot taken at the first."""
    deadline = time.monotonic() + seconds
    with psycopg.connect(postgres.database_url(), autocommit=True) as watcher:
        while watcher.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone() != (count,):
            assert time.monotonic() < deadline, f"{count} sessions never queued on the lock"
            time.sleep(0.05)


@pytest.mark.parametrize("existing", [False, True])
def test_two_processes_upserting_one_id_at_once_leave_one_clean_document(database, existing):
    from domain import KnowledgeBaseService

    def service() -> KnowledgeBaseService:  # one per "process": its own catalog and locks
        return KnowledgeBaseService(
            FakeEmbedder(dimension=8, window=8),
            PostgresDocumentRepository(database),
            lambda kb: PgVectorIndex(database, kb.name, kb.dimension),
            lambda kb: PgKeywordIndex(database, kb.name),
            transaction=database.transaction,
            snapshot=database.snapshot,
        )

    first, second = service(), service()
    first.create_knowledge_base("kb")
    if existing:
        first.upsert_document("kb", "doc", "the original text")
    blocker = psycopg.connect(postgres.database_url())
    blocker.execute("SELECT 1 FROM kb_knowledge_bases WHERE name = 'kb' FOR UPDATE")
    with ThreadPoolExecutor(2) as pool:
        try:
            writes = [
                pool.submit(writer.upsert_document, "kb", "doc", f"text from writer {i}")
                for i, writer in enumerate((first, second))
            ]
            wait_for_lock_waiters(2)
        finally:
            # Always let the writers go: else the pool's exit waits on them for ever.
            blocker.rollback()
            blocker.close()
        outcomes = [write.result(timeout=30) for write in writes]
    created = [was_created for _, was_created in outcomes]
    assert created == [False, False] if existing else sorted(created) == [False, True]
    with database.connection() as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM kb_documents), (SELECT count(*) FROM kb_chunks), "
            "(SELECT count(*) FROM kb_vectors), (SELECT count(*) FROM kb_keywords)"
        ).fetchone()
    assert counts == (1, 1, 1, 1)
    stats = PostgresDocumentRepository(database).stats("kb")
    assert (stats.document_count, stats.chunk_count) == (1, 1)
    assert len(PgVectorIndex(database, "kb", 8)) == 1


def test_deleting_a_knowledge_base_never_queues_behind_an_index_build(database):
    repository = PostgresDocumentRepository(database)
    repository.add_knowledge_base(make_kb("kb", 8))
    index = PgVectorIndex(database, "kb", 8, exact_limit=0, background=False)
    rows = np.eye(8, dtype=np.float32)
    index.add(np.arange(1, 9, dtype=np.int64), rows)
    assert index.build_index()
    with psycopg.connect(postgres.database_url()) as builder:
        # What CREATE INDEX CONCURRENTLY of another knowledge base holds while it runs.
        builder.execute("LOCK TABLE kb_vectors IN SHARE UPDATE EXCLUSIVE MODE")
        started = time.monotonic()
        repository.remove_knowledge_base("kb")  # gives up on the drop, not on the delete
        assert time.monotonic() - started < 10
        with pytest.raises(StorageError, match="busy"):
            repository.add_knowledge_base(make_kb("kb", 4))  # the old index must go first
        builder.rollback()
    repository.add_knowledge_base(make_kb("kb", 4))
    other = PgVectorIndex(database, "kb", 4)
    other.add(np.arange(20, 24, dtype=np.int64), np.eye(4, dtype=np.float32))
    assert other.search(np.eye(4, dtype=np.float32)[2], 1)[0][0] == 22


def test_a_database_from_before_layouts_migrates_and_then_keeps_layouts(
    fresh_database_url: str,
) -> None:
    database = PostgresDatabase(fresh_database_url, pool_size=1)
    repository = PostgresDocumentRepository(database)
    repository.add_knowledge_base(make_kb())
    old = make_doc("a", [1])
    repository.add_documents("kb", [old], unit_rows(1))
    database.close()
    before = next(i for i, step in enumerate(MIGRATIONS) if "ADD COLUMN layout" in step)
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        for step in MIGRATIONS[before:]:  # this one and any later: computed, not assumed
            for table, column in re.findall(r"ALTER TABLE (\w+) ADD COLUMN (\w+)", step):
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("UPDATE kb_schema SET version = %s", (before,))
    database = PostgresDatabase(fresh_database_url, pool_size=1)
    try:
        repository = PostgresDocumentRepository(database)
        assert repository.get_document("kb", "a") == old and old.layout == Layout()
        paged = replace(make_doc("b", [2]), layout=Layout(sections=(0, 4), pages=(4, 6)))
        repository.add_documents("kb", [paged], unit_rows(1))
        assert repository.get_document("kb", "b") == paged
        assert repository.documents_for_chunks("kb", [2]) == {2: paged}
    finally:
        database.close()
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT version FROM kb_schema").fetchall() == [(LATEST,)]
