"""The one hierarchy of errors the domain raises; the HTTP edge maps each family to a status."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the knowledge-base core raises on purpose."""

    def __init__(self, message: str, *, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class NotFoundError(DomainError):
    """Something addressed by name or id does not exist."""


class KnowledgeBaseNotFoundError(NotFoundError):
    def __init__(self, name: str) -> None:
        super().__init__(f"knowledge base {name!r} does not exist")


class DocumentNotFoundError(NotFoundError):
    def __init__(self, kb: str, document_id: str) -> None:
        super().__init__(f"document {document_id!r} does not exist in knowledge base {kb!r}")


class JobNotFoundError(NotFoundError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} does not exist")


class ConflictError(DomainError):
    """The request contradicts the current state (a name or id already taken, a model mismatch)."""


class KnowledgeBaseExistsError(ConflictError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"knowledge base {name!r} already exists", errors={"name": ["already taken"]}
        )


class DocumentExistsError(ConflictError):
    def __init__(self, kb: str, document_ids: list[str]) -> None:
        shown = ", ".join(repr(i) for i in document_ids[:10])
        more = f" and {len(document_ids) - 10} more" if len(document_ids) > 10 else ""
        super().__init__(
            f"document id(s) {shown}{more} already exist in knowledge base {kb!r}; "
            "use PUT to replace a document",
            errors={"ids": document_ids[:100]},
        )
        self.document_ids = document_ids


class ModelMismatchError(ConflictError):
    """A knowledge base was built with another embedding model than the one loaded.

    `model` is the readable name of the one the knowledge base needs (never a path); `reason`
    says why a knowledge base from before fingerprints was not adopted.
    """

    def __init__(
        self,
        kb: str,
        model: tuple[str, str, int],
        loaded: tuple[str, str, int],
        reason: str = "",
    ) -> None:
        """`model` and `loaded`: (readable name, fingerprint or "", dimension)."""
        built = f"knowledge base {kb!r} was built with model {_described(*model)}"
        message = f"{built} but the service runs {_described(*loaded)}"
        if reason:
            message += f": {reason}"
        message += f"; run the service with model {model[0]!r} to use this knowledge base"
        super().__init__(message, errors={"model": [f"built with {model[0]!r}"]})
        self.model = model[0]
        self.reason = reason


def _described(name: str, fingerprint: str, dimension: int) -> str:
    known = f"fingerprint {fingerprint[:12]}" if fingerprint else "recorded before fingerprints"
    return f"{name!r} ({dimension} dimensions, {known})"


class JobFinishedError(ConflictError):
    """A job that already succeeded or failed cannot be cancelled any more."""

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(
            f"job {job_id!r} already {status}: there is nothing left to cancel",
            errors={"status": [status]},
        )


class InvalidInputError(DomainError):
    """A value breaks a domain rule (bad name, empty text, bad metadata, ...)."""


class ArchiveInvalidError(DomainError):
    """An archive cannot be restored: corrupt, cut short, foreign or inconsistent.

    The message names the member (and line or row) at fault and what is wrong with it.
    """

    def __init__(self, message: str, *, member: str | None = None) -> None:
        super().__init__(message, errors={member or "archive": [message]})
        self.member = member


class ModelUnavailableError(DomainError):
    """The embedding model cannot be loaded (not cached and not downloadable, or a bad path)."""


class StorageError(DomainError):
    """The data store cannot be used: a foreign or newer file, or another process holds it."""


class StorageFullError(StorageError):
    """The disk holding the data is full: writes are refused, stored data is kept."""


class StorageUnavailableError(StorageError):
    """The data store is down, restarting or out of connections for now; the same request may
    succeed later. `retry_after` is a hint, in seconds, for when to try again."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnsupportedFileTypeError(DomainError):
    """An uploaded file is of a type no extractor reads (the edge answers 415)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name!r}: {reason}", errors={"file": {name: [reason]}})


class FileUnreadableError(InvalidInputError):
    """No text could be taken from an uploaded file: malformed, encrypted, without a text
    layer, or over a limit on what extracting it may cost. The message says which."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name!r}: {reason}", errors={"file": {name: [reason]}})


class FileTooLargeError(DomainError):
    """An uploaded file is larger than KB_MAX_FILE_BYTES (the edge answers 413)."""

    def __init__(self, name: str, limit: str) -> None:
        super().__init__(f"{name!r} is too large: {limit}", errors={"file": {name: [limit]}})
