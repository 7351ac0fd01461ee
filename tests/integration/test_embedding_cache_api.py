"""The embedding cache over HTTP, on both backends: built by the container from
KB_EMBEDDING_CACHE_MB in front of the batching embedder, counted on /metrics, shown on /v1/info."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from entrypoints import container as container_module
from fakes import FakeEncoder

pytestmark = pytest.mark.both_backends

DOCUMENTS = [
    {"id": f"d{n}", "text": f"document {n} about rivers and {n % 7} owls"} for n in range(30)
]
LONG = {"id": "long", "text": " ".join(f"word{n % 50} river owl" for n in range(200))}


@pytest.fixture
def encoder(monkeypatch) -> FakeEncoder:
    """The model the container builds: a counting fake, behind the real batching and cache."""
    fake = FakeEncoder(dimension=32, window=16)
    monkeypatch.setattr(container_module, "make_encoder", lambda *_: fake)
    return fake


@pytest.fixture
def make_cached_app(make_app, make_container, encoder):
    def make(**settings):
        container = make_container(**settings)
        container.embedder.reset_override()  # the container's own: make_embedder's stack
        return make_app(container)

    return make


def metric(client, name: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]
    assert len(values) == 1, name
    return values[0]


def import_into(client, name: str) -> None:
    assert client.post("/v1/knowledge-bases", json={"name": name}).status_code == 201
    body = {"documents": [*DOCUMENTS, LONG]}
    response = client.post(f"/v1/knowledge-bases/{name}/documents", json=body)
    assert response.status_code == 201, response.get_json()


def test_a_second_knowledge_base_of_the_same_documents_runs_the_model_0_times(
    make_cached_app, encoder
):
    client = make_cached_app(embedding_cache_mb=16).test_client()
    assert client.get("/v1/info").get_json()["embedding_cache_mb"] == 16
    import_into(client, "first")
    embedded = sum(len(call) for call in encoder.calls)
    assert metric(client, "kb_embedding_cache_misses_total") == embedded
    assert metric(client, "kb_embedding_cache_entries") == embedded
    import_into(client, "second")
    assert sum(len(call) for call in encoder.calls) == embedded
    assert metric(client, "kb_embedding_cache_hits_total") == embedded
    assert 0 < metric(client, "kb_embedding_cache_bytes") <= 16 * 2**20
    assert metric(client, "kb_embedding_cache_evictions_total") == 0
    for query in ({"query": "rivers and owls"}, {"document_id": "long"}, {"query": LONG["text"]}):
        first, second = (
            client.post(f"/v1/knowledge-bases/{kb}/search", json={**query, "top_k": 40}).get_json()
            for kb in ("first", "second")
        )
        assert first == second and first["hits"]


def test_a_bound_of_0_turns_the_cache_off(make_cached_app, encoder):
    client = make_cached_app(embedding_cache_mb=0).test_client()
    assert client.get("/v1/info").get_json()["embedding_cache_mb"] == 0
    import_into(client, "first")
    once = sum(len(call) for call in encoder.calls)
    import_into(client, "second")
    assert sum(len(call) for call in encoder.calls) == 2 * once
    assert metric(client, "kb_embedding_cache_hits_total") == 0
