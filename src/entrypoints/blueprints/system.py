"""Service-level routes: /v1/info, /healthz (alive) and /readyz (loaded, database reachable)."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
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
from entrypoints.version import VERSION

blp = Blueprint("system", __name__, description="What is running, and is it alive.")


class ReadyChecksSchema(ReadySchema):
    database = fields.String(metadata={"description": "'reachable', or 'in-process' (no file)"})


def database_state() -> str:
    """Ask the store a trivial question where there is one to ask; 503 if it cannot answer."""
    repository = current_app.extensions["kb_container"].repository()
    ping = getattr(repository, "ping", None)  # only stores outside the process have one
    if ping is None:
        return "in-process"
    try:
        ping()
    except StorageFullError as error:  # it answers, but cannot take a write
        abort(503, message=error.message)
    except DomainError as error:
        abort(503, message=f"database unreachable: {error.message}")
    return "reachable"


@blp.route("/v1/info")
class Info(MethodView):
    @reads
    @blp.response(200, InfoSchema)
    @inject
    def get(self, service: KnowledgeBaseService = Provide[Container.service]) -> dict[str, Any]:
        """Version, backend and embedding model"""
        embedder = service.embedder
        return {
            "version": VERSION,
            "backend": current_app.config["KB_SETTINGS"].backend,
            "model": embedder.model_name,
            "dimension": embedder.dimension,
            "max_seq_length": embedder.max_seq_length,
            "window": embedder.window,
        }


@blp.route("/readyz")
class Ready(MethodView):
    @opens
    @blp.doc(security=[])
    @blp.response(200, ReadyChecksSchema)
    @blp.alt_response(503, response="DEFAULT_ERROR", description="Still loading, or failed.")
    def get(self) -> dict[str, Any]:
        """Readiness: the model and every knowledge base are loaded, the database answers"""
        readiness = current_app.extensions["kb_readiness"]
        if not readiness.ready.is_set():
            message = readiness.error or "loading the model and the knowledge bases"
            abort(503, message=message)
        database = database_state()
        # Counted now, not at start: knowledge bases come and go (and other workers make some).
        service = current_app.extensions["kb_container"].service()
        return {
            "status": "ready",
            "load_seconds": readiness.load_seconds,
            "knowledge_bases": service.count_knowledge_bases(),
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
