"""The memory backend keeps each keyword index in KB_DATA_DIR/indexes between runs: a restart
takes it back instead of indexing every text again."""

import pytest

from adapters.sqlite.fts_keyword_index import Fts5KeywordIndex
from entrypoints.app import close_app, create_app
from entrypoints.settings import Settings
from fakes import FakeEmbedder

WORDS = ["harbour", "lighthouse", "parser", "budget", "penguin", "glacier", "violin", "orbit"]
DOCS = [
    {"id": f"doc/{n:02d}", "text": " ".join(WORDS[(n * k) % len(WORDS)] for k in range(1, 7))}
    for n in range(40)
] + [{"id": "ünïcode ✓", "text": "a lighthouse keeper plays the violin"}]
QUERIES = ["lighthouse violin", "parser budget", "penguin on a glacier", "orbit"]


@pytest.fixture
def added(monkeypatch):
    """Every document id the FTS5 keyword indexes are given, in order."""
    given: list[str] = []
    original = Fts5KeywordIndex.add

    def add(self, documents):
        given.extend(doc_id for doc_id, _ in documents)
        original(self, documents)

    monkeypatch.setattr(Fts5KeywordIndex, "add", add)
    return given


def start(data_dir):
    app = create_app(Settings(data_dir=data_dir), embedder=FakeEmbedder())
    return app, app.test_client()


def hybrid(client):
    return [
        client.post(
            "/v1/knowledge-bases/kb/search",
            json={"query": query, "mode": "hybrid", "top_k": 10, "explain": True},
        ).get_json()["hits"]
        for query in QUERIES
    ]


def test_a_restart_takes_back_the_keyword_file_and_answers_identically(tmp_path, added):
    data_dir = str(tmp_path / "kb-data")
    kept = tmp_path / "kb-data" / "indexes"
    app, client = start(data_dir)
    assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
    assert client.post("/v1/knowledge-bases", json={"name": "other"}).status_code == 201
    assert (
        client.post("/v1/knowledge-bases/kb/documents", json={"documents": DOCS}).status_code == 201
    )
    client.put("/v1/knowledge-bases/kb/documents/doc%2F03", json={"text": "a violin in orbit"})
    client.delete("/v1/knowledge-bases/kb/documents/doc%2F04")
    before = hybrid(client)
    assert sum(bool(hit["explain"]["keyword"]) for hits in before for hit in hits) > 10
    close_app(app)
    assert len(list(kept.glob("kb.*.fts"))) == 1
    added.clear()

    app, client = start(data_dir)
    assert hybrid(client) == before
    assert added == []  # no text indexed again: the file was taken back
    assert client.delete("/v1/knowledge-bases/kb").status_code == 204
    assert list(kept.glob("kb.*")) == []  # the file and its log went with the knowledge base
    assert [p.name.split(".")[0] for p in kept.glob("*.fts")] == ["other"]
    close_app(app)


def test_a_knowledge_base_re_created_under_the_same_name_starts_from_nothing(tmp_path):
    data_dir = str(tmp_path / "kb-data")
    app, client = start(data_dir)
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    client.post("/v1/knowledge-bases/kb/documents", json={"documents": DOCS})
    client.delete("/v1/knowledge-bases/kb")
    client.post("/v1/knowledge-bases", json={"name": "kb"})
    client.post("/v1/knowledge-bases/kb/documents", json={"text": "orbit", "id": "only"})
    close_app(app)
    app, client = start(data_dir)
    found = [hit["id"] for hits in hybrid(client) for hit in hits if hit["explain"]["keyword"]]
    assert found == ["only"]  # "orbit": nothing of the first knowledge base of that name
    close_app(app)
