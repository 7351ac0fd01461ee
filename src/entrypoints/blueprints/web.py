"""The web page at `/`: static HTML, JavaScript and CSS that call the public /v1 API."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory
from werkzeug.wrappers import Response

from entrypoints.auth import opens

WEB = Path(__file__).resolve().parent.parent / "web"

# A plain Flask blueprint, not flask-smorest's: the page is not part of the API or its spec.
blp = Blueprint("web", __name__, static_folder=WEB, static_url_path="/web")


@blp.get("/")
@opens
def index() -> Response:
    return send_from_directory(WEB, "index.html")
