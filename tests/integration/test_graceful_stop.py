"""SIGTERM mid-flight: in-flight requests finish; every acknowledged write survives a restart."""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest

from model_folder import l6_folder
from server import Server

pytestmark = pytest.mark.server

CLIENTS = 8
WORDS = "the quick brown fox jumps over a lazy dog while rain falls on quiet hills".split()  # noqa: SIM905


@dataclass
class Outcome:
    started: float
    ended: float
    status: int | None  # None: the connection failed, so nothing was acknowledged
    ids: list[str]


def add_batch(url: str, ids: list[str]) -> int | None:
    texts = [" ".join(WORDS[(i + n) % len(WORDS)] for n in range(120)) + f" {doc_id}"
             for i, doc_id in enumerate(ids)]  # fmt: skip
    body = {"documents": [{"id": i, "text": t} for i, t in zip(ids, texts)]}
    request = urllib.request.Request(
        f"{url}/v1/knowledge-bases/kb/documents",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        return None


def writer(url: str, number: int, stop: threading.Event, outcomes: list[Outcome]) -> None:
    made = 0
    while not stop.is_set():
        ids = [f"w{number}-{made + k}" for k in range(6)]
        made += 6
        started = time.monotonic()
        status = add_batch(url, ids)
        outcomes.append(Outcome(started, time.monotonic(), status, ids))
        if status is None and stop.is_set():
            return


def listed_ids(server: Server) -> list[str]:
    ids: list[str] = []
    cursor = ""
    while True:
        status, page = server.call("GET", f"/v1/knowledge-bases/kb/documents?limit=1000{cursor}")
        assert status == 200, page
        ids += [item["id"] for item in page["items"]]
        if not page.get("next_cursor"):
            return ids
        cursor = f"&cursor={page['next_cursor']}"


def test_sigterm_finishes_in_flight_requests_and_keeps_every_acknowledged_document(tmp_path):
    data = str(tmp_path / "data")
    server = Server(tmp_path / "first.log", KB_EMBEDDING_MODEL=l6_folder(), KB_DATA_DIR=data)
    outcomes: list[Outcome] = []
    stop = threading.Event()
    try:
        server.wait_ready()
        assert server.call("POST", "/v1/knowledge-bases", {"name": "kb"})[0] == 201
        writers = [
            threading.Thread(target=writer, args=(server.url, n, stop, outcomes))
            for n in range(CLIENTS)
        ]
        for thread in writers:
            thread.start()
        while sum(o.status == 201 for o in outcomes) < 10:
            time.sleep(0.05)
        terminated = time.monotonic()
        server.process.send_signal(signal.SIGTERM)  # the master, as an orchestrator would
        stop.set()
        assert server.process.wait(60) == 0
        for thread in writers:
            thread.join(60)
    finally:
        stop.set()
        server.stop()

    log = (tmp_path / "first.log").read_text()
    assert "Traceback" not in log
    assert "the service is open" in log  # no keys configured, and the start-up log says so
    assert not [o for o in outcomes if o.status is not None and o.status >= 500]
    in_flight = [o for o in outcomes if o.started < terminated < o.ended]
    assert [o for o in in_flight if o.status == 201], "no request was finished after SIGTERM"
    acknowledged = {i for o in outcomes if o.status == 201 for i in o.ids}
    print(f"{len(in_flight)} in flight at SIGTERM, {len(acknowledged)} documents acknowledged")

    again = Server(tmp_path / "second.log", KB_EMBEDDING_MODEL=l6_folder(), KB_DATA_DIR=data)
    try:
        again.wait_ready()
        ids = listed_ids(again)
        assert acknowledged <= set(ids), sorted(acknowledged - set(ids))[:10]
        assert len(ids) == len(set(ids))
        assert again.call("GET", "/v1/knowledge-bases/kb")[1]["document_count"] == len(ids)
    finally:
        again.stop()
