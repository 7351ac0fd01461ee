"""kill -9 at random moments under concurrent writes: every acknowledged write survives."""

import random
import threading
import time

import pytest

from model_folder import l6_folder
from server import Server

pytestmark = pytest.mark.server

ROUNDS = 10
CLIENTS = 4


class Ledger:
    """What the clients were told: acknowledged adds and deletes, and requests left unanswered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.present: dict[str, str] = {}  # acknowledged and not deleted since: id -> text
        self.deleted: set[str] = set()
        self.unknown: dict[str, str | None] = {}  # no answer: the write may or may not be in
        self.batches: list[list[str]] = []
        self.server_errors: list[int] = []  # 5xx answers: the service should never give one

    def record(self, ids_texts: list[tuple[str, str]], answer: int | None) -> None:
        with self.lock:
            if answer == 201:
                self.present.update(ids_texts)
            elif answer is None or answer >= 500:
                self.unknown.update(ids_texts)
                if answer is not None:
                    self.server_errors.append(answer)
            if len(ids_texts) > 1 and answer is None:
                self.batches.append([i for i, _ in ids_texts])


def writer(server: Server, ledger: Ledger, name: str, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    count = 0
    while not stop.is_set():
        count += 1
        try:
            if rng.random() < 0.2 and ledger.present:
                with ledger.lock:
                    victim = rng.choice(sorted(ledger.present))
                    text = ledger.present.pop(victim)  # in doubt until answered
                    ledger.unknown[victim] = text
                status, _ = server.call("DELETE", f"/v1/knowledge-bases/kb/documents/{victim}")
                with ledger.lock:
                    if status == 204:
                        ledger.deleted.add(victim)
                        del ledger.unknown[victim]
                continue
            size = 1 if rng.random() < 0.7 else 5
            docs = [(f"{name}-{count}-{j}", f"note {name} {count} {j} about topic {rng.random()}")
                    for j in range(size)]  # fmt: skip
            body = {"documents": [{"id": i, "text": t} for i, t in docs]}
            try:
                status, _ = server.call("POST", "/v1/knowledge-bases/kb/documents", body)
            except Exception:
                # No whole answer (refused, reset, or cut off mid-reply: IncompleteRead,
                # truncated JSON): the write may or may not be in.
                ledger.record(docs, None)
                return
            ledger.record(docs, status)
        except Exception:  # the server was killed: this client is done
            return


@pytest.mark.timeout(900)  # ten restarts, each loading the model
def test_sigkill_under_concurrent_writes_loses_nothing_acknowledged(tmp_path):
    rng = random.Random(2026)
    ledger = Ledger()
    data_dir = str(tmp_path / "data")
    started = time.monotonic()
    for round_no in range(ROUNDS):
        server = Server(
            tmp_path / f"round{round_no}.log", KB_EMBEDDING_MODEL=l6_folder(), KB_DATA_DIR=data_dir
        )
        server.wait_ready()
        verify(server, ledger)
        if round_no == 0:
            assert server.call("POST", "/v1/knowledge-bases", {"name": "kb"})[0] == 201
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=writer, args=(server, ledger, f"r{round_no}c{c}", stop, rng.random())
            )
            for c in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.3, 1.5))
        server.crash()
        stop.set()
        for thread in threads:
            thread.join(30)
    final = Server(tmp_path / "final.log", KB_EMBEDDING_MODEL=l6_folder(), KB_DATA_DIR=data_dir)
    try:
        final.wait_ready()
        verify(final, ledger)
        assert len(ledger.present) > 20, "too few writes were acknowledged to prove anything"
        assert not ledger.server_errors, f"the service answered {ledger.server_errors}"
    finally:
        final.stop()
    assert time.monotonic() - started < 150


def verify(server: Server, ledger: Ledger) -> None:
    status, kb = server.call("GET", "/v1/knowledge-bases/kb")
    if status == 404:
        assert not ledger.present
        return
    stored = list_all(server)
    for doc_id, text in ledger.present.items():
        assert stored.get(doc_id) == text, f"acknowledged {doc_id} lost or changed"
    for doc_id in ledger.deleted:
        assert doc_id not in stored, f"acknowledged delete of {doc_id} undone"
    for doc_id in stored.keys() - ledger.present.keys():
        assert doc_id in ledger.unknown, f"{doc_id} is stored but was never written"
    for batch in ledger.batches:
        assert len({doc_id in stored for doc_id in batch}) == 1, f"half a batch: {batch}"
    assert kb["document_count"] == len(stored) == kb["chunk_count"]
    # Settle the unknowns: what survived is now known to be in, the rest known to be out.
    for doc_id in list(ledger.unknown):
        if doc_id in stored:
            ledger.present[doc_id] = stored[doc_id]
        else:
            ledger.deleted.add(doc_id)
    ledger.unknown.clear()
    ledger.batches.clear()
    for doc_id in random.Random(len(stored)).sample(sorted(stored), min(5, len(stored))):
        status, found = server.call(
            "POST", "/v1/knowledge-bases/kb/search", {"query": stored[doc_id], "top_k": 1}
        )
        assert status == 200 and found["hits"][0]["id"] == doc_id
        assert found["hits"][0]["score"] == pytest.approx(1.0, abs=1e-5)


def list_all(server: Server) -> dict[str, str]:
    stored: dict[str, str] = {}
    cursor = None
    while True:
        path = "/v1/knowledge-bases/kb/documents?limit=1000" + (
            f"&cursor={cursor}" if cursor else ""
        )
        status, page = server.call("GET", path)
        assert status == 200
        stored.update((item["id"], item["text"]) for item in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return stored
