"""create_app: the flask-smorest API over the DI container, which holds the settings and ports."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import Any

import swagger_ui_bundle
from dependency_injector import providers
from flask import Flask, request, send_from_directory
from flask_smorest import Api
from werkzeug.wrappers import Response

from domain.job_runner import Jobs
from domain.ports import Embedder, KnowledgeBaseStore
from domain.services import KnowledgeBaseService
from entrypoints import metrics
from entrypoints.auth import install_auth
from entrypoints.blueprints import (
    archives,
    documents,
    files,
    jobs,
    knowledge_bases,
    search,
    system,
    web,
)
from entrypoints.blueprints import metrics as metrics_page
from entrypoints.container import Container
from entrypoints.cors import install_cors
from entrypoints.errors import error_body, register_error_handlers
from entrypoints.limits import install_limits
from entrypoints.openapi import document_api, spec_options
from entrypoints.paths import DocumentIdConverter, document_id_schema, install_paths
from entrypoints.readiness import Readiness
from entrypoints.request_log import install_request_log
from entrypoints.settings import Settings
from entrypoints.spool import remove_leftovers
from entrypoints.version import VERSION

DOCS_ASSETS = "/docs/assets/"
ALWAYS_ANSWERED = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/web/")


def create_app(
    settings: Settings | None = None,
    *,
    container: Container | None = None,
    embedder: Embedder | None = None,
    background: bool = False,
    on_load_failure: Callable[[], None] | None = None,
) -> Flask:
    """Build the WSGI app over `container` (default: one reading the KB_* variables).

    Tests pass their own `settings` and a fake `embedder`, or a container with any provider
    overridden (a repository, an index factory). With `background`, the model and the data
    load in a thread: /healthz answers at once and /readyz says 503 until loading is done; the
    API answers 503 meanwhile. Otherwise loading happens here and a failure raises.
    """
    container = _configured(container or Container(), settings, embedder)
    settings = container.settings()  # the one Settings object every part is built from
    readiness = Readiness()
    app = Flask("kb-service", static_folder=None)
    install_paths(app)
    app.config.update(_flask_config(settings))
    app.extensions["kb_container"] = container
    app.extensions["kb_readiness"] = readiness
    container.wire()

    def repository() -> KnowledgeBaseStore | None:
        return container.repository() if readiness.ready.is_set() else None

    observed = metrics.install_metrics(app, repository)
    container.batch_observer.override(providers.Object(observed.observe_batch))
    container.cache_observer.override(providers.Object(observed.observe_cache))
    _register_api(app, settings)
    # before_request hooks run in this order: time and id the request, key, readiness, limits.
    install_request_log(app, observed)
    install_cors(app, settings)
    install_auth(app, settings)
    _refuse_until_ready(app, readiness)
    install_limits(app, container.limits(), lambda: container.service().count_knowledge_bases())
    loader = functools.partial(load, container, freeze=background)
    if background:
        readiness.start(loader, on_load_failure)
    else:
        readiness.run(loader)
        if readiness.exception is not None:
            close_app(app)
            raise readiness.exception
    return app


def _configured(
    container: Container, settings: Settings | None, embedder: Embedder | None
) -> Container:
    if settings is not None:
        container.settings.override(providers.Object(settings))
    if embedder is not None:
        container.embedder.override(providers.Object(embedder))
    return container


def load(container: Container, freeze: bool) -> int:
    """Open the chosen backend's store, load the model, build every index; return how many."""
    service: KnowledgeBaseService = container.service()
    if freeze:  # the served process (tests build many apps: leave theirs collectable)
        # The model and the stored documents live as long as the process: frozen, the
        # collector stops walking them at every full collection, which building a million
        # documents' indexes triggers dozens of times (30 s of CPU without this).
        gc.collect()
        gc.freeze()
    loaded = service.load()
    jobs: Jobs = container.jobs()  # finds the jobs a stopped process left unfinished, fails them
    # What their restores had built, unpublished, goes with them; on a database shared by
    # processes, a job killed with its process is seen lost only later: look again now and then.
    service.discard_abandoned_restores(jobs.unfinished)
    jobs.sweep(lambda: service.discard_abandoned_restores(jobs.unfinished))
    settings: Settings = container.settings()
    if settings.spool_dir is not None:  # the memory backend's own folder: one process owns it
        remove_leftovers(settings.spool_dir)
    if freeze:
        gc.freeze()
    return loaded


def _register_api(app: Flask, settings: Settings) -> None:
    api = Api(app)
    api.register_converter(DocumentIdConverter, document_id_schema)
    document_api(api, settings)
    for blueprint in (
        knowledge_bases.blp,
        archives.blp,
        documents.blp,
        documents.bulk,
        files.blp,
        search.blp,
        jobs.blp,
        system.blp,
        metrics_page.blp,
    ):
        api.register_blueprint(blueprint)
    app.register_blueprint(web.blp)
    register_error_handlers(app)
    _serve_docs_assets(app)


def _refuse_until_ready(app: Flask, readiness: Readiness) -> None:
    @app.before_request
    def refuse_until_ready() -> tuple[dict[str, Any], int, dict[str, str]] | None:
        # The web page itself loads while starting; its API calls get the 503 and say so.
        if (
            readiness.ready.is_set()
            or request.path == "/"
            or request.path.startswith(ALWAYS_ANSWERED)
        ):
            return None
        message = readiness.error or "kb-service is starting: the model and data are loading"
        return error_body(503, message), 503, {"Retry-After": "5"}


def _flask_config(settings: Settings) -> dict[str, Any]:
    return {
        "MAX_CONTENT_LENGTH": settings.max_body_bytes,
        "API_TITLE": "kb-service",
        "API_VERSION": VERSION,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        "OPENAPI_SWAGGER_UI_URL": DOCS_ASSETS,
        "API_SPEC_OPTIONS": spec_options(settings),
    }


def _serve_docs_assets(app: Flask) -> None:
    @app.get(DOCS_ASSETS + "<path:filename>")
    def docs_assets(filename: str) -> Response:
        # Swagger UI's files ship in the swagger-ui-bundle wheel: the docs page needs no CDN.
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)


def close_app(app: Flask) -> None:
    """Unwire the container and close the store (tests, and gunicorn's worker exit)."""
    container: Container = app.extensions["kb_container"]
    container.unwire()
    container.jobs.shutdown()  # first: a job's last writes need the store open
    container.shutdown_resources()
