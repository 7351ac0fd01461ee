"""HTTP fixtures: the real app from create_app() over the in-memory backend and a fake embedder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

import pytest

# The browser tests' driver and site (tests/integration/browsing.py), for every test module.
from browsing import browser, site  # noqa: F401
from flask import Flask
from flask.testing import FlaskClient

import postgres
from adapters.postgres.database import PostgresDatabase
from entrypoints.app import close_app, create_app
from entrypoints.container import Container
from entrypoints.settings import Settings
from fakes import FakeEmbedder

BACKENDS = ("memory", "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_backends` run once per backend (the `backend` fixture)."""
    if metafunc.definition.get_closest_marker("both_backends") and (
        "backend" in metafunc.fixturenames
    ):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The backend `make_app` builds on: `memory` unless the test is marked `both_backends`."""
    return str(getattr(request, "param", "memory"))


ERROR_KEYS = {"code", "status", "message", "errors"}


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder(dimension=32, window=16)


@pytest.fixture
def make_container(fake_embedder: FakeEmbedder, backend: str) -> Callable[..., Container]:
    """Containers with chosen settings and the fake embedder; override any port before make_app.

    On the `postgres` backend the test database is emptied before the test's first container,
    so apps made later in the same test (a restart) see what the first one wrote.
    """
    cleaned: list[str] = []

    def make(**settings: Any) -> Container:
        settings.setdefault("data_dir", ":memory:")
        settings.setdefault("backend", backend)
        if settings["backend"] == "postgres" and "database_url" not in settings:
            settings["database_url"] = postgres.database_url()
            if not cleaned:
                postgres.clean(settings["database_url"])
                cleaned.append(settings["database_url"])
        container = Container(settings=Settings(**settings))
        container.embedder.override(fake_embedder)
        return container

    return make


@pytest.fixture
def make_app(make_container: Callable[..., Container]) -> Iterator[Callable[..., Flask]]:
    """Build apps with chosen settings (or over a given container); every container is unwired
    and closed afterwards (wiring is global)."""
    built: list[Flask] = []

    def make(container: Container | None = None, **settings: Any) -> Flask:
        app = create_app(container=container or make_container(**settings))
        app.config["TESTING"] = True
        built.append(app)
        return app

    yield make
    for app in reversed(built):
        close_app(app)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def create_kb(client: FlaskClient) -> Callable[..., dict[str, Any]]:
    """Create a knowledge base over HTTP and return its body; fails the test unless 201."""

    def create(name: str = "kb", **fields: Any) -> dict[str, Any]:
        response = client.post("/v1/knowledge-bases", json={"name": name, **fields})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return create


@pytest.fixture
def kb(create_kb: Callable[..., dict[str, Any]]) -> str:
    """The name of a fresh, empty knowledge base."""
    return create_kb("kb")["name"]


@pytest.fixture
def add_documents(client: FlaskClient) -> Callable[..., list[str]]:
    """Add documents ({"id"?, "text", "metadata"?} dicts) in one batch; return their ids."""

    def add(kb_name: str, *documents: dict[str, Any]) -> list[str]:
        response = client.post(
            f"/v1/knowledge-bases/{kb_name}/documents", json={"documents": list(documents)}
        )
        assert response.status_code == 201, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    return add


@pytest.fixture
def search(client: FlaskClient) -> Callable[..., list[dict[str, Any]]]:
    """Search a knowledge base and return its hits; fails the test unless 200."""

    def run(kb_name: str, **body: Any) -> list[dict[str, Any]]:
        response = client.post(f"/v1/knowledge-bases/{kb_name}/search", json=body)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["hits"]

    return run


@pytest.fixture
def list_all(client: FlaskClient) -> Callable[..., list[dict[str, Any]]]:
    """Walk a paginated listing to the end, following next_cursor."""

    def walk(path: str, limit: int = 100) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(10_000):
            query: dict[str, Any] = {"limit": limit}
            if cursor is not None:
                query["cursor"] = cursor
            response = client.get(path, query_string=query)
            assert response.status_code == 200, response.get_json()
            page = response.get_json()
            assert len(page["items"]) <= limit
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if cursor is None:
                return items
        raise AssertionError(f"{path} never reached its last page")

    return walk


def assert_error(response: Any, status: int, *fields: str) -> dict[str, Any]:
    """Check the one error body shape {"code", "status", "message", "errors"}.

    Each of `fields` must be named somewhere in `errors` (a field-level message).
    """
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.is_json, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == status
    assert body["status"] == HTTPStatus(status).phrase
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], dict)
    for field in fields:
        assert field in error_fields(body), (field, body)
    return body


def error_fields(body: dict[str, Any]) -> set[str]:
    """Every key named anywhere in an error body's `errors` (field names, nested or not)."""
    found: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                found.add(str(key))
                collect(inner)
        elif isinstance(value, list):
            for inner in value:
                collect(inner)

    collect(body.get("errors", {}))
    return found


@pytest.fixture
def expect_error() -> Callable[..., dict[str, Any]]:
    """`expect_error(response, status, *fields)`: assert the error shape, return the body."""
    return assert_error


@pytest.fixture
def pg_database() -> Iterator[PostgresDatabase]:
    """A pool to the emptied test PostgreSQL (see tests/postgres.py)."""
    url = postgres.database_url()
    postgres.clean(url)
    database = PostgresDatabase(url, pool_size=4)
    yield database
    database.close()
