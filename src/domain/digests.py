"""Content hashes and document digests: what a sync compares instead of whole texts.

A document's `content_hash` is "sha256:" + the lowercase hex SHA-256 of its text encoded as
UTF-8 (lone surrogates, which a JSON string may carry, encoded as they are: "surrogatepass").
Anyone holding the text computes the same value (`content_hash`), so a client tells a changed
document from an unchanged one by listing hashes, without reading texts back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HASH_PREFIX = "sha256:"
DIGEST_SIZE = 32  # bytes of a SHA-256 digest


def content_hash(text: str) -> str:
    """The content hash of a text: "sha256:" + hex SHA-256 of its UTF-8 bytes."""
    return HASH_PREFIX + text_digest(text).hex()


def text_digest(text: str) -> bytes:
    """The raw 32-byte SHA-256 of a text's UTF-8 bytes (the hash without its prefix)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def digest_bytes(hash_text: str) -> bytes:
    """The raw digest a "sha256:<hex>" content hash names (for compact storage)."""
    return bytes.fromhex(hash_text.removeprefix(HASH_PREFIX))


def hash_of_digest(digest: bytes) -> str:
    return HASH_PREFIX + digest.hex()


@dataclass(frozen=True)
class DocumentDigest:
    """A stored document as a sync sees it: its id, content hash and metadata, no text."""

    id: str
    content_hash: str
    metadata: Mapping[str, Any]
