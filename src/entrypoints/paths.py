"""URL paths name exactly one thing: no merged slashes, no redirects, and UTF-8 only."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from flask import Flask, request
from werkzeug.routing import PathConverter

from domain.model import DOCUMENT_ID_RULE, MAX_DOCUMENT_ID_LENGTH
from entrypoints.errors import error_body

UNDECODABLE = "the request path is not valid UTF-8 after percent-decoding"


class DocumentIdConverter(PathConverter):
    """The rest of the path, whatever it is: the domain's id rule refuses it by name (422),
    where werkzeug's `path` would not match an id starting with '/' at all (a bare 404)."""

    regex = r"[\s\S]+"  # newlines too
    part_isolating = False


def document_id_schema(converter: DocumentIdConverter) -> dict[str, Any]:
    """The OpenAPI schema of a document id in a path (for `Api.register_converter`)."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_DOCUMENT_ID_LENGTH,
        "description": DOCUMENT_ID_RULE,
    }


def install_paths(app: Flask) -> None:
    """Call before any route is added: rules take the map's settings when they are added."""
    # Werkzeug merges "//" by answering 308 to another path: with an id such as "/a", a client
    # that follows redirects would then read, overwrite or delete document "a".
    app.url_map.merge_slashes = False
    app.url_map.converters["document_id"] = DocumentIdConverter

    @app.before_request
    def refuse_undecodable_paths() -> tuple[dict[str, Any], int] | None:
        # Werkzeug decodes paths with errors="replace": %FF and %FE would both read as U+FFFD.
        if is_utf8_path(request.environ):
            return None
        return error_body(400, UNDECODABLE, {"path": ["not valid UTF-8"]}), 400


def is_utf8_path(environ: dict[str, Any]) -> bool:
    """Whether the path, percent-decoded, is UTF-8. PATH_INFO holds the decoded bytes (as
    latin-1), unless the server decoded them as UTF-8 with replacement, as werkzeug's own
    server and test client do: the raw request target, which both give, tells then."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    path = target.partition("?")[0]
    if "://" in path:  # the absolute form, "http://host/path"
        path = urlsplit(path).path
    return _utf8(environ.get("PATH_INFO", "")) and _utf8(unquote_to_bytes(_raw(path)))


def _raw(text: str) -> bytes:
    # A WSGI string carries bytes as latin-1; anything else was decoded already: take it as is.
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _utf8(value: str | bytes) -> bool:
    try:
        (_raw(value) if isinstance(value, str) else value).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
