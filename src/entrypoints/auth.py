"""API keys: admin keys may do everything, read-only keys may read and search; probes are open."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Flask, request

from entrypoints.errors import error_body
from entrypoints.settings import Settings

log = logging.getLogger(__name__)

# Probes answer orchestrators that hold no key. The docs page, the spec and the web page (/ and
# /web/) are static and hold no data, and a browser cannot send a header when it opens a page:
# they stay open too, and the pages send the key the user types with every API call.
OPEN_PATHS = ("/healthz", "/readyz", "/openapi.json", "/docs", "/web/")
OPEN_PAGE = "/"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ADMIN, READ_ONLY = "admin", "read-only"


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


def is_write() -> bool:
    """POST/PUT/PATCH/DELETE, except searches, which POST a query but change nothing."""
    rule = request.url_rule.rule if request.url_rule is not None else ""
    return request.method in WRITE_METHODS and "/search" not in rule


def is_open(path: str) -> bool:
    return path == OPEN_PAGE or path.startswith(OPEN_PATHS)


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
        if request.method == "OPTIONS" or is_open(request.path):
            return None
        role = keys.role(presented_key())
        if role is None:
            message = (
                "a valid API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key'"
            )
            return error_body(401, message), 401, {"WWW-Authenticate": "Bearer"}
        if role == READ_ONLY and is_write():
            message = "this API key is read-only; writes need a key from KB_API_KEYS"
            return error_body(403, message), 403, {}
        return None
