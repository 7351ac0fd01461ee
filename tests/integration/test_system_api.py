"""HTTP behaviour of the service routes: /v1/info, /healthz, /openapi.json and the /docs page."""

from __future__ import annotations

import re

import pytest

from fakes import FakeEmbedder

pytestmark = pytest.mark.both_backends

V1_OPERATIONS = {
    "/v1/knowledge-bases": {"get", "post"},
    "/v1/knowledge-bases/{kb}": {"get", "patch", "delete"},
    "/v1/knowledge-bases/{kb}/documents": {"get", "post"},
    "/v1/knowledge-bases/{kb}/documents/{document_id}": {"get", "put", "patch", "delete"},
    "/v1/knowledge-bases/{kb}/documents/delete": {"post"},
    "/v1/knowledge-bases/{kb}/search": {"post"},
    "/v1/info": {"get"},
    "/healthz": {"get"},
    "/readyz": {"get"},
}


def test_info_names_the_model_its_dimension_window_backend_and_version(client, backend):
    response = client.get("/v1/info")

    assert response.status_code == 200
    body = response.get_json()
    assert body["model"] == "fake-model"
    assert body["dimension"] == 32
    assert body["max_seq_length"] == 18
    assert body["backend"] == backend
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", body["version"])


@pytest.mark.parametrize("fake_embedder", [FakeEmbedder(dimension=8, window=4, model_name="tiny")])
def test_info_follows_the_loaded_embedder(client):
    body = client.get("/v1/info").get_json()

    assert (body["model"], body["dimension"], body["max_seq_length"]) == ("tiny", 8, 6)


def test_healthz_answers_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_says_ready_once_the_model_and_knowledge_bases_are_loaded(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["knowledge_bases"] == 0


def test_readyz_counts_the_knowledge_bases_there_are_now_not_those_at_start(client, create_kb):
    create_kb("a")
    create_kb("b")
    assert client.get("/readyz").get_json()["knowledge_bases"] == 2
    assert client.delete("/v1/knowledge-bases/a").status_code == 204
    assert client.get("/readyz").get_json()["knowledge_bases"] == 1


def test_openapi_json_describes_every_v1_operation(client):
    response = client.get("/openapi.json")

    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "kb-service"
    for path, methods in V1_OPERATIONS.items():
        assert path in spec["paths"], path
        assert methods <= set(spec["paths"][path]), (path, set(spec["paths"][path]))


def test_openapi_json_documents_the_error_statuses(client):
    paths = client.get("/openapi.json").get_json()["paths"]

    assert "409" in paths["/v1/knowledge-bases"]["post"]["responses"]
    assert "422" in paths["/v1/knowledge-bases"]["post"]["responses"]
    assert "404" in paths["/v1/knowledge-bases/{kb}/documents/{document_id}"]["get"]["responses"]
    assert "201" in paths["/v1/knowledge-bases/{kb}/documents/{document_id}"]["put"]["responses"]


def test_docs_page_is_html_that_loads_the_spec_and_local_assets(client):
    response = client.get("/docs")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "/openapi.json" in html
    assets = re.findall(r"""(?:src|href)=["'](/docs/assets/[^"']+)["']""", html)
    assert any(asset.endswith(".js") for asset in assets)
    assert any(asset.endswith(".css") for asset in assets)
    assert not re.search(r"""(?:src|href)=["']https?://""", html), "the docs page needs no CDN"


def test_every_asset_the_docs_page_references_is_served(client):
    html = client.get("/docs").get_data(as_text=True)
    assets = re.findall(r"""(?:src|href)=["'](/docs/assets/[^"']+)["']""", html)

    assert assets
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.get_data()) > 1000, asset
        expected = "text/css" if asset.endswith(".css") else "javascript"
        assert expected in response.mimetype, (asset, response.mimetype)
        response.close()


@pytest.mark.parametrize("asset", ["/docs/assets/no-such-file.js", "/docs/assets/../app.py"])
def test_unknown_docs_assets_are_404(client, expect_error, asset):
    expect_error(client.get(asset), 404)
