"""The KB_* limits on metadata, searches and knowledge bases; every refusal names its limit."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, request

from domain.errors import ConflictError, InvalidInputError
from entrypoints.json_body import request_json
from entrypoints.settings import Settings

KNOWLEDGE_BASES = "/v1/knowledge-bases"


def refusal(limit: str, value: int, what: str, path: tuple[str, ...]) -> InvalidInputError:
    """`what` the request holds, the limit and its value, and the field it concerns."""
    errors: Any = [f"{limit} is {value}"]
    for key in reversed(path):
        errors = {key: errors}
    return InvalidInputError(f"{what}: {limit} is {value}", errors=errors)


def check_metadata(metadata: Any, settings: Settings, path: tuple[str, ...]) -> None:
    if not isinstance(metadata, dict):
        return  # not ours to judge: the schema says what is wrong with it
    keys, most_keys = len(metadata), settings.max_metadata_keys
    if keys > most_keys:
        raise refusal("KB_MAX_METADATA_KEYS", most_keys, f"metadata has {keys} keys", path)
    size = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode())
    if size > settings.max_metadata_bytes:
        what = f"metadata is {size} bytes as JSON"
        raise refusal("KB_MAX_METADATA_BYTES", settings.max_metadata_bytes, what, path)


def check_search(query: Any, settings: Settings, path: tuple[str, ...]) -> None:
    """top_k and the query text's length of one search (of a batch, under `path`)."""
    if not isinstance(query, dict):
        return
    top_k = query.get("top_k")
    if isinstance(top_k, int) and not isinstance(top_k, bool) and top_k > settings.max_top_k:
        raise refusal("KB_MAX_TOP_K", settings.max_top_k, f"top_k is {top_k}", (*path, "top_k"))
    text = query.get("query")
    if isinstance(text, str) and len(text) > settings.max_query_chars:
        what = f"the query is {len(text)} characters"
        raise refusal("KB_MAX_QUERY_CHARS", settings.max_query_chars, what, (*path, "query"))


def items(body: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    listed = body.get(key)
    return [(str(i), item) for i, item in enumerate(listed)] if isinstance(listed, list) else []


def check_body(body: dict[str, Any], settings: Settings) -> None:
    """Each limit applies to the fields it names, in whichever body holds them: `top_k` and
    `query` of a search (or of each in `queries`), `metadata` (or each document's)."""
    check_search(body, settings, ())
    queries = items(body, "queries")
    if len(queries) > settings.max_batch_queries:
        what = f"the batch has {len(queries)} searches"
        raise refusal("KB_MAX_BATCH_QUERIES", settings.max_batch_queries, what, ("queries",))
    for i, query in queries:
        check_search(query, settings, ("queries", i))
    check_metadata(body.get("metadata"), settings, ("metadata",))
    for i, document in items(body, "documents"):
        if isinstance(document, dict):
            check_metadata(document.get("metadata"), settings, ("documents", i, "metadata"))


def install_limits(
    app: Flask, settings: Settings, count_knowledge_bases: Callable[[], int]
) -> None:
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
            check_body(body, settings)

    endpoint = next(r.endpoint for r in app.url_map.iter_rules() if r.rule == KNOWLEDGE_BASES)
    create = app.view_functions[endpoint]
    # Counting and creating under one lock: two concurrent creates cannot both take the last slot.
    creating = threading.Lock()

    @functools.wraps(create)
    def capped(*args: Any, **kwargs: Any) -> Any:
        if request.method != "POST":
            return create(*args, **kwargs)
        with creating:
            if count_knowledge_bases() >= settings.max_knowledge_bases:
                raise ConflictError(
                    "cannot create another knowledge base: KB_MAX_KNOWLEDGE_BASES is "
                    f"{settings.max_knowledge_bases}",
                    errors={"name": [f"KB_MAX_KNOWLEDGE_BASES is {settings.max_knowledge_bases}"]},
                )
            return create(*args, **kwargs)

    app.view_functions[endpoint] = capped
