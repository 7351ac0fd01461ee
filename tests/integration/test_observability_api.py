"""Metrics, request ids, JSON request logs, readiness of the database, and CORS over HTTP."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.both_backends

KB_ROUTE = "/v1/knowledge-bases/<string:kb>"


def samples(client, name: str) -> dict[frozenset, float]:
    """Every sample called `name` on /metrics, keyed by its labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
        if sample.name == name
    }


def labels(**values: str) -> frozenset:
    return frozenset(values.items())


def test_requests_are_counted_per_route_template_method_and_status(client, kb):
    client.get(f"/v1/knowledge-bases/{kb}")
    client.get(f"/v1/knowledge-bases/{kb}")
    client.get("/v1/knowledge-bases/secret-name")
    client.get("/no/such/page")

    counts = samples(client, "kb_http_requests_total")
    assert counts[labels(method="GET", route=KB_ROUTE, status="200")] == 2
    assert counts[labels(method="GET", route=KB_ROUTE, status="404")] == 1
    assert counts[labels(method="GET", route="unmatched", status="404")] == 1
    assert not any("secret-name" in value for key in counts for _, value in key)


def test_latency_is_a_histogram_per_route_and_status(client, kb):
    client.get(f"/v1/knowledge-bases/{kb}")

    buckets = samples(client, "kb_http_request_duration_seconds_bucket")
    route = labels(method="GET", route=KB_ROUTE, status="200", le="+Inf")
    assert buckets[route] == 1
    assert samples(client, "kb_http_request_duration_seconds_sum")[route - {("le", "+Inf")}] > 0


def test_documents_and_chunks_per_knowledge_base_are_read_at_scrape_time(
    client, create_kb, add_documents
):
    create_kb("one")
    create_kb("two")
    add_documents("one", {"text": "short"}, {"text": " ".join(["word"] * 40)})

    documents = samples(client, "kb_documents")
    chunks = samples(client, "kb_chunks")
    assert documents == {labels(knowledge_base="one"): 2, labels(knowledge_base="two"): 0}
    assert chunks[labels(knowledge_base="one")] > 2
    client.delete("/v1/knowledge-bases/two")
    assert labels(knowledge_base="two") not in samples(client, "kb_documents")


@pytest.mark.model
def test_model_batches_are_measured_through_the_coalescer():
    from entrypoints.app import close_app, create_app
    from entrypoints.settings import Settings
    from model_folder import l6_folder

    app = create_app(Settings(data_dir=":memory:", embedding_model=l6_folder()))
    try:
        client = app.test_client()
        client.post("/v1/knowledge-bases", json={"name": "kb"})
        docs = [{"text": f"sentence number {i}"} for i in range(5)]
        added = client.post("/v1/knowledge-bases/kb/documents", json={"documents": docs})
        assert added.status_code == 201
        assert samples(client, "kb_model_batch_size_sum")[frozenset()] >= 5
        assert samples(client, "kb_model_batch_size_count")[frozenset()] >= 1
        assert samples(client, "kb_model_encode_seconds_sum")[frozenset()] > 0
    finally:
        close_app(app)


def test_a_client_request_id_is_echoed_and_a_missing_or_unsafe_one_is_generated(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == (
        "abc-123"
    )
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    for unsafe in ("x" * 200, "has space", 'quote"d'):
        echoed = client.get("/healthz", headers={"X-Request-ID": unsafe}).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)


@pytest.fixture
def access_lines():
    stream = io.StringIO()
    access = logging.getLogger("kb.access")
    handler = logging.StreamHandler(stream)
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    access.removeHandler(handler)
    access.setLevel(logging.NOTSET)


def test_each_request_logs_one_json_line_without_document_text(client, kb, access_lines):
    secret_text = "the confidential text of a document"
    client.post(f"/v1/knowledge-bases/{kb}/documents", json={"id": "d1", "text": secret_text})
    client.post(f"/v1/knowledge-bases/{kb}/search", json={"query": secret_text},
                headers={"X-Request-ID": "req-7"})  # fmt: skip

    add, search = access_lines()
    assert add["method"] == "POST" and add["status"] == 201
    assert add["route"] == "/v1/knowledge-bases/<string:kb>/documents"
    assert search["request_id"] == "req-7" and search["status"] == 200
    assert isinstance(search["duration_ms"], float) and search["duration_ms"] >= 0
    assert {"ts", "event", "request_id", "method", "route", "status", "duration_ms"} <= set(add)
    assert "confidential" not in json.dumps([add, search])


def test_readyz_reports_the_sqlite_database_reachable_then_503_when_it_is_not(make_app, tmp_path):
    app = make_app(data_dir=str(tmp_path))
    client = app.test_client()
    assert client.get("/readyz").get_json()["database"] == "reachable"

    app.extensions["kb_container"].repository()._db.close()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "database unreachable" in response.get_json()["message"]


def test_readyz_says_in_process_or_asks_the_database(client, backend):
    expected = "reachable" if backend == "postgres" else "in-process"
    assert client.get("/readyz").get_json()["database"] == expected


def test_cors_is_off_by_default(client):
    response = client.get("/v1/info", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_allows_only_the_configured_origins_even_before_a_key_is_checked(make_app):
    origins = "https://app.example, https://b.example"
    client = make_app(cors_origins=origins, api_keys="k").test_client()
    preflight = client.options(
        "/v1/knowledge-bases/kb/search",
        headers={
            "Origin": "https://b.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://b.example"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    allowed = client.get("/v1/info", headers={"Origin": "https://app.example", "X-API-Key": "k"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "X-Request-ID" in allowed.headers["Access-Control-Expose-Headers"]
    other = client.get("/v1/info", headers={"Origin": "https://evil.example", "X-API-Key": "k"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_the_coalescer_tells_its_observer_the_size_and_time_of_each_model_call():
    import numpy as np

    from adapters.embedding.coalescer import Coalescer

    seen: list[tuple[int, float]] = []
    coalescer = Coalescer(
        lambda texts: np.ones((len(texts), 4), np.float32),
        4,
        token_budget=3 * 10,
        max_tokens=10,
        size=lambda text: 10,
        observer=lambda size, seconds: seen.append((size, seconds)),
    )
    coalescer(["a", "b", "c", "d", "e"])

    assert [size for size, _ in seen] == [3, 2]  # the token budget splits 5 texts into 3 + 2
    assert all(seconds >= 0 for _, seconds in seen)
