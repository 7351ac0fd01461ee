"""Service-level routes: /v1/info, /healthz (alive) and /readyz (loaded, database reachable)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dependency_injector.wiring import Provide, Provider, inject
from flask import current_app
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import fields

from domain.errors import DomainError, StorageFullError
from domain.services import KnowledgeBaseService
from entrypoints.auth import opens, reads
from entrypoints.container import Container
from entrypoints.json_body import Blueprint
from entrypoints.responses import HealthSchema, InfoSchema, ReadySchema
from entrypoints.settings import Settings
from entrypoints.version import VERSION

blp = Blueprint("system", __name__, description="What is running, and is it alive.")


class ReadyChecksSchema(ReadySchema):
    database = fields.String(metadata={"description": "'reachable', or 'in-process' (no file)"})


def storage_state(ask: Callable[[], str]) -> str:
    """Ask the backend's store a trivial question; 503 if it cannot answer."""
    try:
        state = ask()
    except StorageFullError as error:  # it answers, but cannot take a write
        abort(503, message=error.message)
    except DomainError as error:
        abort(503, message=f"database unreachable: {error.message}")
    return state


@blp.route("/v1/info")
class Info(MethodView):
    @reads
    @blp.response(200, InfoSchema)
    @inject
    def get(
        self,
        service: KnowledgeBaseService = Provide[Container.service],
        settings: Settings = Provide[Container.settings],
    ) -> dict[str, Any]:
        """Version, backend and embedding model"""
        embedder = service.embedder
        return {
            "version": VERSION,
            "backend": settings.backend,
            "model": embedder.model_name,
            "model_fingerprint": embedder.fingerprint,
            "dimension": embedder.dimension,
            "max_seq_length": embedder.max_seq_length,
            "window": embedder.window,
            "embedding_cache_mb": settings.embedding_cache_mb,
        }


@blp.route("/readyz")
class Ready(MethodView):
    @opens
    @blp.doc(security=[])
    @blp.response(200, ReadyChecksSchema)
    @blp.alt_response(503, response="DEFAULT_ERROR", description="Still loading, or failed.")
    @inject
    def get(
        self,
        ask_storage: Callable[[], str] = Provider[Container.storage_state],
        service: Callable[[], KnowledgeBaseService] = Provider[Container.service],
    ) -> dict[str, Any]:
        """Readiness: the model and every knowledge base are loaded, the database answers"""
        # Providers, not values: nothing may be built or asked before loading is done.
        readiness = current_app.extensions["kb_readiness"]
        if not readiness.ready.is_set():
            message = readiness.error or "loading the model and the knowledge bases"
            abort(503, message=message)
        database = storage_state(ask_storage)
        # Counted now, not at start: knowledge bases come and go (and other workers make some).
        return {
            "status": "ready",
            "load_seconds": readiness.load_seconds,
            "knowledge_bases": service().count_knowledge_bases(),
            "database": database,
        }


@blp.route("/healthz")
class Health(MethodView):
    @opens
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, str]:
        """Liveness: the process answers"""
        return {"status": "ok"}
