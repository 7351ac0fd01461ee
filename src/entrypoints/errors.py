"""The one place where domain errors become HTTP statuses, all in flask-smorest's error shape."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, g
from werkzeug.exceptions import HTTPException

from domain.errors import (
    ArchiveInvalidError,
    ConflictError,
    DomainError,
    FileTooLargeError,
    InvalidInputError,
    ModelMismatchError,
    ModelUnavailableError,
    NotFoundError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
    UnsupportedFileTypeError,
)

log = logging.getLogger(__name__)

STATUS_OF: list[tuple[type[DomainError], int]] = [
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidInputError, 422),
    # An uploaded file of a type no extractor reads, or larger than KB_MAX_FILE_BYTES.
    (UnsupportedFileTypeError, 415),
    (FileTooLargeError, 413),
    # A corrupt, cut short or foreign archive: the client sent something that cannot be restored.
    (ArchiveInvalidError, 422),
    (ModelUnavailableError, 503),
    # The disk is full: retrying will not help until someone frees space (it is not the client).
    (StorageFullError, 507),
    # The database is down or busy: retry later (data already stored is not at risk).
    (StorageError, 503),
]


def error_body(code: int, message: str | None = None, errors: Any = None) -> dict[str, Any]:
    """The one error shape: every key always there, `errors` {} when no field is to blame."""
    phrase = HTTPStatus(code).phrase
    return {"code": code, "status": phrase, "message": message or phrase, "errors": errors or {}}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(error: DomainError) -> tuple[dict[str, Any], int, dict[str, str]]:
        code = next((status for kind, status in STATUS_OF if isinstance(error, kind)), 500)
        headers = {}
        if isinstance(error, StorageUnavailableError):  # down for now: say when to try again
            headers["Retry-After"] = str(error.retry_after)
        message = error.message
        if isinstance(error, ModelMismatchError):  # the setting that fixes it, for the operator
            message += " (KB_EMBEDDING_MODEL: its hub id or any folder holding it)"
        return error_body(code, message, error.errors), code, headers

    @app.errorhandler(413)
    def too_large(error: HTTPException) -> tuple[dict[str, Any], int]:
        # An archive upload names its own bound (see blueprints.archives).
        name, limit = g.get(
            "body_limit", ("KB_MAX_BODY_BYTES", app.config.get("MAX_CONTENT_LENGTH"))
        )
        return error_body(413, f"the request body is too large: {name} is {limit}"), 413

    @app.errorhandler(400)
    def bad_request(error: HTTPException) -> tuple[dict[str, Any], int]:
        # A body that is not JSON at all is as malformed as a JSON body with wrong fields.
        data = getattr(error, "data", None) or {}
        errors = data.get("messages") or data.get("errors")
        message = data.get("message") or "malformed request: the body must be a JSON object"
        return error_body(422, message, errors), 422

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[dict[str, Any], int, dict[str, str]]:
        # Replaces flask-smorest's handler, which drops the headers an error carries, such as
        # the Allow header every 405 must have.
        code = error.code or 500
        data = getattr(error, "data", None) or {}
        errors = data.get("messages") or data.get("errors")
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        headers.update(data.get("headers") or {})
        return error_body(code, data.get("message") or error.description, errors), code, headers

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[dict[str, Any], int]:
        log.exception("unhandled error")
        return error_body(500, "internal error; see the service log"), 500
