"""Service-level routes: /v1/info and the /healthz liveness probe."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from domain.services import KnowledgeBaseService
from entrypoints.container import Container
from entrypoints.schemas import HealthSchema, InfoSchema
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


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, str]:
        """Liveness: the process answers"""
        return {"status": "ok"}
