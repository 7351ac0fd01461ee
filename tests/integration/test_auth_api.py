"""API keys on every route of the app's url_map: none, wrong, read-only on a write, admin."""

from __future__ import annotations

import io
import logging
import re

import pytest

from entrypoints.app import close_app, create_app
from entrypoints.auth import READ, WRITE, access_of, reads
from entrypoints.settings import Settings
from fakes import FakeEmbedder

pytestmark = pytest.mark.both_backends

ADMIN, SECOND_ADMIN, READER = "admin-key-0123456789", "admin-key-second", "reader-key-0123456789"
KEYS = {"api_keys": f"{ADMIN}, {SECOND_ADMIN}", "read_only_api_keys": READER}
OPEN = {
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/docs",
    "/docs/assets/<path:filename>",
    "/",
    "/web/<path:filename>",
}
SAMPLE = {"kb": "kb", "document_id": "doc", "filename": "swagger-ui.css", "job_id": "no-job"}
OPEN_FILES = {"/docs/assets/<path:filename>": "swagger-ui.css", "/web/<path:filename>": "app.js"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def routes() -> list[tuple[str, str]]:
    """(method, rule) for every route the app serves, read from its url_map."""
    app = create_app(Settings(data_dir=":memory:"), embedder=FakeEmbedder())
    try:
        found = [
            (method, rule.rule)
            for rule in app.url_map.iter_rules()
            for method in sorted(rule.methods or ())
            if method not in {"HEAD", "OPTIONS"}
        ]
    finally:
        close_app(app)
    return found


ROUTES = routes()
GUARDED = [(m, r) for m, r in ROUTES if r not in OPEN]
ids = [f"{m} {r}" for m, r in GUARDED]


def path_of(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda match: SAMPLE[match.group(1)], rule)


# POSTs that change nothing: a read-only key may send them.
READING_POSTS = {
    "/v1/knowledge-bases/<string:kb>/search",
    "/v1/knowledge-bases/<string:kb>/search/batch",
}


def is_write(method: str, rule: str) -> bool:
    return method in WRITES and not (method == "POST" and rule in READING_POSTS)


@pytest.fixture
def client(make_app):
    app = make_app(**KEYS)
    admin = app.test_client()
    admin.post("/v1/knowledge-bases", json={"name": "kb"}, headers=bearer(ADMIN))
    admin.put("/v1/knowledge-bases/kb/documents/doc", json={"text": "x"}, headers=bearer(ADMIN))
    return admin


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def call(client, method, rule, headers):
    body = {} if method in WRITES else None
    return client.open(path_of(rule), method=method, json=body, headers=headers)


def test_the_url_map_has_the_routes_this_test_guards():
    assert ("POST", "/v1/knowledge-bases/<string:kb>/documents") in GUARDED
    assert ("GET", "/metrics") in GUARDED and len(GUARDED) >= 15


@pytest.mark.parametrize(("method", "rule"), GUARDED, ids=ids)
def test_a_request_without_a_key_gets_401(client, method, rule, expect_error):
    response = call(client, method, rule, {})
    expect_error(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "rule"), GUARDED, ids=ids)
@pytest.mark.parametrize(
    "headers",
    [
        bearer("wrong-key"),
        {"X-API-Key": "wrong-key"},
        bearer(ADMIN + "x"),
        {"Authorization": ADMIN},
    ],
    ids=["bearer", "x-api-key", "prefix", "no-scheme"],
)
def test_a_wrong_key_gets_401(client, method, rule, headers, expect_error):
    expect_error(call(client, method, rule, headers), 401)


@pytest.mark.parametrize(("method", "rule"), GUARDED, ids=ids)
def test_a_read_only_key_reads_and_searches_but_gets_403_for_a_write(
    client, method, rule, expect_error
):
    response = call(client, method, rule, {"X-API-Key": READER})
    if is_write(method, rule):
        body = expect_error(response, 403)
        assert "read-only" in body["message"]
    else:
        assert response.status_code not in {401, 403}, response.get_json()


@pytest.mark.parametrize(("method", "rule"), GUARDED, ids=ids)
@pytest.mark.parametrize("headers", [bearer(SECOND_ADMIN), {"X-API-Key": ADMIN}])
def test_an_admin_key_passes_everywhere(client, method, rule, headers):
    response = call(client, method, rule, headers)
    assert response.status_code not in {401, 403}, response.get_data(as_text=True)
    assert response.status_code < 500


@pytest.mark.parametrize("rule", sorted(OPEN))
def test_probes_docs_and_pages_answer_without_a_key(client, rule):
    path = re.sub(r"<path:filename>", OPEN_FILES.get(rule, ""), rule)
    assert client.get(path).status_code == 200


def test_the_open_routes_are_all_in_the_url_map():
    assert OPEN.issubset(rule for _, rule in ROUTES)


def unmarked(app) -> list[str]:
    """Every (method, rule) whose view says neither @opens, @reads nor @writes."""
    return [
        f"{method} {rule.rule}"
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods or ())
        if method != "OPTIONS" and access_of(app, rule.endpoint, method) is None
    ]


def test_every_route_says_whether_it_opens_reads_or_writes(app):
    assert unmarked(app) == []


def test_an_unmarked_route_is_found_and_needs_an_admin_key(make_app, expect_error):
    app = make_app(**KEYS)
    app.add_url_rule("/v1/unmarked", "unmarked", lambda: {"changed": "nothing"}, methods=["POST"])
    reading = reads(lambda: {"changed": "nothing"})
    app.add_url_rule("/v1/marked", "marked", reading, methods=["POST"])

    assert unmarked(app) == ["POST /v1/unmarked"]
    client = app.test_client()
    expect_error(client.post("/v1/unmarked", headers=bearer(READER)), 403)
    assert client.post("/v1/unmarked", headers=bearer(ADMIN)).status_code == 200
    assert client.post("/v1/marked", headers=bearer(READER)).status_code == 200


@pytest.mark.parametrize(("method", "rule"), GUARDED, ids=ids)
def test_each_view_says_what_a_read_only_key_may_do(app, method, rule):
    endpoint = next(r.endpoint for r in app.url_map.iter_rules() if r.rule == rule)
    assert access_of(app, endpoint, method) == (WRITE if is_write(method, rule) else READ)


def test_the_openapi_document_declares_both_schemes_and_exempts_the_probes(client):
    spec = client.get("/openapi.json").get_json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }
    assert schemes["apiKeyAuth"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert spec["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    assert spec["paths"]["/readyz"]["get"]["security"] == []


def test_without_keys_the_service_is_open_and_says_so(make_app, caplog):
    with caplog.at_level(logging.WARNING, logger="entrypoints.auth"):
        client = make_app().test_client()
    assert "the service is open" in caplog.text
    assert client.get("/v1/info").status_code == 200
    assert "security" not in client.get("/openapi.json").get_json()


def test_keys_never_reach_the_logs(make_app, caplog):
    stream = io.StringIO()
    access = logging.getLogger("kb.access")
    handler = logging.StreamHandler(stream)
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        with caplog.at_level(logging.DEBUG):
            client = make_app(**KEYS).test_client()
            client.get("/v1/info", headers=bearer(ADMIN))
            client.get("/v1/info", headers={"X-API-Key": "wrong-but-secret"})
            client.post("/v1/knowledge-bases", json={"name": "a"}, headers=bearer(READER))
    finally:
        access.removeHandler(handler)
        access.setLevel(logging.NOTSET)
    logged = caplog.text + stream.getvalue()
    assert stream.getvalue().count("\n") == 3
    for secret in (ADMIN, SECOND_ADMIN, READER, "wrong-but-secret"):
        assert secret not in logged
    assert ADMIN not in repr(Settings(**KEYS))


def test_a_key_in_both_lists_stops_start_up():
    with pytest.raises(ValueError, match="both KB_API_KEYS and KB_READ_ONLY_API_KEYS"):
        Settings(api_keys="k", read_only_api_keys="k")


def test_an_open_route_answers_a_wrong_method_with_405_not_401(client, expect_error):
    expect_error(client.post("/healthz"), 405)
    expect_error(client.delete("/openapi.json"), 405)
    expect_error(client.post("/v1/info"), 401)
