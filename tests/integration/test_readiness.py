"""Start-up in the background: probes and the web page answer at once, the API says 503."""

import threading

import pytest

from entrypoints.app import close_app, create_app
from entrypoints.readiness import Readiness
from entrypoints.settings import Settings
from fakes import FakeEmbedder


@pytest.fixture
def gate(monkeypatch):
    """Hold the background loader until the test opens the gate."""
    opened = threading.Event()
    real_run = Readiness.run

    def held_run(self, loader, on_failure=None):
        opened.wait(10)
        real_run(self, loader, on_failure)

    monkeypatch.setattr(Readiness, "run", held_run)
    return opened


def test_while_loading_probes_and_page_answer_and_the_api_asks_to_retry(gate):
    app = create_app(Settings(data_dir=":memory:"), embedder=FakeEmbedder(), background=True)
    client = app.test_client()
    try:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        assert client.get("/").status_code == 200
        busy = client.get("/v1/knowledge-bases")
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
        assert busy.get_json()["code"] == 503
        gate.set()
        readiness = app.extensions["kb_readiness"]
        assert readiness.ready.wait(10)
        assert client.get("/readyz").get_json()["status"] == "ready"
        assert client.get("/v1/knowledge-bases").status_code == 200
    finally:
        gate.set()
        close_app(app)


def test_a_failed_load_is_reported_by_readyz_and_the_failure_hook_runs(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "kb.sqlite3").write_text("not ours")
    failed = threading.Event()
    app = create_app(
        Settings(data_dir=str(data)),
        embedder=FakeEmbedder(),
        background=True,
        on_load_failure=failed.set,
    )
    try:
        assert failed.wait(10)
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        assert "not a kb-service database" in response.get_json()["message"]
    finally:
        app.extensions["kb_container"].unwire()
