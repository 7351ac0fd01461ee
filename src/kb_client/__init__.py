"""Python client for kb-service's HTTP API; imports nothing of the service itself."""

from kb_client.client import KBClient
from kb_client.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    KBConnectionError,
    KBError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
)
from kb_client.models import (
    AddedDocument,
    DeleteResult,
    Document,
    Hit,
    Info,
    KnowledgeBase,
    NewDocument,
    Page,
    Passage,
    SearchQuery,
)
from kb_client.transport import Transport

__all__ = [
    "AddedDocument",
    "BadRequest",
    "Conflict",
    "DeleteResult",
    "Document",
    "Forbidden",
    "Hit",
    "Info",
    "Invalid",
    "KBClient",
    "KBConnectionError",
    "KBError",
    "KnowledgeBase",
    "NewDocument",
    "NotFound",
    "Page",
    "Passage",
    "PayloadTooLarge",
    "RateLimited",
    "SearchQuery",
    "ServerError",
    "ServiceUnavailable",
    "Transport",
    "Unauthorized",
]
