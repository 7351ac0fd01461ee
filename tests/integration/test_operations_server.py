"""The real server with keys and gunicorn's multi-process metrics: /metrics, JSON logs, 401s."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from model_folder import l6_folder
from server import Server

pytestmark = pytest.mark.server

ADMIN, READER = "ops-admin-key-1234", "ops-reader-key-5678"
SECRET_TEXT = "a sentence nobody may read in the logs"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("operations")
    running = Server(
        folder / "server.log",
        KB_EMBEDDING_MODEL=l6_folder(),
        KB_API_KEYS=ADMIN,
        KB_READ_ONLY_API_KEYS=READER,
        PROMETHEUS_MULTIPROC_DIR=str(folder / "metrics"),
    )
    running.log_path = folder / "server.log"
    running.metrics_dir = folder / "metrics"
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def call(server: Server, method: str, path: str, body: Any = None, key: str | None = None):
    headers = {"Content-Type": "application/json", "X-Request-ID": "ops-test-1"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_served_api_wants_a_key_and_a_write_key_for_writes(server):
    assert call(server, "GET", "/v1/info")[0] == 401
    assert call(server, "POST", "/v1/knowledge-bases", {"name": "ro"}, READER)[0] == 403
    assert call(server, "GET", "/v1/info", key=READER)[0] == 200
    assert call(server, "GET", "/healthz")[0] == 200


def test_metrics_work_in_gunicorn_multiprocess_mode(server):
    assert call(server, "POST", "/v1/knowledge-bases", {"name": "ops"}, ADMIN)[0] == 201
    docs = [{"text": SECRET_TEXT}, {"text": "another"}, {"text": "a third one"}]
    added = call(server, "POST", "/v1/knowledge-bases/ops/documents", {"documents": docs}, ADMIN)
    assert added[0] == 201

    status, text = call(server, "GET", "/metrics", key=READER)
    assert status == 200
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    route = "/v1/knowledge-bases/<string:kb>/documents"
    counted = (("method", "POST"), ("route", route), ("status", "201"))
    assert samples[("kb_http_requests_total", counted)] == 1
    assert samples[("kb_model_batch_size_count", ())] >= 1
    assert samples[("kb_model_batch_size_sum", ())] >= 3
    assert samples[("kb_documents", (("knowledge_base", "ops"),))] == 3
    assert list(server.metrics_dir.glob("*.db")), "gunicorn workers write the multiprocess files"


def test_each_request_is_one_json_log_line_without_text_or_keys(server):
    call(server, "GET", "/v1/info", key=ADMIN)
    log = server.log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    info = [line for line in lines if line["route"] == "/v1/info" and line["status"] == 200]
    assert info and info[-1]["request_id"] == "ops-test-1" and info[-1]["method"] == "GET"
    assert "API keys required: 1 admin key(s), 1 read-only key(s)" in log
    for secret in (ADMIN, READER, SECRET_TEXT):
        assert secret not in log


def raw_call(server: Server, method: str, path: str, body: bytes = b"") -> tuple[int, Any, str]:
    """One request as sent, path untouched and redirects not followed: (status, body, Location)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    answer = response.read()
    connection.close()
    return response.status, json.loads(answer or b"null"), response.getheader("Location") or ""


def test_gunicorn_refuses_undecodable_paths_and_never_redirects_a_document_path(server):
    docs = "/v1/knowledge-bases/paths/documents"
    assert call(server, "POST", "/v1/knowledge-bases", {"name": "paths"}, ADMIN)[0] == 201
    assert call(server, "POST", docs, {"id": "b", "text": "bravo"}, ADMIN)[0] == 201

    status, body, _ = raw_call(server, "GET", f"{docs}/%FF")
    assert status == 400 and set(body) == {"code", "status", "message", "errors"}
    assert raw_call(server, "GET", f"{docs}/%EF%BF%BD")[0] == 404  # U+FFFD is an id of its own
    for path in [f"{docs}/%2F%2Fb", f"{docs}//b", "/v1/knowledge-bases//paths/documents/b"]:
        status, body, location = raw_call(server, "PUT", path, b'{"text": "overwritten"}')
        assert status in (404, 422) and not location, (path, status, body)
    assert json.loads(call(server, "GET", f"{docs}/b", key=ADMIN)[1])["text"] == "bravo"
