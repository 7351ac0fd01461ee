"""kill -9 during a restore: after the restart no knowledge base of that name, no stray rows."""

from __future__ import annotations

import json
import random
import sqlite3
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

import postgres
from domain.jobs import RESTART_REASON
from model_folder import l6_folder
from server import FAKE_APP, Server

STALE_SECONDS = 5  # KB_JOB_STALE_SECONDS: how soon PostgreSQL's jobs of a killed process are lost

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


Rows = Callable[[str], tuple[int, int, int]]


def sqlite_rows(database: Path, name: str) -> tuple[int, int, int]:
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


def postgres_rows(url: str, name: str) -> tuple[int, int, int]:
    """The same in the database: the knowledge base, its documents, its vectors."""
    with psycopg.connect(url) as conn:
        counts = [
            conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s", (name,)).fetchone()
            for table, column in (
                ("kb_knowledge_bases", "name"),
                ("kb_documents", "kb"),
                ("kb_vectors", "kb"),
            )
        ]
    first, second, third = (int(row[0]) if row else 0 for row in counts)
    return first, second, third


@pytest.fixture(params=["memory", "postgres"])
def backend(request, tmp_path) -> tuple[dict[str, str], Rows]:
    """The settings of a server on one backend, and how to count a knowledge base's rows."""
    if request.param == "memory":
        data_dir = tmp_path / "data"
        return {"KB_DATA_DIR": str(data_dir)}, lambda name: sqlite_rows(
            data_dir / "kb.sqlite3", name
        )
    url = postgres.database_url()
    postgres.clean(url)
    settings = {
        "KB_BACKEND": "postgres",
        "KB_DATABASE_URL": url,
        "KB_JOB_STALE_SECONDS": str(STALE_SECONDS),
    }
    return settings, lambda name: postgres_rows(url, name)


def start(tmp_path: Path, settings: dict[str, str], label: str) -> Server:
    # The real gunicorn and configuration serving the fake model: thousands of documents are
    # written and restored in seconds, and each restart takes one.
    server = Server(
        tmp_path / f"{label}.log", app=FAKE_APP, KB_EMBEDDING_MODEL=l6_folder(), **settings
    )
    server.wait_ready()
    return server


def settled_job(server: Server, job: str) -> dict:
    """The job once no process runs it: at once on the memory backend; on PostgreSQL once the
    killed process's heartbeat is STALE_SECONDS old."""
    deadline = time.monotonic() + 6 * STALE_SECONDS
    while (after := server.call("GET", f"/v1/jobs/{job}")[1])["status"] == "running":
        assert time.monotonic() < deadline, after
        time.sleep(0.2)
    return after


def no_rows_left(server: Server, rows: Rows, name: str) -> None:
    """Wait (PostgreSQL: up to two sweeps) until knowledge base `name` has no row anywhere."""
    deadline = time.monotonic() + 6 * STALE_SECONDS
    while rows(name) != (0, 0, 0):
        assert time.monotonic() < deadline, rows(name)
        time.sleep(0.2)


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


@pytest.mark.timeout(600)
def test_a_restore_killed_at_any_moment_leaves_no_knowledge_base_and_no_rows(tmp_path, backend):
    settings, rows_of = backend
    rng = random.Random(17)
    server = start(tmp_path, settings, "first")
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
        assert rows_of("copy")[0] <= 1  # at most the unpublished one was there
        server = start(tmp_path, settings, f"round{round_no}")
        after = settled_job(server, job)
        if after["status"] == "succeeded":  # the kill came after the end: it is whole
            assert server.call("GET", "/v1/knowledge-bases/copy")[1]["document_count"] == DOCUMENTS
            assert server.call("DELETE", "/v1/knowledge-bases/copy")[0] == 204
        else:
            assert (after["status"], after["error"]) == ("failed", RESTART_REASON)
            assert server.call("GET", "/v1/knowledge-bases/copy")[0] == 404
        no_rows_left(server, rows_of, "copy")
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
