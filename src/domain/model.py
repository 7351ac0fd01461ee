"""Entities and value objects: knowledge bases, documents, chunks and search hits."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.digests import content_hash
from domain.errors import InvalidInputError
from domain.explanation import Explanation
from domain.layout import NO_LAYOUT
from domain.layout import Layout as Layout  # re-exported: Layout is part of the model

Scalar = str | int | float | bool
MetadataValue = Scalar | list[Scalar]
Metadata = Mapping[str, MetadataValue]

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
NAME_RULE = "1-64 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit"
MAX_DOCUMENT_ID_LENGTH = 256
# Every id is one URL path to exactly one document: the path is percent-decoded and read as
# '/'-separated segments, so anything a client, proxy or router may drop, fold or merge is out.
DOCUMENT_ID_RULE = (
    f"1-{MAX_DOCUMENT_ID_LENGTH} characters of valid UTF-8 without control characters, no "
    "leading or trailing whitespace, and no empty, '.' or '..' segment between '/'s"
)
# Unicode category Cc (C0, DEL, C1) and Cs (lone surrogates, which UTF-8 cannot encode).
_UNADDRESSABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_METADATA_KEY_LENGTH = 128
MAX_IDS_PER_DELETE = 10_000  # ids one bulk delete may list
MAX_DESCRIPTION_LENGTH = 10_000


class Chunking(StrEnum):
    """How a text longer than the model's window is embedded."""

    WINDOW = "window"
    TRUNCATE = "truncate"


def validate_name(name: str) -> str:
    # One path segment of plain ASCII: no '/', no '.'/'..' segment, no case or encoding aliases.
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInputError(
            f"invalid knowledge base name {name!r:.80}: {NAME_RULE}", errors={"name": [NAME_RULE]}
        )
    return name


def validate_description(description: str) -> str:
    if not isinstance(description, str) or NUL in description:
        raise InvalidInputError(
            "description must be a string without NUL (\\u0000) characters",
            errors={"description": ["must be a string without NUL"]},
        )
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInputError(
            f"description is longer than {MAX_DESCRIPTION_LENGTH} characters",
            errors={"description": [f"at most {MAX_DESCRIPTION_LENGTH} characters"]},
        )
    return description


def validate_metadata(metadata: Mapping[str, Any], field_name: str = "metadata") -> dict[str, Any]:
    """Return a plain copy of flat metadata or raise InvalidInputError naming the bad key."""
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(
            "metadata must be an object", errors={field_name: ["not an object"]}
        )
    clean: dict[str, Any] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or len(key) > MAX_METADATA_KEY_LENGTH or NUL in key:
            raise InvalidInputError(
                f"metadata key {key!r} must be a non-empty string of at most "
                f"{MAX_METADATA_KEY_LENGTH} characters, without NUL",
                errors={field_name: {str(key): ["invalid key"]}},
            )
        if isinstance(value, list):
            if not all(is_scalar(item) for item in value):
                raise InvalidInputError(
                    f"metadata {key!r}: list items must be strings (without NUL), numbers or "
                    "booleans",
                    errors={field_name: {key: ["list items must be str, int, float or bool"]}},
                )
            clean[key] = list(value)
        elif is_scalar(value):
            clean[key] = value
        else:
            raise InvalidInputError(
                f"metadata {key!r}: values must be strings (without NUL), numbers, booleans or "
                "lists of those",
                errors={field_name: {key: ["must be str, int, float, bool or a list of those"]}},
            )
    return clean


def is_scalar(value: object) -> bool:
    """A metadata or filter value: a finite number, a boolean, or a string without NUL."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return NUL not in value
    return isinstance(value, (int, bool))


NUL = "\x00"  # no database text type stores it (PostgreSQL refuses it): refused everywhere


def validate_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("text must be a non-empty string", errors={"text": ["empty text"]})
    if NUL in text:
        raise InvalidInputError(
            "text must not contain NUL (\\u0000) characters", errors={"text": ["contains NUL"]}
        )
    return text


def validate_document_id(document_id: str) -> str:
    """Return the id if every route can address exactly it (DOCUMENT_ID_RULE), else raise."""
    if not is_addressable(document_id):
        raise InvalidInputError(
            f"invalid document id {document_id!r:.80}: {DOCUMENT_ID_RULE}",
            errors={"id": [DOCUMENT_ID_RULE]},
        )
    return document_id


def is_addressable(document_id: object) -> bool:
    """Whether `document_id` keeps DOCUMENT_ID_RULE: one URL path names exactly it."""
    return (
        isinstance(document_id, str)
        and 1 <= len(document_id) <= MAX_DOCUMENT_ID_LENGTH
        and document_id == document_id.strip()
        and not _UNADDRESSABLE.search(document_id)
        and all(segment not in ("", ".", "..") for segment in document_id.split("/"))
    )


@dataclass(frozen=True)
class KnowledgeBase:
    """A named collection of documents embedded with one model.

    `model` names it for people; `fingerprint` is what it is (Embedder.fingerprint). Knowledge
    bases from before fingerprints have "" and the model setting's text, maybe a path.
    """

    name: str
    model: str
    dimension: int
    created_at: datetime
    description: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    chunking: Chunking = Chunking.WINDOW
    chunk_overlap: int = 32
    fingerprint: str = ""

    def __post_init__(self) -> None:
        validate_name(self.name)
        object.__setattr__(self, "metadata", validate_metadata(self.metadata))
        object.__setattr__(self, "chunking", Chunking(self.chunking))
        if self.created_at.tzinfo is None:
            raise InvalidInputError("created_at must be timezone-aware")
        if self.dimension <= 0:
            raise InvalidInputError("dimension must be positive")
        if self.chunk_overlap < 0:
            raise InvalidInputError(
                "chunk_overlap must be >= 0", errors={"chunk_overlap": ["must be >= 0"]}
            )


@dataclass(frozen=True)
class Span:
    """A half-open character range [start, end) of a document's text."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise InvalidInputError(f"invalid span [{self.start}, {self.end})")


@dataclass(frozen=True)
class Chunk:
    """One embedded window of a document; `id` is the vector's label in the index."""

    id: int
    span: Span


@dataclass(frozen=True)
class Document:
    """A stored document: its text, metadata, the chunks that were embedded, and its layout
    (empty unless it came from a file with headings or pages)."""

    id: str
    text: str
    metadata: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    chunks: tuple[Chunk, ...] = ()
    truncated: bool = False
    # Always the hash of `text` (set here, whatever is passed, so `replace` cannot leave a
    # stale one); stored so listings need no text (see domain.digests).
    content_hash: str = field(default="", compare=False)
    layout: Layout = NO_LAYOUT

    def __post_init__(self) -> None:
        validate_document_id(self.id)
        validate_text(self.text)
        object.__setattr__(self, "metadata", validate_metadata(self.metadata))
        object.__setattr__(self, "content_hash", content_hash(self.text))
        self.layout.fits(len(self.text))


@dataclass(frozen=True)
class NewDocument:
    """A document as a client submits it: id optional, not embedded yet."""

    text: str
    id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    layout: Layout = NO_LAYOUT

    def __post_init__(self) -> None:
        if self.id is not None:
            validate_document_id(self.id)
        validate_text(self.text)
        object.__setattr__(self, "metadata", validate_metadata(self.metadata))
        self.layout.fits(len(self.text))


@dataclass(frozen=True)
class Passage:
    """The part of a hit's text that matched best; `page` (1-based) where `start` lies, for a
    document with pages (Layout.pages), else None."""

    start: int
    end: int
    text: str
    page: int | None = None


@dataclass(frozen=True)
class Hit:
    """One ranked search result; `score` is a cosine similarity in [-1, 1].

    `text`, `metadata` and `passage` are None when the search did not ask for them.
    """

    id: str
    score: float
    text: str | None
    metadata: Mapping[str, Any] | None
    passage: Passage | None
    chunk: int = field(default=-1, compare=False)
    fusion_score: float | None = None
    explain: Explanation | None = None

    def keeping(self, fields: Collection[str]) -> Hit:
        """This hit with only the named ones of text, metadata and passage."""
        return replace(
            self,
            text=self.text if "text" in fields else None,
            metadata=self.metadata if "metadata" in fields else None,
            passage=self.passage if "passage" in fields else None,
        )


@dataclass(frozen=True)
class Page:
    """One page of a listing; `next_cursor` is None on the last page."""

    items: list[Any]
    next_cursor: str | None


@dataclass(frozen=True)
class KnowledgeBaseStats:
    document_count: int
    chunk_count: int
