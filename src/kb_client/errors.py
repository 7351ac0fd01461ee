"""Typed errors raised by the client, one per HTTP status class of the API's error body."""

from __future__ import annotations

from typing import Any


class KBError(Exception):
    """Any failure talking to kb-service; `status` is the HTTP status (0 when none came back)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        errors: Any = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors = errors
        self.body = body
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.status} {self.message}" if self.status else self.message


class KBConnectionError(KBError):
    """The service could not be reached (refused, reset, timed out, unresolvable)."""


class JobTimeout(KBError):
    """`wait_for_job` gave up before the job finished; the job goes on (cancel it if needed)."""


class JobFailed(KBError):
    """A job the client waited for failed or was cancelled; `body` is the job, `message` its
    error."""


class BadRequest(KBError):
    """400: the request could not be read."""


class Unauthorized(KBError):
    """401: no API key, or a key the service does not know."""


class Forbidden(KBError):
    """403: the API key may not do this (a read-only key asked to write)."""


class NotFound(KBError):
    """404: unknown knowledge base or document."""


class Conflict(KBError):
    """409: the name or id is taken, or the knowledge base was built with another model."""


class PayloadTooLarge(KBError):
    """413: the body is over the service's KB_MAX_BODY_BYTES."""


class Invalid(KBError):
    """422: malformed input; `errors` names the bad fields."""


class RateLimited(KBError):
    """429: too many requests; `retry_after` is the service's hint in seconds."""


class ServiceUnavailable(KBError):
    """503: the service is starting or its model or database is unavailable."""


class ServerError(KBError):
    """Any other 5xx: a fault on the service's side."""


ERROR_OF_STATUS: dict[int, type[KBError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: Invalid,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_for(status: int, body: Any, text: str, retry_after: float | None) -> KBError:
    """The typed error for a response: {"code", "status", "message", "errors"} when it is JSON."""
    kind = ERROR_OF_STATUS.get(status) or (ServerError if status >= 500 else KBError)
    message, errors = "", None
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("status") or "")
        errors = body.get("errors")
    if not message:
        message = text.strip()[:200] or f"HTTP {status}"
    return kind(message, status=status, errors=errors, body=body, retry_after=retry_after)
