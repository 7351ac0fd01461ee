"""URL paths of the API, each name and id escaped as one path segment."""

from __future__ import annotations

from urllib.parse import quote

KNOWLEDGE_BASES = "/v1/knowledge-bases"
JOBS = "/v1/jobs"


def segment(value: str) -> str:
    """One URL path segment: "/", "?", "#" and "%" escaped, and "." / ".." kept literal.

    The service reads the decoded path as the id, so every id arrives exactly as given; one
    that breaks its id rule (such as "/a" or "..") is refused there (422), never aliased here.
    """
    quoted = quote(value, safe="")
    # A bare "." or ".." segment would be folded away by URL normalisation: another resource.
    return quoted.replace(".", "%2E") if quoted in {".", ".."} else quoted


def kb_path(name: str) -> str:
    return f"{KNOWLEDGE_BASES}/{segment(name)}"


def documents_path(kb: str) -> str:
    return kb_path(kb) + "/documents"


def document_path(kb: str, id: str) -> str:
    return f"{documents_path(kb)}/{segment(id)}"


def job_path(id: str) -> str:
    return f"{JOBS}/{segment(id)}"


def archive_path(kb: str) -> str:
    return kb_path(kb) + "/archive"


def files_path(kb: str) -> str:
    return kb_path(kb) + "/files"
