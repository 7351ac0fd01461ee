"""Every KB_* limit refuses with a 4xx whose message names the limit and its value."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.both_backends

KBS = "/v1/knowledge-bases"


def metadata(keys: int, value: str = "v") -> dict[str, str]:
    return {f"k{i}": value for i in range(keys)}


@pytest.fixture
def limited(make_app):
    app = make_app(
        max_body_bytes=4096,
        max_batch_documents=3,
        max_text_chars=50,
        max_metadata_keys=4,
        max_metadata_bytes=200,
        max_top_k=5,
        max_knowledge_bases=2,
        max_query_chars=20,
        max_batch_queries=3,
    )
    client = app.test_client()
    assert client.post(KBS, json={"name": "kb"}).status_code == 201
    return client


FIVE = metadata(5)
REFUSED = [
    ("post", f"{KBS}/kb/documents", {"documents": [{"text": "x"}] * 4}, 422,
     "KB_MAX_BATCH_DOCUMENTS is 3"),
    ("post", f"{KBS}/kb/documents", {"text": "x" * 51}, 422, "KB_MAX_TEXT_CHARS is 50"),
    ("put", f"{KBS}/kb/documents/d", {"text": "x" * 51}, 422, "KB_MAX_TEXT_CHARS is 50"),
    ("post", f"{KBS}/kb/documents", {"text": "x", "metadata": metadata(5)}, 422,
     "KB_MAX_METADATA_KEYS is 4"),
    ("post", f"{KBS}/kb/documents", {"documents": [{"text": "x"}, {"text": "y", "metadata": FIVE}]},
     422, "KB_MAX_METADATA_KEYS is 4"),
    ("put", f"{KBS}/kb/documents/d", {"text": "x", "metadata": metadata(5)}, 422,
     "KB_MAX_METADATA_KEYS is 4"),
    ("patch", f"{KBS}/kb/documents/d", {"metadata": metadata(2, "é" * 100)}, 422,
     "KB_MAX_METADATA_BYTES is 200"),
    ("post", KBS, {"name": "other", "metadata": metadata(5)}, 422, "KB_MAX_METADATA_KEYS is 4"),
    ("patch", f"{KBS}/kb", {"metadata": {"k": "x" * 300}}, 422, "KB_MAX_METADATA_BYTES is 200"),
    ("post", f"{KBS}/kb/search", {"query": "x", "top_k": 6}, 422, "KB_MAX_TOP_K is 5"),
    ("post", f"{KBS}/kb/search/batch", {"queries": [{"query": "x"}, {"query": "y", "top_k": 6}]},
     422, "KB_MAX_TOP_K is 5"),
    ("post", f"{KBS}/kb/documents", {"text": "x" * 5000}, 413, "KB_MAX_BODY_BYTES is 4096"),
    ("post", f"{KBS}/kb/search", {"query": "x" * 21}, 422, "KB_MAX_QUERY_CHARS is 20"),
    ("post", f"{KBS}/kb/search", {"query": "x " * 10 + "é"}, 422, "KB_MAX_QUERY_CHARS is 20"),
    ("post", f"{KBS}/kb/search/batch", {"queries": [{"query": "x"}, {"query": "y" * 21}]},
     422, "KB_MAX_QUERY_CHARS is 20"),
    ("post", f"{KBS}/kb/search/batch", {"queries": [{"query": "x"}] * 4}, 422,
     "KB_MAX_BATCH_QUERIES is 3"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    REFUSED,
    ids=[f"{r[0]} {r[1]} {r[4]}" for r in REFUSED],
)
def test_a_request_over_a_limit_is_refused_naming_the_limit_and_its_value(
    limited, method, path, body, status, message, expect_error
):
    before = limited.get(f"{KBS}/kb").get_json()
    response = getattr(limited, method)(path, json=body)

    refusal = expect_error(response, status)
    assert message in refusal["message"]
    assert limited.get(f"{KBS}/kb").get_json() == before


def test_requests_at_the_limits_are_accepted(limited):
    documents = [{"text": "x" * 50, "metadata": metadata(4)} for _ in range(3)]
    assert limited.post(f"{KBS}/kb/documents", json={"documents": documents}).status_code == 201
    hits = limited.post(f"{KBS}/kb/search", json={"query": "x", "top_k": 5})
    assert hits.status_code == 200 and len(hits.get_json()["hits"]) == 3

    longest = "x " * 9 + "xé"  # 20 characters, the longest query allowed
    hits = limited.post(f"{KBS}/kb/search", json={"query": longest})
    assert hits.status_code == 200 and len(hits.get_json()["hits"]) == 3
    batch = {"queries": [{"query": longest, "top_k": 5}] * 3}
    results = limited.post(f"{KBS}/kb/search/batch", json=batch)
    assert results.status_code == 200
    assert [len(result["hits"]) for result in results.get_json()["results"]] == [3, 3, 3]


def test_the_field_over_the_limit_is_named_in_errors(limited, expect_error):
    batch = {"documents": [{"text": "x"}, {"text": "y", "metadata": metadata(5)}]}
    body = expect_error(limited.post(f"{KBS}/kb/documents", json=batch), 422, "metadata")
    assert body["errors"] == {"documents": {"1": {"metadata": ["KB_MAX_METADATA_KEYS is 4"]}}}

    searches = {"queries": [{"query": "x"}, {"query": "y" * 21}]}
    body = expect_error(limited.post(f"{KBS}/kb/search/batch", json=searches), 422, "query")
    assert body["errors"] == {"queries": {"1": {"query": ["KB_MAX_QUERY_CHARS is 20"]}}}
    body = expect_error(limited.post(f"{KBS}/kb/search", json={"query": "y" * 21}), 422)
    assert body["errors"] == {"query": ["KB_MAX_QUERY_CHARS is 20"]}
    body = expect_error(limited.post(f"{KBS}/kb/search/batch", json={"queries": [{}] * 4}), 422)
    assert body["errors"] == {"queries": ["KB_MAX_BATCH_QUERIES is 3"]}


def test_the_number_of_knowledge_bases_is_capped_and_a_deletion_frees_a_slot(limited, expect_error):
    assert limited.post(KBS, json={"name": "second"}).status_code == 201
    refusal = expect_error(limited.post(KBS, json={"name": "third"}), 409)
    assert "KB_MAX_KNOWLEDGE_BASES is 2" in refusal["message"]
    assert limited.get(f"{KBS}/third").status_code == 404

    assert limited.delete(f"{KBS}/second").status_code == 204
    assert limited.post(KBS, json={"name": "third"}).status_code == 201


def test_the_top_k_limit_cannot_exceed_what_the_service_can_rank():
    from entrypoints.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="KB_MAX_TOP_K"):
        Settings(max_top_k=1001)
    with pytest.raises(SettingsError, match="KB_MAX_METADATA_KEYS"):
        Settings.from_env({"KB_MAX_METADATA_KEYS": "0"})


def test_the_query_limits_cannot_exceed_what_the_domain_bounds():
    from domain.search_request import MAX_BATCH_QUERIES, MAX_QUERY_CHARS
    from entrypoints.settings import Settings, SettingsError

    assert Settings.from_env({}).max_query_chars == 10_000
    assert Settings.from_env({}).max_batch_queries == 32
    assert Settings(max_query_chars=MAX_QUERY_CHARS, max_batch_queries=MAX_BATCH_QUERIES)
    with pytest.raises(SettingsError, match="KB_MAX_QUERY_CHARS"):
        Settings(max_query_chars=MAX_QUERY_CHARS + 1)
    with pytest.raises(SettingsError, match="KB_MAX_BATCH_QUERIES"):
        Settings.from_env({"KB_MAX_BATCH_QUERIES": str(MAX_BATCH_QUERIES + 1)})
    with pytest.raises(SettingsError, match="KB_MAX_QUERY_CHARS"):
        Settings.from_env({"KB_MAX_QUERY_CHARS": "0"})


def test_a_request_body_is_parsed_once_for_the_limits_and_the_schema(client, kb, monkeypatch):
    import json

    calls = []
    real = json.loads

    def counting(raw, *args, **kwargs):
        calls.append(raw)
        return real(raw, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counting)  # whoever decodes the body, by any route
    response = client.post(f"/v1/knowledge-bases/{kb}/search", json={"query": "x", "top_k": 3})
    assert response.status_code == 200
    assert [raw for raw in calls if "top_k" in str(raw)] == [calls[0]]
