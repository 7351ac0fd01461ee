"""/metrics: the service's metrics in Prometheus text format."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, current_app
from flask.views import MethodView
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from entrypoints.auth import reads
from entrypoints.json_body import Blueprint

blp = Blueprint("metrics", __name__, description="Prometheus metrics.")


@blp.route("/metrics")
class MetricsPage(MethodView):
    @reads
    @blp.response(200, content_type="text/plain", description="Prometheus text format.")
    def get(self) -> Response:
        """Request, model and knowledge-base metrics in Prometheus text format"""
        registry: Callable[[], CollectorRegistry] = current_app.extensions["kb_metrics_registry"]
        return Response(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
