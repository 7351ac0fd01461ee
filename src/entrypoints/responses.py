"""Marshmallow schemas of the v1 API's responses: each dumps the domain object a view returns."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields

from domain.identity import readable_model


class Count(fields.Integer):
    """How many items the attribute holds: a document's `chunks` tuple dumps as its length."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return super()._serialize(None if value is None else len(value), attr, obj, **kwargs)


class IndexInfoSchema(ma.Schema):
    """Dumps an IndexInfo."""

    type = fields.String(
        attribute="kind", metadata={"description": "flat (exact) or an approximate index type"}
    )
    memory_bytes = fields.Integer(metadata={"description": "approximate RAM held by the index"})


class KnowledgeBaseSchema(ma.Schema):
    """Dumps a KnowledgeBaseInfo: the knowledge base, its counts and its index."""

    name = fields.String(attribute="knowledge_base.name")
    description = fields.String(attribute="knowledge_base.description")
    metadata = fields.Dict(attribute="knowledge_base.metadata")
    created_at = fields.DateTime(attribute="knowledge_base.created_at")
    model = fields.Function(
        lambda info: readable_model(info.knowledge_base.model),
        metadata={"type": "string", "description": "the model's hub id or folder name, no path"},
    )
    model_fingerprint = fields.Function(
        lambda info: info.knowledge_base.fingerprint or None,
        metadata={
            "type": "string",
            "nullable": True,
            "description": "what the model is (null: recorded before fingerprints, not adopted)",
        },
    )
    dimension = fields.Integer(attribute="knowledge_base.dimension")
    chunking = fields.String(attribute="knowledge_base.chunking")
    chunk_overlap = fields.Integer(attribute="knowledge_base.chunk_overlap")
    document_count = fields.Integer(attribute="stats.document_count")
    chunk_count = fields.Integer(attribute="stats.chunk_count")
    index = fields.Nested(IndexInfoSchema)


class KnowledgeBasePageSchema(ma.Schema):
    """Dumps a Page of KnowledgeBaseInfo."""

    items = fields.List(fields.Nested(KnowledgeBaseSchema))
    next_cursor = fields.String(allow_none=True)


class AddedDocumentSchema(ma.Schema):
    """Dumps what a client needs of an added Document."""

    id = fields.String()
    chunks = Count()
    truncated = fields.Boolean()
    content_hash = fields.String(metadata={"description": '"sha256:" + hex SHA-256 of the text'})


class AddedDocumentsSchema(ma.Schema):
    items = fields.List(fields.Nested(AddedDocumentSchema))


class LayoutSchema(ma.Schema):
    """Dumps a Layout."""

    sections = fields.List(
        fields.Integer(), metadata={"description": "character offsets where headings begin"}
    )
    pages = fields.List(
        fields.Integer(),
        metadata={"description": "character offsets where page 2, 3, ... begin (page 1 at 0)"},
    )


class DocumentSchema(ma.Schema):
    """Dumps a Document (or, in a listing that asked for fewer fields, a dict of those)."""

    id = fields.String()
    content_hash = fields.String(
        metadata={"description": '"sha256:" + hex SHA-256 of the text, UTF-8 encoded'}
    )
    text = fields.String()
    metadata = fields.Dict()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    chunks = Count()
    truncated = fields.Boolean()
    layout = fields.Nested(
        LayoutSchema,
        metadata={
            "description": "the sections and pages of a document made from a file; absent for "
            "one without"
        },
    )

    @ma.post_dump
    def omit_an_empty_layout(self, data: dict[str, Any], **kwargs: Any) -> Any:
        layout = data.get("layout")
        if layout is not None and not (layout["sections"] or layout["pages"]):
            del data["layout"]
        return data


class SpanSchema(ma.Schema):
    """Dumps a Span: the character range [start, end) of a text."""

    start = fields.Integer()
    end = fields.Integer()


class DocumentDetailSchema(DocumentSchema):
    """One document read alone: also where each chunk lies, so a reader can see what was embedded
    (listings leave the spans out to stay small)."""

    spans = fields.Method(
        "dump_spans",
        metadata={
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"start": {"type": "integer"}, "end": {"type": "integer"}},
            },
            "description": "the character range [start, end) of each embedded chunk, in order",
        },
    )

    def dump_spans(self, document: Any) -> list[dict[str, Any]]:
        return [SpanSchema().dump(chunk.span) for chunk in document.chunks]


class DocumentPageSchema(ma.Schema):
    """Dumps a Page of Documents."""

    items = fields.List(fields.Nested(DocumentSchema))
    next_cursor = fields.String(allow_none=True)


class DeletedDocumentsSchema(ma.Schema):
    deleted = fields.List(fields.String())
    count = fields.Integer()
    dry_run = fields.Boolean()


class PassageSchema(ma.Schema):
    """Dumps a Passage."""

    start = fields.Integer()
    end = fields.Integer()
    text = fields.String()
    page = fields.Integer(
        metadata={
            "description": "the 1-based page where the passage starts, for a document with "
            "pages (one made from a PDF, say); absent otherwise"
        }
    )

    @ma.post_dump
    def omit_no_page(self, data: dict[str, Any], **kwargs: Any) -> Any:
        if data.get("page") is None:
            data.pop("page", None)
        return data


class SignalSchema(ma.Schema):
    """Dumps a Signal: one ranking's score and 1-based rank of a hit."""

    score = fields.Float()
    rank = fields.Integer()
    coverage = fields.Float(
        metadata={
            "description": "keyword only: the share of the query's words, weighted by inverse "
            "document frequency, the document holds (0 to 1)"
        }
    )

    @ma.post_dump
    def omit_no_coverage(self, data: dict[str, Any], **kwargs: Any) -> Any:
        if data.get("coverage") is None:
            data.pop("coverage", None)
        return data


class ExplanationSchema(ma.Schema):
    """Dumps an Explanation: what put a hit where it is."""

    dense = fields.Nested(
        SignalSchema,
        metadata={"description": "cosine score and rank in the dense (by meaning) ranking"},
    )
    keyword = fields.Nested(
        SignalSchema,
        allow_none=True,
        metadata={
            "description": "hybrid only: score (BM25; PostgreSQL: ts_rank) and rank in the "
            "keyword ranking, and coverage; null when the document matched no query word"
        },
    )
    fused = fields.Float(
        metadata={"description": "hybrid only: the value hits are ordered by (= fusion_score)"}
    )

    @ma.post_dump
    def only_the_dense_part_in_dense_search(self, data: dict[str, Any], **kwargs: Any) -> Any:
        if data.get("fused") is None:
            data.pop("fused", None)
            data.pop("keyword", None)
        return data


class HitSchema(ma.Schema):
    """Dumps a Hit."""

    id = fields.String()
    score = fields.Float()
    text = fields.String()
    metadata = fields.Dict()
    passage = fields.Nested(PassageSchema)
    fusion_score = fields.Float(
        metadata={
            "description": "hybrid only: the fused value hits are ordered by (`fusion`); "
            "`score` stays the cosine similarity"
        }
    )
    explain = fields.Nested(
        ExplanationSchema,
        metadata={"description": 'with "explain": true only: what put the hit where it is'},
    )

    @ma.post_dump
    def omit_what_the_hit_does_not_carry(self, data: dict[str, Any], **kwargs: Any) -> Any:
        # A dense hit has no fusion score, and a search may leave out text, metadata or passage:
        # absent keys, not nulls.
        for name in ("fusion_score", "explain", "text", "metadata", "passage"):
            if data.get(name) is None:
                data.pop(name, None)
        return data


class SearchResultSchema(ma.Schema):
    hits = fields.List(fields.Nested(HitSchema))


class BatchSearchResultSchema(ma.Schema):
    results = fields.List(fields.Nested(SearchResultSchema))


class InfoSchema(ma.Schema):
    version = fields.String()
    backend = fields.String()
    model = fields.String(metadata={"description": "the model's hub id or folder name"})
    model_fingerprint = fields.String(
        metadata={"description": "what the model is, wherever it lies (see docs/architecture.md)"}
    )
    dimension = fields.Integer()
    max_seq_length = fields.Integer()
    window = fields.Integer()
    embedding_cache_mb = fields.Integer(
        metadata={"description": "KB_EMBEDDING_CACHE_MB: memory for computed embeddings (0: off)"}
    )


class HealthSchema(ma.Schema):
    status = fields.String()


class ReadySchema(ma.Schema):
    status = fields.String()
    load_seconds = fields.Float()
    knowledge_bases = fields.Integer()
