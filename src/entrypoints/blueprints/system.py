"""Service-level routes: /v1/info, /healthz (alive) and /readyz (loaded)."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask import current_app
from flask.views import MethodView
from flask_smorest import abort

from domain.services import KnowledgeBaseService
from entrypoints.container import Container
from entrypoints.json_body import Blueprint
from entrypoints.schemas import HealthSchema, InfoSchema, ReadySchema
from entrypoints.version import VERSION

blp = Blueprint("system", __name__, description="What is running, and is it alive.")


@blp.route("/v1/info")
class Info(MethodView):
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
    @blp.response(200, ReadySchema)
    @blp.alt_response(503, response="DEFAULT_ERROR", description="Still loading, or failed.")
    def get(self) -> dict[str, Any]:
        """Readiness: the model and every knowledge base are loaded"""
        readiness = current_app.extensions["kb_readiness"]
        if not readiness.ready.is_set():
            message = readiness.error or "loading the model and the knowledge bases"
            abort(503, message=message)
        return {
            "status": "ready",
            "load_seconds": readiness.load_seconds,
            "knowledge_bases": readiness.knowledge_bases,
        }


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, str]:
        """Liveness: the process answers"""
        return {"status": "ok"}
