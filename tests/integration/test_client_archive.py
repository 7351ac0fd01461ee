"""kb_client's archive calls over real HTTP against small scripted services: what goes on the
wire, what is retried, and that a copy pipes in constant memory."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from werkzeug.wrappers import Request, Response

from kb_client import Conflict, KBClient, KBConnectionError, NotFound, ServiceUnavailable
from live_server import serving

JSON = {"Content-Type": "application/json"}
JOB = '{"id": "j1", "kind": "restore", "status": "queued", "done": 0, "total": null}'
ACCEPTED = (202, JOB, {**JSON, "Location": "/v1/jobs/j1"})
BUSY = (503, '{"code": 503, "status": "Service Unavailable", "message": "starting"}', JSON)
MISSING = (404, '{"code": 404, "status": "Not Found", "message": "no such kb"}', JSON)


class Recorder:
    """A WSGI app answering from a script; records each request, hashing its body as it reads."""

    def __init__(self, *answers: tuple[int, str, dict[str, str]]) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        digest, size = hashlib.sha256(), 0
        while block := request.stream.read(1 << 16):
            digest.update(block)
            size += len(block)
        seen = {"method": request.method, "path": request.path, "args": dict(request.args)}
        seen |= {"headers": dict(request.headers), "sha256": digest.hexdigest(), "size": size}
        self.requests.append(seen)
        status, body, headers = self.answers[min(len(self.requests) - 1, len(self.answers) - 1)]
        return Response(body, status, headers)(environ, start_response)


def client_of(base: str, retries: int = 0) -> KBClient:
    client = KBClient(base, retries=retries, backoff=0.001)
    client.transport._sleep = lambda seconds: None
    return client


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_restore_from_a_path_streams_the_file_with_its_length_and_returns_the_job(tmp_path):
    archive = tmp_path / "notes.kbar"
    archive.write_bytes(b"x" * 3_000_000)
    app, progress = Recorder(MISSING, ACCEPTED), []
    with serving(app) as base:  # type: ignore[arg-type]
        job = client_of(base).restore_archive(
            "notes", archive, reembed=True, on_progress=lambda done, total: progress.append(total)
        )
    assert job["id"] == "j1" and job["status"] == "queued"
    check, seen = app.requests
    assert (check["method"], check["path"]) == ("GET", "/v1/knowledge-bases/notes")
    assert (seen["method"], seen["path"]) == ("POST", "/v1/knowledge-bases/notes/archive")
    assert seen["args"] == {"reembed": "true"}
    assert seen["headers"]["Content-Length"] == "3000000"
    assert seen["headers"]["Content-Type"] == "application/x-tar"
    assert seen["sha256"] == sha(archive.read_bytes())
    assert progress and set(progress) == {3_000_000}


def test_a_restore_from_a_file_is_sent_again_whole_after_a_503(tmp_path):
    data = b"0123456789" * 100_000
    app = Recorder(MISSING, BUSY, ACCEPTED)
    with serving(app) as base:  # type: ignore[arg-type]
        stream = io.BytesIO(b"ignored" + data)
        stream.seek(len(b"ignored"))  # the upload starts where the file stands
        client_of(base, retries=2).restore_archive("kb", stream)
    assert [seen["sha256"] for seen in app.requests[1:]] == [sha(data)] * 2
    assert app.requests[2]["args"] == {"reembed": "false"}


def test_an_iterable_is_never_sent_twice_once_its_bytes_have_gone():
    app = Recorder(MISSING, BUSY, ACCEPTED)
    blocks = [b"a" * 70_000, b"b" * 5, b"c" * 100_000]
    with serving(app) as base, pytest.raises(ServiceUnavailable):  # type: ignore[arg-type]
        client_of(base, retries=3).restore_archive("kb", iter(blocks))
    _, seen = app.requests
    assert seen["sha256"] == sha(b"".join(blocks))
    assert seen["headers"].get("Transfer-Encoding") == "chunked"  # no size given: chunked


def test_an_iterable_of_known_size_goes_with_a_content_length():
    app = Recorder(MISSING, ACCEPTED)
    blocks = [b"a" * 70_000, b"b" * 5]
    with serving(app) as base:  # type: ignore[arg-type]
        client_of(base).restore_archive("kb", iter(blocks), size=70_005)
    _, seen = app.requests
    assert seen["headers"]["Content-Length"] == "70005" and seen["size"] == 70_005


class Archive:
    """A WSGI app that serves `size` bytes of a known pattern as an archive, block by block."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.requests: list[str] = []

    def blocks(self) -> Iterator[bytes]:
        block = bytes(range(256)) * 256
        for start in range(0, self.size, len(block)):
            yield block[: min(len(block), self.size - start)]

    def digest(self) -> str:
        digest = hashlib.sha256()
        for block in self.blocks():
            digest.update(block)
        return digest.hexdigest()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        self.requests.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        if environ["PATH_INFO"].endswith("/archive"):
            headers = [("Content-Type", "application/x-tar"), ("Content-Length", str(self.size))]
            start_response("200 OK", headers)
            return self.blocks()
        return Response(MISSING[1], 404, JSON)(environ, start_response)


def test_a_download_writes_the_archive_to_a_path_or_a_file_with_progress(tmp_path):
    source = Archive(2_500_000)
    progress: list[tuple[int, int | None]] = []
    with serving(source) as base:  # type: ignore[arg-type]
        client = client_of(base)
        path = tmp_path / "notes.kbar"
        written = client.download_archive("notes", path, lambda *seen: progress.append(seen))
        buffer = io.BytesIO()
        assert client.download_archive("notes", buffer) == 2_500_000
    assert written == 2_500_000 and sha(path.read_bytes()) == source.digest()
    assert sha(buffer.getvalue()) == source.digest()
    assert progress[-1] == (2_500_000, 2_500_000) and list(tmp_path.iterdir()) == [path]
    assert source.requests == ["GET /v1/knowledge-bases/notes/archive"] * 2


def test_an_unknown_knowledge_base_raises_not_found_and_leaves_no_file(tmp_path):
    with serving(Recorder(MISSING)) as base, pytest.raises(NotFound):  # type: ignore[arg-type]
        client_of(base).download_archive("ghost", tmp_path / "ghost.kbar")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def cut_short_server() -> Iterator[str]:
    """Answers every request with headers promising 1000 bytes, sends 10 and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n"
                b"Content-Length: 1000\r\n\r\n0123456789"
            )
            connection.close()

    threading.Thread(target=run, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_a_download_cut_short_raises_a_connection_error_and_leaves_no_file(
    cut_short_server, tmp_path
):
    with pytest.raises(KBConnectionError) as raised:
        client_of(cut_short_server).download_archive("kb", tmp_path / "kb.kbar")
    assert "broke off" in raised.value.message or "stopped at" in raised.value.message
    assert list(tmp_path.iterdir()) == []


def test_a_copy_whose_download_breaks_off_raises_a_connection_error_naming_the_source(
    cut_short_server,
):
    target = Recorder(MISSING, ACCEPTED)
    with (
        serving(target) as target_url,  # type: ignore[arg-type]
        pytest.raises(KBConnectionError) as raised,
    ):
        client_of(cut_short_server).copy_knowledge_base("kb", client_of(target_url))
    assert f"the download of 'kb' from {cut_short_server} broke off" in raised.value.message
    assert len(target.requests) <= 2 and all(seen["size"] < 1000 for seen in target.requests)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def plain_serving(app: Any) -> Iterator[str]:
    """`app` under wsgiref, one request at a time: werkzeug's server reads what a client
    leaves unread into a 10 MB buffer, which would hide the client's own memory use."""
    server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def test_a_copy_pipes_the_download_into_the_upload_in_constant_memory():
    source, target = Archive(48 * 1024 * 1024), Recorder(MISSING, ACCEPTED)
    with plain_serving(source) as source_url, plain_serving(target) as target_url:
        from_client, to_client = client_of(source_url), client_of(target_url)
        tracemalloc.start()
        try:
            job = from_client.copy_knowledge_base("notes", to_client, "moved")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert job["id"] == "j1"
    check, upload = target.requests
    assert (check["method"], check["path"]) == ("GET", "/v1/knowledge-bases/moved")
    assert (upload["method"], upload["path"]) == ("POST", "/v1/knowledge-bases/moved/archive")
    assert upload["headers"]["Content-Length"] == str(source.size)
    assert upload["sha256"] == source.digest()
    assert peak < 2 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a 50 MB copy"


def test_a_copy_to_a_taken_name_fails_before_the_source_is_asked_for_its_archive():
    source = Archive(1000)
    target = Recorder((200, '{"name": "notes"}', JSON))
    with (
        serving(source) as source_url,  # type: ignore[arg-type]
        serving(target) as target_url,  # type: ignore[arg-type]
        pytest.raises(Conflict) as raised,
    ):
        client_of(source_url).copy_knowledge_base("notes", client_of(target_url))
    assert raised.value.status == 409 and "'notes' already exists" in raised.value.message
    assert source.requests == [] and len(target.requests) == 1


def test_a_restore_to_a_taken_name_fails_before_the_upload(tmp_path):
    app = Recorder((200, '{"name": "notes"}', JSON))
    with serving(app) as base, pytest.raises(Conflict) as raised:  # type: ignore[arg-type]
        client_of(base).restore_archive("notes", b"x" * 1000)
    assert "'notes' already exists" in raised.value.message
    assert [seen["method"] for seen in app.requests] == ["GET"]


def test_a_missing_file_fails_before_any_request(tmp_path):
    app = Recorder(ACCEPTED)
    with serving(app) as base, pytest.raises(FileNotFoundError):  # type: ignore[arg-type]
        client_of(base).restore_archive("kb", tmp_path / "nowhere.kbar")
    assert app.requests == []


def test_restore_accepts_a_path_as_a_string_and_bytes(tmp_path: Path):
    path = tmp_path / "a.kbar"
    path.write_bytes(b"abc")
    app = Recorder(MISSING, ACCEPTED, MISSING, ACCEPTED)
    with serving(app) as base:  # type: ignore[arg-type]
        client_of(base).restore_archive("kb", str(path))
        client_of(base).restore_archive("kb", b"abc")
    assert [seen["sha256"] for seen in app.requests[1::2]] == [sha(b"abc")] * 2


def test_the_real_service_round_trips_an_archive_through_the_client(make_app, fake_embedder):
    with serving(make_app()) as base, KBClient(base, retries=0) as client:
        client.create_knowledge_base("notes", "team notes", {"team": "core"})
        client.add_documents("notes", [{"id": f"d{i}", "text": f"text {i}"} for i in range(30)])
        archive, progress = io.BytesIO(), []
        size = client.download_archive("notes", archive, lambda done, total: progress.append(total))
        assert size == len(archive.getvalue()) and set(progress) == {size}
        archive.seek(0)
        fake_embedder.calls.clear()
        job = client.restore_archive("copy", archive)
        assert job["kind"] == "restore" and job["knowledge_base"] == "copy"
        finished = client.wait_for_job(job["id"], poll=0.05, timeout=30)
        assert (finished["status"], finished["done"], finished["total"]) == ("succeeded", 30, 30)
        assert fake_embedder.calls == []
        assert list(client.iter_documents("copy")) == list(client.iter_documents("notes"))
        assert client.get_knowledge_base("copy")["description"] == "team notes"
