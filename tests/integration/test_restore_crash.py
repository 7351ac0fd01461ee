"""kill -9 during a restore: after the restart no knowledge base of that name, no stray rows."""

from __future__ import annotations

import json
import random
import sqlite3
import time
import urllib.request
from pathlib import Path

from domain.jobs import RESTART_REASON
from model_folder import l6_folder
from server import FAKE_APP, Server

DOCUMENTS = 2000
LONG = " ".join(f"word{i}" for i in range(30))


def raw(
    server: Server, method: str, path: str, data: bytes | None = None
) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(
        server.url + path, data=data, method=method, headers={"Content-Type": "application/x-tar"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.read(), dict(response.headers)


def rows_of(database: Path, name: str) -> tuple[int, int, int]:
    """Rows of knowledge base `name` in the file, published or not: its own, documents, chunks."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return (
            db.execute("SELECT count(*) FROM knowledge_bases WHERE name = ?", (name,)).fetchone()[
                0
            ],
            db.execute("SELECT count(*) FROM documents WHERE kb = ?", (name,)).fetchone()[0],
            db.execute("SELECT count(*) FROM chunks WHERE kb = ?", (name,)).fetchone()[0],
        )
    finally:
        db.close()


def start(tmp_path: Path, data_dir: Path, label: str) -> Server:
    # The real gunicorn and configuration serving the fake model: thousands of documents are
    # written and restored in seconds, and each restart takes one.
    server = Server(
        tmp_path / f"{label}.log",
        app=FAKE_APP,
        KB_EMBEDDING_MODEL=l6_folder(),
        KB_DATA_DIR=str(data_dir),
    )
    server.wait_ready()
    return server


def make_archive(server: Server) -> bytes:
    assert server.call("POST", "/v1/knowledge-bases", {"name": "kb"})[0] == 201
    for first in range(0, DOCUMENTS, 1000):
        batch = [
            {"id": f"d{i:05d}", "text": f"{LONG} {i}", "metadata": {"n": i}}
            for i in range(first, first + 1000)
        ]
        assert (
            server.call("POST", "/v1/knowledge-bases/kb/documents", {"documents": batch})[0] == 201
        )
    status, archive, _ = raw(server, "GET", "/v1/knowledge-bases/kb/archive")
    assert status == 200
    return archive


def test_a_restore_killed_at_any_moment_leaves_no_knowledge_base_and_no_rows(tmp_path):
    rng = random.Random(17)
    data_dir = tmp_path / "data"
    database = data_dir / "kb.sqlite3"
    server = start(tmp_path, data_dir, "first")
    try:
        archive = make_archive(server)
        # How long a whole restore takes here, so the kills land inside one.
        started = time.monotonic()
        status, body, headers = raw(server, "POST", "/v1/knowledge-bases/probe/archive", archive)
        assert status == 202
        while server.call("GET", headers["Location"])[1]["status"] in {"queued", "running"}:
            time.sleep(0.02)
        took = time.monotonic() - started
    except BaseException:
        server.stop()
        raise
    # One kill once the restore has written a batch for sure, then kills at random moments.
    for round_no, moment in enumerate(["mid-way", *(rng.uniform(0, took) for _ in range(3))]):
        status, body, headers = raw(server, "POST", "/v1/knowledge-bases/copy/archive", archive)
        assert status == 202
        job = json.loads(body)["id"]
        if moment == "mid-way":
            while server.call("GET", headers["Location"])[1]["done"] == 0:
                time.sleep(0.005)
        else:
            time.sleep(moment)
        server.crash()
        assert rows_of(database, "copy")[0] <= 1  # at most the unpublished one was there
        server = start(tmp_path, data_dir, f"round{round_no}")
        after = server.call("GET", f"/v1/jobs/{job}")[1]
        if after["status"] == "succeeded":  # the kill came after the end: it is whole
            assert server.call("GET", "/v1/knowledge-bases/copy")[1]["document_count"] == DOCUMENTS
            assert server.call("DELETE", "/v1/knowledge-bases/copy")[0] == 204
        else:
            assert (after["status"], after["error"]) == ("failed", RESTART_REASON)
            assert server.call("GET", "/v1/knowledge-bases/copy")[0] == 404
        assert rows_of(database, "copy") == (0, 0, 0)
        names = [kb["name"] for kb in server.call("GET", "/v1/knowledge-bases")[1]["items"]]
        assert names == ["kb", "probe"]
    try:
        status, body, headers = raw(server, "POST", "/v1/knowledge-bases/copy/archive", archive)
        assert status == 202
        while (job := server.call("GET", headers["Location"])[1])["status"] == "running":
            time.sleep(0.02)
        assert job["status"] == "succeeded"
        assert server.call("GET", "/v1/knowledge-bases/copy")[1]["document_count"] == DOCUMENTS
    finally:
        server.stop()
