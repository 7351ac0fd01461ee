"""create_app: builds settings, the DI container, the service and the flask-smorest API."""

from __future__ import annotations

import logging
import time

import swagger_ui_bundle
from dependency_injector import providers
from flask import Flask, send_from_directory
from flask_smorest import Api
from werkzeug.wrappers import Response

from domain.ports import Embedder
from entrypoints.blueprints import documents, knowledge_bases, search, system
from entrypoints.container import Container
from entrypoints.errors import register_error_handlers
from entrypoints.settings import Settings
from entrypoints.version import VERSION

log = logging.getLogger(__name__)

DOCS_ASSETS = "/docs/assets/"


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None) -> Flask:
    """Build the WSGI app. Tests pass their own settings and a fake embedder."""
    settings = settings or Settings.from_env()
    container = Container()
    container.config.from_dict(settings.as_dict())
    if embedder is not None:
        container.embedder.override(providers.Object(embedder))
    started = time.monotonic()
    service = container.service()
    loaded = service.load()
    log.info(
        "loaded model %s and %d knowledge base(s) in %.1fs",
        service.embedder.model_name,
        loaded,
        time.monotonic() - started,
    )

    app = Flask("kb-service")
    app.config.update(
        KB_SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE="kb-service",
        API_VERSION=VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=DOCS_ASSETS,
    )
    app.extensions["kb_container"] = container
    api = Api(app)
    for blueprint in (knowledge_bases.blp, documents.blp, documents.bulk, search.blp, system.blp):
        api.register_blueprint(blueprint)
    register_error_handlers(app)

    @app.get(DOCS_ASSETS + "<path:filename>")
    def docs_assets(filename: str) -> Response:
        # Swagger UI's files ship in the swagger-ui-bundle wheel: the docs page needs no CDN.
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

    return app
