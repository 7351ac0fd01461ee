"""Over HTTP on the memory backend: past KB_COMPRESS_THRESHOLD a knowledge base's index holds
SQ8 codes, answers with true cosines and comes back compressed after a restart."""

from __future__ import annotations

import time

import numpy as np
import pytest

from entrypoints.app import close_app, create_app
from entrypoints.settings import Settings, SettingsError
from fakes import FakeEmbedder

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
TEXTS = [
    " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(i % 5 + 2)) + f" n{i}"
    for i in range(120)
]


def start(data_dir: str):
    settings = Settings(data_dir=data_dir, ann_threshold=10, compress_threshold=60)
    app = create_app(settings, embedder=FakeEmbedder())
    return app, app.test_client()


def index_type(client) -> str:
    return client.get("/v1/knowledge-bases/kb").get_json()["index"]["type"]


def wait_for(client, kind: str) -> None:
    deadline = time.monotonic() + 20
    while index_type(client) != kind:
        assert time.monotonic() < deadline, index_type(client)
        time.sleep(0.05)


def searches(client) -> list[list[tuple[str, float]]]:
    bodies = [
        {"query": "gamma delta iota", "top_k": 10},
        {"query": "alpha kappa", "top_k": 5, "exact": True},
        {"document_id": "d7", "top_k": 5},
        {"vector": FakeEmbedder().embed(["beta theta"])[0].tolist(), "top_k": 5},
    ]
    found = []
    for body in bodies:
        response = client.post("/v1/knowledge-bases/kb/search", json=body)
        assert response.status_code == 200, response.get_json()
        found.append([(hit["id"], hit["score"]) for hit in response.get_json()["hits"]])
    return found


def test_a_compressed_knowledge_base_scores_true_cosines_and_survives_a_restart(tmp_path):
    data_dir = str(tmp_path / "data")
    app, client = start(data_dir)
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    documents = [{"id": f"d{i}", "text": text} for i, text in enumerate(TEXTS)]
    assert (
        client.post("/v1/knowledge-bases/kb/documents", json={"documents": documents}).status_code
        == 201
    )
    wait_for(client, "ivf-sq8")
    before = searches(client)
    query = FakeEmbedder().embed(["gamma delta iota"])[0]
    truth = FakeEmbedder().embed(TEXTS) @ query
    by_id = {f"d{i}": float(score) for i, score in enumerate(truth)}
    assert all(abs(by_id[i] - score) < 1e-6 for i, score in before[0])
    best = np.sort(truth)[::-1][:10]  # the true top 10 scores: none missed
    assert np.allclose([s for _, s in before[0]], best, rtol=0, atol=1e-6)
    close_app(app)

    app, client = start(data_dir)
    try:
        assert index_type(client) == "ivf-sq8"  # loaded straight into codes, no rebuild
        after = searches(client)
        for mine, theirs in zip(after, before):
            assert [i for i, _ in mine] == [i for i, _ in theirs]
            assert np.allclose([s for _, s in mine], [s for _, s in theirs], atol=1e-6)
    finally:
        close_app(app)


def test_the_threshold_is_a_setting_of_at_least_one():
    assert Settings.from_env({"KB_COMPRESS_THRESHOLD": "2000000"}).compress_threshold == 2_000_000
    with pytest.raises(SettingsError):
        Settings(compress_threshold=0)
