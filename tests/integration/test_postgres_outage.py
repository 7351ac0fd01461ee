"""A PostgreSQL outage: requests fail fast with 503 and Retry-After, and the service recovers
as soon as the database is back. The test stops and restarts a private server of its own."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

import postgres
from adapters.postgres.database import PostgresDatabase
from domain.errors import StorageUnavailableError

# A bound on a hang, not a speed figure: the pool used to wait 30 s; here it waits TIMEOUT.
HANG = 15.0
TIMEOUT = 6  # KB_DATABASE_TIMEOUT
RECOVERY = 10.0  # it took ~14 s with the pool's default reconnection backoff


class PrivateServer:
    """A pgserver (PostgreSQL + pgvector) in a folder of its own, to stop and start at will."""

    def __init__(self) -> None:
        # A short path: the server's Unix socket lives in it.
        self.folder = Path(tempfile.mkdtemp(prefix="kb-pg-"))
        self.start()
        self.url = self._server.get_uri()

    def start(self) -> None:
        import pgserver  # type: ignore[import-untyped]

        self._server = pgserver.get_server(self.folder, cleanup_mode="stop")

    def stop(self) -> None:
        self._server.cleanup()  # pg_ctl stop: fast mode, every session is ended

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def database() -> Iterator[PrivateServer]:
    server = PrivateServer()
    yield server
    server.remove()


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def write(client: FlaskClient, doc_id: str) -> Any:
    return client.put(f"/v1/knowledge-bases/kb/documents/{doc_id}", json={"text": "a note"})


def search(client: FlaskClient) -> Any:
    return client.post("/v1/knowledge-bases/kb/search", json={"query": "a note"})


def assert_unavailable(
    expect_error: Callable[..., Any], response: Any, seconds: float, bound: float = HANG
) -> None:
    expect_error(response, 503)
    assert response.headers["Retry-After"] == str(TIMEOUT)
    assert seconds < bound, f"the request hung for {seconds:.1f} s"


def test_a_database_outage_is_a_quick_503_and_the_service_recovers_at_once(
    make_app, database, expect_error
):
    app = make_app(backend="postgres", database_url=database.url, database_timeout=TIMEOUT)
    client = app.test_client()
    assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
    assert write(client, "before").status_code == 201

    database.stop()
    response, seconds = timed(lambda: write(client, "during"))
    assert_unavailable(expect_error, response, seconds)
    print(f"during the outage, the first request: 503 in {seconds:.2f} s")
    # Known to be down now: the next requests do not hold a thread for the whole timeout.
    for request in (lambda: search(client), lambda: write(client, "during")):
        response, seconds = timed(request)
        assert_unavailable(expect_error, response, seconds, bound=TIMEOUT / 2)
        print(f"during the outage, later requests: 503 in {seconds:.2f} s")
    health, seconds = timed(lambda: client.get("/healthz"))
    print(f"during the outage: /healthz {health.status_code} in {seconds:.3f} s")
    assert health.status_code == 200 and seconds < HANG  # never asks the database
    ready, seconds = timed(lambda: client.get("/readyz"))
    assert ready.status_code == 503 and seconds < HANG
    assert ready.get_json()["message"].startswith("database unreachable: PostgreSQL does not")

    database.start()
    restarted = time.monotonic()
    while (response := write(client, "after")).status_code != 201:
        assert_unavailable(expect_error, response, 0)
        assert time.monotonic() - restarted < RECOVERY, "no recovery after the database's return"
        time.sleep(0.05)
    print(f"after the restart: the first write succeeded {time.monotonic() - restarted:.2f} s on")
    assert search(client).status_code == 200
    assert sorted(hit["id"] for hit in search(client).get_json()["hits"]) == ["after", "before"]
    assert client.get("/readyz").status_code == 200


def test_connections_a_restart_closed_are_replaced_before_a_request_uses_them(make_app, database):
    app = make_app(backend="postgres", database_url=database.url, database_timeout=TIMEOUT)
    client = app.test_client()
    assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
    database.stop()
    database.start()  # no request in between: the pool still holds the closed connections
    assert write(client, "after").status_code == 201
    assert search(client).status_code == 200


def test_a_pool_busy_to_its_last_connection_is_not_taken_for_a_database_outage():
    database = PostgresDatabase(postgres.database_url(), pool_size=1, timeout=3)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with database.connection():
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    try:
        holder.start()
        assert held.wait(10)
        with pytest.raises(StorageUnavailableError), database.connection():
            pass  # busy: no connection within the timeout
        threading.Timer(1.0, release.set).start()
        with database.connection() as conn:  # still waits the whole timeout: busy, not down
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        release.set()
        holder.join(10)
        database.close()
