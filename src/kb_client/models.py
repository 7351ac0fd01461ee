"""The API's JSON shapes as TypedDicts: what the client's methods take and return."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

Metadata = dict[str, Any]
Filter = dict[str, Any]
Chunking = Literal["window", "truncate"]
Mode = Literal["dense", "hybrid"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
HitField = Literal["text", "metadata", "passage"]


class KnowledgeBase(TypedDict):
    name: str
    description: str
    metadata: Metadata
    created_at: str
    model: str
    model_fingerprint: str | None
    dimension: int
    chunking: str
    chunk_overlap: int
    document_count: int
    chunk_count: int


class NewDocument(TypedDict):
    text: str
    id: NotRequired[str]
    metadata: NotRequired[Metadata]


class AddedDocument(TypedDict):
    id: str
    chunks: int
    truncated: bool
    content_hash: str


class Layout(TypedDict):
    """Character offsets into a document's text: where headings and pages 2, 3, ... begin."""

    sections: list[int]
    pages: list[int]


class Span(TypedDict):
    start: int
    end: int


class Document(TypedDict):
    """`layout` only for a document made from a file with headings or pages; `spans` (each
    chunk's character range) only for one read alone, not in listings."""

    id: str
    content_hash: str
    text: str
    metadata: Metadata
    created_at: str
    updated_at: str
    chunks: int
    truncated: bool
    layout: NotRequired[Layout]
    spans: NotRequired[list[Span]]


DocumentField = Literal[
    "id", "content_hash", "metadata", "text", "created_at", "updated_at", "chunks", "truncated"
]


class DocumentHash(TypedDict):
    """A listing's item with fields id, content_hash and metadata (`iter_document_hashes`).

    content_hash is "sha256:" + hex SHA-256 of the text's UTF-8 bytes (`kb_client.content_hash`).
    """

    id: str
    content_hash: str
    metadata: Metadata


class DeleteResult(TypedDict):
    deleted: list[str]
    count: int
    dry_run: bool


class Passage(TypedDict):
    """`page` (1-based, where `start` lies) only for a document with pages."""

    start: int
    end: int
    text: str
    page: NotRequired[int]


Fusion = Literal["score", "rrf"]


class Signal(TypedDict):
    """One ranking's score and 1-based rank of a hit; keyword signals also carry coverage."""

    score: float
    rank: int
    coverage: NotRequired[float]


class Explanation(TypedDict):
    """What put a hit where it is: `keyword` (None: no query word matched) and `fused` (the
    hybrid ordering value, = fusion_score) are present in hybrid search only."""

    dense: Signal
    keyword: NotRequired[Signal | None]
    fused: NotRequired[float]


class Hit(TypedDict):
    """`text`, `metadata` and `passage` are left out when the search's `fields` omit them."""

    id: str
    score: float
    text: NotRequired[str]
    metadata: NotRequired[Metadata]
    passage: NotRequired[Passage]
    fusion_score: NotRequired[float]
    explain: NotRequired[Explanation]


class SearchQuery(TypedDict, total=False):
    """One search of a batch: exactly one of query, document_id or vector."""

    query: str
    document_id: str
    vector: list[float]
    top_k: int
    min_score: float
    filter: Filter
    mode: Mode
    keyword_weight: float
    rrf_k: int
    fusion: Fusion
    explain: bool
    diversity: float
    probes: int
    exact: bool
    fields: list[HitField]


class Info(TypedDict):
    version: str
    backend: str
    model: str
    model_fingerprint: str
    dimension: int
    max_seq_length: int
    window: int


class Page(TypedDict):
    items: list[Any]
    next_cursor: NotRequired[str | None]


class Refusal(TypedDict):
    """An input a job refused and went on without (an import's line, from 1)."""

    line: int
    id: str | None
    reason: str


class Job(TypedDict):
    """Long work on the service: `done` of `total` units (None: unknown yet).

    An import's units are lines; its `refused` lists the first 1000 refused lines,
    `refused_count` counts them all, and `counts` has added, replaced and unchanged.
    """

    id: str
    kind: str
    knowledge_base: str | None
    status: JobStatus
    done: int
    total: int | None
    error: str | None
    cancel_requested: bool
    created_at: str
    updated_at: str
    refused: NotRequired[list[Refusal]]
    refused_count: NotRequired[int]
    counts: NotRequired[dict[str, int]]
