"""API keys: admin keys may do everything, read-only keys may read and search; probes are open.

Each view says which it is with `@opens`, `@reads` or `@writes`: a POST that changes nothing
(a search) is a read because its view says so, not because of its path.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, request
from werkzeug.exceptions import MethodNotAllowed

from entrypoints.errors import error_body
from entrypoints.settings import Settings

log = logging.getLogger(__name__)

View = TypeVar("View", bound=Callable[..., Any])
OPEN, READ, WRITE = "open", "read", "write"
MARK = "kb_access"
# Probes answer orchestrators that hold no key. The docs page, the spec and the web page (/ and
# /web/) are static and hold no data, and a browser cannot send a header when it opens a page:
# they stay open too, and the pages send the key the user types with every API call.
# Not registered by our blueprints, so no marker sits on them: flask-smorest's spec and docs page,
# the web page's static files, and the docs page's assets (create_app):
OPEN_ENDPOINTS = frozenset(
    {"api-docs.openapi_json", "api-docs.openapi_swagger_ui", "web.static", "docs_assets"}
)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ADMIN, READ_ONLY = "admin", "read-only"


def _marker(access: str) -> Callable[[View], View]:
    def mark(view: View) -> View:
        setattr(view, MARK, access)
        return view

    return mark


opens = _marker(OPEN)  # answers without a key: probes and static pages
reads = _marker(READ)  # any key: changes nothing, whatever its method
writes = _marker(WRITE)  # an admin key only


class KeyRing:
    """Tells which role a presented key has, comparing against every key in constant time."""

    def __init__(self, admin: tuple[str, ...], read_only: tuple[str, ...]) -> None:
        self._keys = [(key.encode(), ADMIN) for key in admin]
        self._keys += [(key.encode(), READ_ONLY) for key in read_only]

    def __bool__(self) -> bool:
        return bool(self._keys)

    def role(self, presented: str | None) -> str | None:
        if not presented:
            return None
        candidate = presented.encode("utf-8", "surrogateescape")
        found = None
        for key, role in self._keys:  # no early exit: the time taken does not depend on a match
            if hmac.compare_digest(candidate, key) and found is None:
                found = role
        return found


def presented_key() -> str | None:
    """The key from `Authorization: Bearer <key>`, else from `X-API-Key`."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("X-API-Key", "").strip() or None


def access_of(app: Flask, endpoint: str | None, method: str) -> str | None:
    """The marker on the view answering `method` at `endpoint`; None if it has none."""
    if endpoint in OPEN_ENDPOINTS:
        return OPEN
    view = app.view_functions.get(endpoint) if endpoint is not None else None
    view_class = getattr(view, "view_class", None)
    if view_class is not None:  # a MethodView: the marker is on its method
        view = getattr(view_class, "get" if method == "HEAD" else method.lower(), None)
    return getattr(view, MARK, None)


def required_access(app: Flask) -> str:
    """What the request needs. An unmarked view needs an admin key (the route-marker test
    fails for it); a path no view answers (404) needs what its method suggests."""
    if request.url_rule is not None:
        return access_of(app, request.url_rule.endpoint, request.method) or WRITE
    error = request.routing_exception
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        # A route's other methods: an open route answers its 405 to anyone. Every method the
        # route serves is asked (not whichever a set yields first: OPTIONS has no marker).
        adapter = app.url_map.bind_to_environ(request.environ)
        for method in sorted(set(error.valid_methods) - {"OPTIONS"}):
            endpoint, _ = adapter.match(method=method)
            if access_of(app, str(endpoint), method) == OPEN:
                return OPEN
    return WRITE if request.method in WRITE_METHODS else READ


def install_auth(app: Flask, settings: Settings) -> None:
    keys = KeyRing(settings.admin_keys, settings.read_only_keys)
    if not keys:
        log.warning(
            "no API keys configured (KB_API_KEYS, KB_READ_ONLY_API_KEYS): the service is open "
            "to anyone who can reach it"
        )
        return
    log.info(
        "API keys required: %d admin key(s), %d read-only key(s)",
        len(settings.admin_keys),
        len(settings.read_only_keys),
    )

    @app.before_request
    def require_key() -> tuple[dict[str, Any], int, dict[str, str]] | None:
        # OPTIONS is the browser's CORS preflight: it never carries a key and changes nothing.
        if request.method == "OPTIONS":
            return None
        access = required_access(app)
        if access == OPEN:
            return None
        role = keys.role(presented_key())
        if role is None:
            message = (
                "a valid API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key'"
            )
            return error_body(401, message), 401, {"WWW-Authenticate": "Bearer"}
        if role == READ_ONLY and access == WRITE:
            message = "this API key is read-only; writes need a key from KB_API_KEYS"
            return error_body(403, message), 403, {}
        return None
