"""Applies the domain's Limits to request bodies before any view runs, and caps knowledge bases."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, request

from domain.limits import Limits
from entrypoints.json_body import request_json

KNOWLEDGE_BASES = "/v1/knowledge-bases"


def items(body: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    listed = body.get(key)
    return [(str(i), item) for i, item in enumerate(listed)] if isinstance(listed, list) else []


def check_body(body: dict[str, Any], limits: Limits) -> None:
    """Each limit applies to the fields it names, in whichever body holds them: `top_k` and
    `query` of a search (or of each in `queries`), `metadata` (or each document's)."""
    limits.check_search(body.get("top_k"), body.get("query"))
    queries = items(body, "queries")
    limits.check_batch_queries(len(queries))
    for i, query in queries:
        if isinstance(query, dict):
            limits.check_search(query.get("top_k"), query.get("query"), ("queries", i))
    limits.check_metadata(body.get("metadata"))
    for i, document in items(body, "documents"):
        if isinstance(document, dict):
            limits.check_metadata(document.get("metadata"), ("documents", i, "metadata"))


def install_limits(app: Flask, limits: Limits, count_knowledge_bases: Callable[[], int]) -> None:
    """Check bodies before any view runs, and cap how many knowledge bases may exist."""

    @app.before_request
    def check_limits() -> None:
        if request.method not in {"POST", "PUT", "PATCH"} or request.url_rule is None:
            return  # no body, or no view to read it (404, 405)
        try:
            body = request_json(request) if request.is_json else None
        except json.JSONDecodeError:
            return  # the view's parser answers 422 with the reason
        if isinstance(body, dict):
            check_body(body, limits)

    endpoint = next(r.endpoint for r in app.url_map.iter_rules() if r.rule == KNOWLEDGE_BASES)
    create = app.view_functions[endpoint]
    # Counting and creating under one lock: two concurrent creates cannot both take the last slot.
    creating = threading.Lock()

    @functools.wraps(create)
    def capped(*args: Any, **kwargs: Any) -> Any:
        if request.method != "POST":
            return create(*args, **kwargs)
        with creating:
            limits.check_room(count_knowledge_bases())
            return create(*args, **kwargs)

    app.view_functions[endpoint] = capped
