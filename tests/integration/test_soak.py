"""bench.soak briefly in CI: 32 clients against a real `kb serve`, zero errors, nothing amiss."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.soak import Tally, verify

from model_folder import l6_folder

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.server
@pytest.mark.timeout(600)  # bench.soak's own limit is 300 s, after the model loads
def test_a_short_soak_of_32_clients_has_no_errors_and_loses_nothing():
    command = [sys.executable, "-m", "bench.soak", "--model", l6_folder(), "--seconds", "15"]
    command += ["--clients", "32", "--sample", "60", "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"] and result["errors"] == 0 and result["problems"] == []
    assert result["clients"] == 32 and result["requests"] > 200
    for op in ("add", "delete", "bulk-delete", "search"):
        assert result["latency_ms"][op]["count"] > 0
    assert 0 < result["latency_ms"]["all"]["p50"] <= result["latency_ms"]["all"]["p99"]
    print(f"soak: {result['requests']} requests, {result['latency_ms']['all']}")


class ListingClient:
    """Answers the calls `verify` makes from a fixed listing, for checking the checks."""

    def __init__(self, listed: list[dict[str, Any]], stats: dict[str, int]) -> None:
        self.listed, self.stats = listed, stats

    def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        if "/documents" in path:
            return {"items": self.listed, "next_cursor": None}
        return self.stats

    def search(self, kb: str, **query: Any) -> list[dict[str, Any]]:
        text = query["query"]
        return [{"id": doc["id"], "score": 1.0} for doc in self.listed if doc["text"] == text]


def tally(*ids: str) -> Tally:
    return Tally(alive=set(ids), texts={i: f"text of {i}" for i in ids})


def doc(doc_id: str, text: str | None = None) -> dict[str, Any]:
    return {"id": doc_id, "text": text or f"text of {doc_id}", "chunks": 1}


def test_the_soak_checks_notice_lost_duplicated_and_resurrected_documents():
    healthy = ListingClient([doc("a"), doc("b")], {"document_count": 2, "chunk_count": 2})
    assert verify(healthy, "kb", [tally("a"), tally("b")], sample=2, seed=1) == []

    lost = verify(healthy, "kb", [tally("a", "b", "c")], sample=2, seed=1)
    assert any("missing" in problem for problem in lost)

    doubled = ListingClient([doc("a"), doc("a")], {"document_count": 2, "chunk_count": 2})
    assert any("more than once" in problem for problem in verify(doubled, "kb", [tally("a")], 1, 1))

    miscounted = ListingClient([doc("a")], {"document_count": 2, "chunk_count": 1})
    assert any("document_count" in p for p in verify(miscounted, "kb", [tally("a")], 1, 1))

    unindexed = ListingClient([doc("a", "other text")], {"document_count": 1, "chunk_count": 1})
    assert any("own text" in p for p in verify(unindexed, "kb", [tally("a")], 1, 1))
