"""The web page: served by the app, nothing from other hosts, not in the API spec."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "src" / "entrypoints" / "web"
SCRIPTS = sorted(path.name for path in WEB.glob("*.js"))
ASSETS = [(name, "javascript") for name in SCRIPTS] + [("style.css", "text/css")]


def test_the_page_is_served_at_the_root_and_loads_its_own_assets(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert '<script type="module" src="/web/app.js"' in page and 'href="/web/style.css"' in page


@pytest.mark.parametrize(("name", "kind"), ASSETS)
def test_the_assets_are_served_with_their_types(client, name, kind):
    response = client.get(f"/web/{name}")
    assert response.status_code == 200 and kind in response.content_type


@pytest.mark.parametrize("path", sorted(WEB.iterdir()), ids=lambda p: p.name)
def test_no_web_file_references_another_host(path):
    text = path.read_text()
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path.name


def test_every_module_the_page_imports_is_served():
    imported = set()
    for name in SCRIPTS:
        imported |= set(re.findall(r'from "\./([a-z]+\.js)"', (WEB / name).read_text()))
    assert imported and imported <= set(SCRIPTS), imported - set(SCRIPTS)
    assert "app.js" in SCRIPTS and len(SCRIPTS) > 1


@pytest.mark.parametrize("name", SCRIPTS)
def test_no_script_grows_past_400_lines(name):
    assert len((WEB / name).read_text().splitlines()) <= 400, name


def test_the_page_uses_only_the_public_api(client):
    script = "\n".join((WEB / name).read_text() for name in SCRIPTS)
    quoted = re.findall(r'"(/[a-z][^"$]*)', script) + re.findall(r"`(/[a-z][^`$]*)", script)
    paths = set(quoted)
    assert paths and all(path.startswith("/v1/") for path in paths), paths


def test_the_page_is_not_part_of_the_api_spec(client):
    spec_paths = client.get("/openapi.json").get_json()["paths"]
    assert "/" not in spec_paths and not any(path.startswith("/web") for path in spec_paths)
