"""The memory backend's SQLite file: a restart loses nothing and never mixes models."""

import logging

import pytest

from entrypoints.app import close_app, create_app
from entrypoints.settings import Settings
from fakes import FakeEmbedder

DOCS = [
    {"id": "cat", "text": "the cat sat on the mat", "metadata": {"n": 1}},
    {"id": "dog", "text": "a dog barked at the postman"},
    {"id": "fish", "text": "fish swim in the cold sea"},
    {"id": "long", "text": " ".join(f"word{i}" for i in range(60)) + " zebra crossing"},
]
QUERIES = ["the cat sat", "zebra crossing", "cold sea fish", "postman"]


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path / "kb-data")


def start(data_dir, embedder=None):
    app = create_app(Settings(data_dir=data_dir), embedder=embedder or FakeEmbedder())
    return app, app.test_client()


def snapshot(client):
    hits = [
        client.post("/v1/knowledge-bases/kb/search", json={"query": q, "top_k": 10}).get_json()
        for q in QUERIES
    ]
    documents = client.get("/v1/knowledge-bases/kb/documents").get_json()["items"]
    kb = client.get("/v1/knowledge-bases/kb").get_json()
    return hits, documents, kb


def test_a_restart_gives_identical_documents_and_search_results(data_dir):
    app, client = start(data_dir)
    assert (
        client.post("/v1/knowledge-bases", json={"name": "kb", "metadata": {"a": 1}}).status_code
        == 201
    )
    assert (
        client.post("/v1/knowledge-bases/kb/documents", json={"documents": DOCS}).status_code == 201
    )
    client.put("/v1/knowledge-bases/kb/documents/dog", json={"text": "a dog chased the cat"})
    client.patch("/v1/knowledge-bases/kb/documents/cat", json={"metadata": {"n": 2}})
    client.delete("/v1/knowledge-bases/kb/documents/fish")
    client.post("/v1/knowledge-bases", json={"name": "dropped"})
    client.delete("/v1/knowledge-bases/dropped")
    before = snapshot(client)
    close_app(app)

    app, client = start(data_dir)
    assert client.get("/readyz").get_json()["knowledge_bases"] == 1
    assert snapshot(client) == before
    assert before[2]["document_count"] == 3
    added = client.post("/v1/knowledge-bases/kb/documents", json={"text": "after restart"})
    assert added.status_code == 201
    close_app(app)


def test_chunk_ids_handed_out_after_a_restart_never_collide(data_dir):
    app, client = start(data_dir)
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    client.post("/v1/knowledge-bases/kb/documents", json={"documents": DOCS})
    close_app(app)
    app, client = start(data_dir)
    client.post("/v1/knowledge-bases/kb/documents", json={"id": "new", "text": "the cat sat again"})
    close_app(app)
    app, client = start(data_dir)  # a collision would make the rebuilt index disagree
    hits = client.post("/v1/knowledge-bases/kb/search", json={"query": "the cat sat again"})
    assert hits.get_json()["hits"][0]["id"] == "new"
    close_app(app)


def test_a_knowledge_base_of_another_model_is_refused_with_an_explanation(data_dir, caplog):
    app, client = start(data_dir, FakeEmbedder(model_name="model-a"))
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    client.post("/v1/knowledge-bases/kb/documents", json={"documents": DOCS})
    close_app(app)

    with caplog.at_level(logging.ERROR):
        app, client = start(data_dir, FakeEmbedder(model_name="model-b"))
    assert any("model-a" in r.getMessage() and "model-b" in r.getMessage() for r in caplog.records)
    response = client.post("/v1/knowledge-bases/kb/search", json={"query": "cat"})
    assert response.status_code == 409
    assert "model-a" in response.get_json()["message"]
    assert "KB_EMBEDDING_MODEL" in response.get_json()["message"]
    assert "model-a" in str(response.get_json()["errors"]["model"])
    added = client.post("/v1/knowledge-bases/kb/documents", json={"text": "mixed?"})
    assert added.status_code == 409
    assert client.get("/v1/knowledge-bases/kb").get_json()["document_count"] == len(DOCS)
    close_app(app)


def test_a_foreign_file_in_the_data_dir_stops_start_up_and_is_kept(tmp_path):
    data = tmp_path / "kb-data"
    data.mkdir()
    (data / "kb.sqlite3").write_text("not ours")
    with pytest.raises(Exception, match="not a kb-service database"):
        create_app(Settings(data_dir=str(data)), embedder=FakeEmbedder())
    assert (data / "kb.sqlite3").read_text() == "not ours"


def test_memory_data_dir_keeps_nothing_on_disk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app, client = start(":memory:")
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    close_app(app)
    assert list(tmp_path.iterdir()) == []


def test_the_keyword_index_is_rebuilt_from_the_documents_at_restart(data_dir):
    app, client = start(data_dir)
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    client.post("/v1/knowledge-bases/kb/documents", json={"documents": DOCS})
    body = {"query": "zebra", "mode": "hybrid", "keyword_weight": 1.0, "top_k": 1}
    before = client.post("/v1/knowledge-bases/kb/search", json=body).get_json()["hits"]
    close_app(app)
    app, client = start(data_dir)
    after = client.post("/v1/knowledge-bases/kb/search", json=body).get_json()["hits"]
    assert [h["id"] for h in after] == [h["id"] for h in before] == ["long"]
    # keyword_weight 1: the fused value is keyword coverage alone, 0 without a keyword index.
    assert after[0]["fusion_score"] == pytest.approx(1.0)
    close_app(app)


@pytest.mark.both_backends
def test_an_empty_knowledge_base_survives_a_restart(make_app, tmp_path):
    data_dir = str(tmp_path / "kb-data")
    app = make_app(data_dir=data_dir)
    client = app.test_client()
    assert client.post("/v1/knowledge-bases", json={"name": "never-filled"}).status_code == 201
    assert client.post("/v1/knowledge-bases", json={"name": "emptied"}).status_code == 201
    added = client.post("/v1/knowledge-bases/emptied/documents", json={"documents": DOCS})
    assert added.status_code == 201
    for doc in DOCS:
        deleted = client.delete(f"/v1/knowledge-bases/emptied/documents/{doc['id']}")
        assert deleted.status_code == 204
    close_app(app)

    client = make_app(data_dir=data_dir).test_client()
    assert client.get("/readyz").status_code == 200
    for name in ("never-filled", "emptied"):
        kb = client.get(f"/v1/knowledge-bases/{name}").get_json()
        assert (kb["document_count"], kb["chunk_count"]) == (0, 0)
        found = client.post(f"/v1/knowledge-bases/{name}/search", json={"query": "the cat sat"})
        assert found.get_json()["hits"] == []
        added = client.post(f"/v1/knowledge-bases/{name}/documents", json={"text": "the cat sat"})
        assert added.status_code == 201
        found = client.post(f"/v1/knowledge-bases/{name}/search", json={"query": "the cat sat"})
        (hit,) = found.get_json()["hits"]
        assert hit["score"] == pytest.approx(1.0, abs=1e-5)
