"""nginx in front of gunicorn (deploy/nginx.conf): slow clients wait in nginx, not in a thread."""

from __future__ import annotations

import time

import pytest
from bench.proxy import NGINX, Nginx, SlowClients, healthz, send_raw, wait_until_healthy

from entrypoints.settings import Settings
from model_folder import l6_folder
from server import Server, free_port

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        NGINX is None,
        reason="nginx is not installed: `scripts/install.sh --dev` installs Debian's, as root",
    ),
]

THREADS = 2
SLOW_CLIENTS = 12  # as many as held all eight threads in issue 15


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("proxy") / "server.log"
    running = Server(log, KB_EMBEDDING_MODEL=l6_folder(), KB_THREADS=str(THREADS))
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def proxy(server):
    nginx = Nginx(server.port)
    try:
        nginx.start()
        yield nginx
    finally:
        nginx.stop()


def request_line(length: int) -> bytes:
    line = b"GET /" + b"a" * (length - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"
    assert len(line) == length
    return line + b"\r\nHost: kb\r\nConnection: close\r\n\r\n"


def test_nginx_accepts_the_config_the_compose_stacks_mount():
    nginx = Nginx(free_port())
    try:
        checked = nginx.check()
    finally:
        nginx.stop()
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


@pytest.mark.parametrize("part", ["header", "body"])
def test_slow_clients_hold_every_gunicorn_thread_but_not_behind_the_proxy(server, proxy, part):
    assert healthz(server.port) == 200
    # Straight at gunicorn: each slow request holds a thread, so /healthz waits in the queue.
    with SlowClients(server.port, SLOW_CLIENTS, part=part):
        time.sleep(2)  # every slow client has sent its first bytes and taken a thread
        assert healthz(server.port, timeout=5) is None
    wait_until_healthy(server.port)
    # Through nginx: slow headers and bodies wait in nginx, and gunicorn's threads stay free.
    with SlowClients(proxy.port, SLOW_CLIENTS, part=part):
        time.sleep(2)
        assert healthz(proxy.port, timeout=5) == 200
        assert healthz(server.port, timeout=5) == 200


def test_an_oversized_body_is_refused_by_the_proxy_in_the_error_shape(proxy, expect_error):
    too_large = Settings().max_body_bytes + 1
    answer = send_raw(
        proxy.port,
        b"POST /v1/knowledge-bases HTTP/1.1\r\nHost: kb\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % too_large,
    )
    expect_error(answer, 413)
    assert answer.headers["X-Request-ID"]


def test_a_large_body_is_buffered_whole_and_reaches_the_service_with_the_request_id(
    proxy, expect_error
):
    # Over client_body_buffer_size (1 MiB): nginx keeps it in a temporary file first.
    body = b'{"name": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    head = (
        b"POST /v1/knowledge-bases HTTP/1.1\r\nHost: kb\r\nContent-Type: application/json\r\n"
        b"X-Request-ID: proxy-test-1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    answer = send_raw(proxy.port, head, body)
    expect_error(answer, 422, "name")  # the service's own answer: it read the whole body
    assert answer.headers["X-Request-ID"] == "proxy-test-1"


def test_an_archive_larger_than_any_other_body_passes_the_proxy_to_the_service(proxy, expect_error):
    # Over KB_MAX_BODY_BYTES, so only the archive location lets it through; zeros are no
    # kb-archive, which is the service's own 422 after it spooled the upload.
    body = b"\0" * (Settings().max_body_bytes + 2**20)
    head = (
        b"POST /v1/knowledge-bases/restored/archive HTTP/1.1\r\nHost: kb\r\n"
        b"Content-Type: application/x-tar\r\nX-Request-ID: proxy-archive-1\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    answer = send_raw(proxy.port, head, body)
    expect_error(answer, 422)
    assert answer.headers["X-Request-ID"] == "proxy-archive-1"


def test_an_ndjson_import_larger_than_any_json_body_passes_the_proxy(proxy, expect_error):
    # Over KB_MAX_BODY_BYTES: the documents location lets a stream through, and the service
    # answers itself (no such knowledge base), not the proxy's 413.
    line = b'{"id": "a", "text": "some text"}\n'
    body = line * ((Settings().max_body_bytes + 2**20) // len(line))
    head = (
        b"POST /v1/knowledge-bases/missing/documents HTTP/1.1\r\nHost: kb\r\n"
        b"Content-Type: application/x-ndjson\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    body = expect_error(send_raw(proxy.port, head, body), 404)
    assert "missing" in body["message"]


def test_a_file_upload_larger_than_any_other_body_passes_the_proxy_to_the_service(
    proxy, expect_error
):
    # Over KB_MAX_BODY_BYTES, so only the files location lets it through: the service's own
    # 404 (no such knowledge base) once it read the multipart body.
    content = b"x" * (Settings().max_body_bytes + 2**20)
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
        + content
        + b"\r\n--b--\r\n"
    )
    head = (
        b"POST /v1/knowledge-bases/ghost/files HTTP/1.1\r\nHost: kb\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nX-Request-ID: proxy-files-1\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    answer = send_raw(proxy.port, head, body)
    expect_error(answer, 404)
    assert answer.headers["X-Request-ID"] == "proxy-files-1"


def test_what_gunicorn_refuses_in_html_the_proxy_refuses_in_the_error_shape(
    server, proxy, expect_error
):
    direct = send_raw(server.port, request_line(4095))
    assert direct.status_code == 414 and not direct.is_json  # gunicorn's own page
    expect_error(send_raw(proxy.port, request_line(4095)), 414)
    # The longest request line nginx passes is one gunicorn takes: the service's own 404.
    expect_error(send_raw(proxy.port, request_line(4094)), 404)
    big_header = b"GET /healthz HTTP/1.1\r\nHost: kb\r\nX-Big: " + b"b" * 5000 + b"\r\n\r\n"
    expect_error(send_raw(proxy.port, big_header), 431)
    expect_error(send_raw(proxy.port, b"NOT HTTP AT ALL\r\n\r\n"), 400)


def test_a_service_that_cannot_be_reached_is_a_502_in_the_error_shape(expect_error):
    nginx = Nginx(free_port())  # nothing listens there
    try:
        nginx.start()
        answer = send_raw(nginx.port, b"GET /readyz HTTP/1.1\r\nHost: kb\r\n\r\n")
    finally:
        nginx.stop()
    expect_error(answer, 502)
    assert answer.headers["Retry-After"]
