"""Marshmallow schemas of the v1 API's requests: types, with the bounds imported from the domain."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from domain.cursor import DEFAULT_PAGE_SIZE, MAX_CURSOR_LENGTH, MAX_PAGE_SIZE
from domain.errors import InvalidInputError
from domain.fusion import DEFAULT_WEIGHTS, FUSIONS
from domain.model import (
    DOCUMENT_ID_RULE,
    MAX_DESCRIPTION_LENGTH,
    MAX_DOCUMENT_ID_LENGTH,
    MAX_IDS_PER_DELETE,
    NAME_PATTERN,
    NAME_RULE,
    Chunking,
    is_addressable,
    validate_metadata,
)
from domain.search_request import (
    DEFAULT_RRF_K,
    DEFAULT_TOP_K,
    HIT_FIELDS,
    MAX_BATCH_QUERIES,
    MAX_PROBES,
    MAX_RRF_K,
    MAX_TOP_K,
    MAX_VECTOR_LENGTH,
    MODES,
)
from entrypoints.json_body import TOO_DEEP, strict_loads


class Metadata(fields.Dict):
    """Flat metadata: string keys, values str/int/float/bool or lists of those."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(keys=fields.String(), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        loaded = super()._deserialize(value, attr, data, **kwargs)  # type: ignore[no-untyped-call]
        try:
            return validate_metadata(loaded)
        except InvalidInputError as error:
            raise ma.ValidationError(error.message) from error


def _not_blank(text: str) -> None:
    if not text.strip():
        raise ma.ValidationError("Must contain something other than whitespace.")


Text = fields.String(required=True, validate=[validate.Length(min=1), _not_blank])


def _addressable(document_id: str) -> None:
    if not is_addressable(document_id):
        raise ma.ValidationError(DOCUMENT_ID_RULE)


def _slug(name: str) -> None:
    # fullmatch: "$" alone would let a final "\n" through.
    if not NAME_PATTERN.fullmatch(name):
        raise ma.ValidationError(NAME_RULE)


DocumentId = fields.String(
    validate=_addressable,
    metadata={"minLength": 1, "maxLength": MAX_DOCUMENT_ID_LENGTH, "description": DOCUMENT_ID_RULE},
)


class KnowledgeBaseCreateSchema(ma.Schema):
    name = fields.String(
        required=True,
        validate=_slug,
        metadata={"pattern": NAME_PATTERN.pattern, "description": NAME_RULE},
    )
    description = fields.String(
        load_default="", validate=validate.Length(max=MAX_DESCRIPTION_LENGTH)
    )
    metadata = Metadata(load_default=dict)
    chunking = fields.String(
        load_default=Chunking.WINDOW.value, validate=validate.OneOf([c.value for c in Chunking])
    )
    chunk_overlap = fields.Integer(strict=True, validate=validate.Range(min=0))


class KnowledgeBaseUpdateSchema(ma.Schema):
    description = fields.String(validate=validate.Length(max=MAX_DESCRIPTION_LENGTH))
    metadata = Metadata()


class PageArgsSchema(ma.Schema):
    limit = fields.Integer(
        load_default=DEFAULT_PAGE_SIZE, validate=validate.Range(min=1, max=MAX_PAGE_SIZE)
    )
    cursor = fields.String(validate=validate.Length(min=1, max=MAX_CURSOR_LENGTH))


class NewDocumentSchema(ma.Schema):
    id = DocumentId
    text = Text
    metadata = Metadata(load_default=dict)


class AddDocumentsSchema(ma.Schema):
    """Either {"documents": [...]} or one document {"id"?, "text", "metadata"?}."""

    documents = fields.List(
        fields.Nested(NewDocumentSchema), required=True, validate=validate.Length(min=1)
    )

    @ma.pre_load
    def wrap_single_document(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict) and "documents" not in data:
            return {"documents": [data]}
        return data


class UpsertDocumentSchema(ma.Schema):
    text = Text
    metadata = Metadata(load_default=dict)


class MetadataPatchSchema(ma.Schema):
    metadata = Metadata(required=True)


class DeleteDocumentsSchema(ma.Schema):
    """Delete by `ids`, by `filter`, or both (listed and matching); `dry_run` deletes nothing."""

    ids = fields.List(DocumentId, validate=validate.Length(min=1, max=MAX_IDS_PER_DELETE))
    filter = fields.Dict()
    dry_run = fields.Boolean(load_default=False)

    @ma.validates_schema
    def ids_or_filter(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "ids" not in data and "filter" not in data:
            raise ma.ValidationError("Give 'ids', 'filter' or both.", "_schema")


DOCUMENT_FIELDS = (
    "id", "content_hash", "metadata", "text", "created_at", "updated_at", "chunks", "truncated",
)  # fmt: skip
DIGEST_FIELDS = frozenset(("id", "content_hash", "metadata"))  # listed without reading texts


class DocumentListArgsSchema(PageArgsSchema):
    filter = fields.String(
        metadata={"description": 'Mongo-style metadata filter as JSON, e.g. {"lang": "en"}'}
    )
    explain = fields.Boolean(
        load_default=False,
        metadata={"description": "give every hit an `explain` object: what ranked it"},
    )
    # Not named `fields`: that name would hide marshmallow's `fields` module in this class body.
    document_fields = fields.String(
        data_key="fields",
        attribute="fields",
        metadata={
            "description": "Comma-separated fields each item keeps (id always), of "
            f"{', '.join(DOCUMENT_FIELDS)}. Only id, content_hash and metadata: no text is "
            "read, the fast way to compare a knowledge base with its source."
        },
    )

    @ma.post_load
    def split_fields(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if "fields" in data:
            asked = [name.strip() for name in data["fields"].split(",") if name.strip()]
            unknown = sorted(set(asked) - set(DOCUMENT_FIELDS))
            if unknown or not asked:
                raise ma.ValidationError(
                    f"Unknown field(s) {', '.join(unknown) or '(none given)'}; choose from "
                    f"{', '.join(DOCUMENT_FIELDS)}.",
                    "fields",
                )
            data["fields"] = ["id", *(name for name in dict.fromkeys(asked) if name != "id")]
        return data

    @ma.post_load
    def parse_filter(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if "filter" in data:
            try:
                data["filter"] = strict_loads(data["filter"])
            except json.JSONDecodeError as error:
                message = error.msg if error.msg == TOO_DEEP else "Not valid JSON."
                raise ma.ValidationError(message, "filter") from None
        return data


def documented(**properties: Any) -> dict[str, Any]:
    """OpenAPI properties of a value the domain checks (SearchRequest), not the schema."""
    return properties


class SearchSchema(ma.Schema):
    """Types only: SearchRequest checks the values, so each bound is checked once."""

    query = fields.String(metadata=documented(minLength=1))
    document_id = DocumentId
    vector = fields.List(
        fields.Float(allow_nan=False), metadata=documented(minItems=1, maxItems=MAX_VECTOR_LENGTH)
    )
    top_k = fields.Integer(
        strict=True, load_default=DEFAULT_TOP_K, metadata=documented(minimum=1, maximum=MAX_TOP_K)
    )
    min_score = fields.Float(allow_nan=False, metadata=documented(minimum=-1.0, maximum=1.0))
    filter = fields.Dict(
        metadata={"description": "Mongo-style metadata filter, applied before ranking"}
    )
    mode = fields.String(
        load_default=MODES[0],
        metadata=documented(
            enum=list(MODES),
            description="hybrid: fuse with BM25 keyword ranking (see `fusion`)",
        ),
    )
    fusion = fields.String(
        load_default=FUSIONS[0],
        metadata=documented(
            enum=list(FUSIONS),
            description="hybrid only. score: (1-w) * cosine + w * coverage^4, coverage the "
            "IDF-weighted share of the query's words a document holds; rrf: (1-w) / (rrf_k + "
            "dense rank) + w / (rrf_k + keyword rank); w = keyword_weight",
        ),
    )
    keyword_weight = fields.Float(
        allow_nan=False,
        metadata=documented(
            minimum=0.0,
            maximum=1.0,
            description="hybrid only: weight of the keyword half in the fusion; default "
            + ", ".join(f"{value} for {name}" for name, value in DEFAULT_WEIGHTS.items()),
        ),
    )
    rrf_k = fields.Integer(
        strict=True,
        load_default=DEFAULT_RRF_K,
        metadata=documented(
            minimum=1,
            maximum=MAX_RRF_K,
            description="hybrid with fusion rrf only: k of reciprocal rank fusion, 1/(k + rank)",
        ),
    )
    probes = fields.Integer(
        strict=True,
        metadata=documented(
            minimum=1,
            maximum=MAX_PROBES,
            description="approximate indexes only: more probes, better recall, slower",
        ),
    )
    exact = fields.Boolean(
        load_default=False,
        metadata={
            "description": "compare the query with every vector: the true top k even where the "
            "knowledge base is large enough for an approximate index (slower there)"
        },
    )
    diversity = fields.Float(
        load_default=0.0,
        allow_nan=False,
        metadata=documented(
            minimum=0.0,
            maximum=1.0,
            description="0: by similarity only; up to 1: maximal marginal relevance",
        ),
    )
    explain = fields.Boolean(
        load_default=False,
        metadata={"description": "give every hit an `explain` object: what ranked it"},
    )
    # Not named `fields`: that name would hide marshmallow's `fields` module in this class body.
    hit_fields = fields.List(
        fields.String(metadata=documented(enum=list(HIT_FIELDS))),
        data_key="fields",
        attribute="fields",
        metadata={
            "description": "which of text, metadata and passage the hits carry (default all)"
        },
    )


class BatchSearchSchema(ma.Schema):
    queries = fields.List(
        fields.Nested(SearchSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_BATCH_QUERIES),
    )
