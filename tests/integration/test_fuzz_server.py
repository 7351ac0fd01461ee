"""Fuzzing a real gunicorn process: no request is a 5xx, and none takes the worker down.

The in-process fuzzing (test_fuzz_api.py) cannot see a worker die or restart. Here the cases
that schemathesis derives from the OpenAPI document, and raw bytes that are no HTTP at all, go
over TCP to gunicorn serving the fake embedder; afterwards the same master and the same worker
must still be running and ready.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from entrypoints.app import close_app, create_app
from entrypoints.settings import Settings
from fakes import FakeEmbedder
from fuzzing import ADMIN, AUTH, KEYS, excluded, flatmap_case
from model_folder import l6_folder
from server import FAKE_APP, Server

pytestmark = pytest.mark.server

EXAMPLES_PER_OPERATION = 15
GUNICORN_REQUEST_LINE = 4094  # gunicorn's default limit_request_line, in bytes
FUZZ = settings(
    derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)


def _openapi_document() -> dict[str, Any]:
    """The served document, read from an app built here: cases are made before the server runs."""
    app = create_app(Settings(data_dir=":memory:", **KEYS), embedder=FakeEmbedder(16, 8))
    try:
        return dict(app.test_client().get("/openapi.json").get_json())
    finally:
        close_app(app)


schema = schemathesis.openapi.from_dict(_openapi_document())
schema.hook(flatmap_case)
sent: list[int] = []


class LiveServer(Server):
    started_workers: frozenset[int] = frozenset()

    def worker_pids(self) -> set[int]:
        """gunicorn's workers: a worker that died and was replaced has a new pid."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("fuzz-server")
    server = LiveServer(
        folder / "server.log",
        app=FAKE_APP,
        KB_EMBEDDING_MODEL=l6_folder(),
        KB_API_KEYS=ADMIN,
        KB_READ_ONLY_API_KEYS=KEYS["read_only_api_keys"],
    )
    try:
        server.wait_ready()
        server.started_workers = frozenset(server.worker_pids())
        assert len(server.started_workers) == 1, server.started_workers
        yield server
    finally:
        server.stop()


@schema.parametrize()
@settings(FUZZ, max_examples=EXAMPLES_PER_OPERATION)
def test_no_request_to_a_live_server_is_answered_with_a_5xx(case: Any, live: LiveServer) -> None:
    # Knowledge base "kb" with document "d1": earlier cases may have deleted them.
    requests.post(f"{live.url}/v1/knowledge-bases", json={"name": "kb"}, headers=AUTH, timeout=30)
    requests.put(
        f"{live.url}/v1/knowledge-bases/kb/documents/d1",
        json={"text": "a known doc"},
        headers=AUTH,
        timeout=30,
    )
    response = case.call(base_url=live.url, headers=AUTH, timeout=60)
    sent.append(response.status_code)
    assert response.status_code < 500
    line = f"{case.method.upper()} {response.request.path_url} HTTP/1.1"
    if len(line.encode()) > GUNICORN_REQUEST_LINE:
        # Longer than gunicorn's limit_request_line: its own HTML 414, as a client talking to
        # gunicorn directly sees it (behind deploy/nginx.conf it is the JSON error shape).
        assert response.status_code == 414, response.text[:300]
        return
    case.validate_response(response, headers=AUTH, excluded_checks=excluded(case))


NOT_HTTP = st.one_of(
    st.binary(min_size=1, max_size=200),
    st.builds(
        lambda method, path, tail: method + b" " + path + tail,
        st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"G\x00T", b"\xff"]),
        st.sampled_from([b"/v1/knowledge-bases", b"/readyz", b"/%", b"/%FF", b"*", b""]),
        st.binary(max_size=120),
    ),
)


@given(raw=NOT_HTTP)
@settings(FUZZ, max_examples=60)
def test_bytes_that_are_no_http_request_are_refused_without_a_5xx(
    raw: bytes, live: LiveServer
) -> None:
    with socket.create_connection(("127.0.0.1", live.port), timeout=30) as connection:
        connection.sendall(raw)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    sent.append(0)
    status_line = answer.split(b"\r\n", 1)[0]
    assert not status_line.startswith((b"HTTP/1.1 5", b"HTTP/1.0 5")), answer[:300]


def test_after_the_fuzzing_the_same_worker_still_serves(live: LiveServer) -> None:
    if len(sent) < 100:
        pytest.skip("runs after the fuzzing tests above")
    assert live.process.poll() is None, "gunicorn's master exited"
    assert live.worker_pids() == live.started_workers
    assert live.call("GET", "/readyz")[0] == 200
