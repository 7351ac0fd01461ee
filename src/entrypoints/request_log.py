"""Per-request bookkeeping: a request id, one JSON log line, and the request metrics."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, g, request
from werkzeug.wrappers import Response

from entrypoints.metrics import Metrics

REQUEST_ID = "X-Request-ID"
# A client's id is echoed in a header and a log line: only plain, short tokens are taken as is.
CLIENT_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

access_log = logging.getLogger("kb.access")


def json_access_log() -> logging.Logger:
    """`kb.access` writes bare JSON lines to stderr, not through the root logger's format."""
    if not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.propagate = False
    return access_log


def request_id() -> str:
    given = request.headers.get(REQUEST_ID, "")
    return given if CLIENT_ID.fullmatch(given) else uuid.uuid4().hex


def install_request_log(app: Flask, metrics: Metrics) -> None:
    log = json_access_log()

    def start() -> None:
        g.kb_started = time.perf_counter()
        g.kb_request_id = request_id()

    # First of all before_request hooks, so the time includes the key check and the limits.
    app.before_request_funcs.setdefault(None, []).insert(0, start)

    @app.after_request
    def finish(response: Response) -> Response:
        started = g.get("kb_started", time.perf_counter())
        seconds = time.perf_counter() - started
        # The route template, never the raw path: bounded label values, and no document ids.
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.observe_request(request.method, route, response.status_code, seconds)
        rid = g.get("kb_request_id") or request_id()
        response.headers[REQUEST_ID] = rid
        if log.isEnabledFor(logging.INFO):
            line = {
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "event": "request",
                "request_id": rid,
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "client": request.remote_addr,
            }
            log.info(json.dumps(line))
        return response
