"""/v1/knowledge-bases/{kb}/documents: add, list, read, replace, patch and delete documents."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask import Response, jsonify
from flask.views import MethodView

from domain.limits import Limits
from domain.model import Document, NewDocument, Page
from domain.services import KnowledgeBaseService
from entrypoints.auth import reads, writes
from entrypoints.blueprints.imports import IMPORT_ACCEPTED, IMPORT_DOC, imports_ndjson
from entrypoints.container import Container
from entrypoints.json_body import Blueprint
from entrypoints.responses import (
    AddedDocumentsSchema,
    DeletedDocumentsSchema,
    DocumentDetailSchema,
    DocumentPageSchema,
    DocumentSchema,
)
from entrypoints.schemas import (
    DIGEST_FIELDS,
    AddDocumentsSchema,
    DeleteDocumentsSchema,
    DocumentListArgsSchema,
    MetadataPatchSchema,
    UpsertDocumentSchema,
)

blp = Blueprint(
    "documents",
    __name__,
    url_prefix="/v1/knowledge-bases/<string:kb>/documents",
    description="Documents: texts with metadata, embedded and indexed on arrival.",
)


@blp.route("")
class Documents(MethodView):
    @writes
    @imports_ndjson
    @blp.arguments(AddDocumentsSchema())
    @blp.doc(**IMPORT_DOC)
    @blp.response(201, AddedDocumentsSchema)
    @blp.alt_response(202, **IMPORT_ACCEPTED)
    @blp.alt_response(404, response="DEFAULT_ERROR")
    @blp.alt_response(
        409, response="DEFAULT_ERROR", description="An id is taken; nothing was added."
    )
    @blp.alt_response(413, response="DEFAULT_ERROR", description="Over KB_MAX_IMPORT_BYTES.")
    @inject
    def post(
        self,
        body: dict[str, Any],
        kb: str,
        service: KnowledgeBaseService = Provide[Container.service],
        limits: Limits = Provide[Container.limits],
    ) -> dict[str, Any]:
        """Add one document or a batch (all or nothing), or stream any number as NDJSON"""
        limits.check_documents([doc["text"] for doc in body["documents"]])
        documents = [NewDocument(**doc) for doc in body["documents"]]
        return {"items": service.add_documents(kb, documents)}

    @reads
    @blp.arguments(DocumentListArgsSchema(), location="query")
    @blp.response(200, DocumentPageSchema)
    @blp.alt_response(404, response="DEFAULT_ERROR")
    @inject
    def get(
        self,
        args: dict[str, Any],
        kb: str,
        service: KnowledgeBaseService = Provide[Container.service],
    ) -> Page | Response:
        """List documents by id, a page at a time, optionally filtered by metadata"""
        query = (kb, args["limit"], args.get("cursor"), args.get("filter"))
        chosen = args.get("fields")
        if chosen is None:
            return service.list_documents(*query)
        if DIGEST_FIELDS.issuperset(chosen):  # hashes and metadata are stored: no text read
            page = service.list_document_digests(*query)
            # Plain JSON values already: dumped as they are, five times faster than the schema
            # (the listing a sync reads whole).
            items = [{name: getattr(item, name) for name in chosen} for item in page.items]
            return jsonify({"items": items, "next_cursor": page.next_cursor})
        page = service.list_documents(*query)
        items = [{name: getattr(item, name) for name in chosen} for item in page.items]
        return Page(items, page.next_cursor)


@blp.route("/<document_id:document_id>")
class DocumentById(MethodView):
    @reads
    @blp.response(200, DocumentDetailSchema)
    @blp.alt_response(404, response="DEFAULT_ERROR")
    @inject
    def get(
        self, kb: str, document_id: str, service: KnowledgeBaseService = Provide[Container.service]
    ) -> Document:
        """Get one document, with the span of each chunk that was embedded"""
        return service.get_document(kb, document_id)

    @writes
    @blp.arguments(UpsertDocumentSchema())
    @blp.response(200, DocumentSchema, description="Replaced.")
    @blp.alt_response(201, schema=DocumentSchema, description="Created.", success=True)
    @blp.alt_response(404, response="DEFAULT_ERROR")
    @inject
    def put(
        self,
        body: dict[str, Any],
        kb: str,
        document_id: str,
        service: KnowledgeBaseService = Provide[Container.service],
        limits: Limits = Provide[Container.limits],
    ) -> tuple[Document, int]:
        """Create or replace a document (re-embedded only if its text changed)"""
        limits.check_documents([body["text"]])
        document, created = service.upsert_document(kb, document_id, body["text"], body["metadata"])
        return document, 201 if created else 200

    @writes
    @blp.arguments(MetadataPatchSchema())
    @blp.response(200, DocumentSchema)
    @blp.alt_response(404, response="DEFAULT_ERROR")
    @inject
    def patch(
        self,
        body: dict[str, Any],
        kb: str,
        document_id: str,
        service: KnowledgeBaseService = Provide[Container.service],
    ) -> Document:
        """Replace a document's metadata without re-embedding it"""
        return service.update_document_metadata(kb, document_id, body["metadata"])

    @writes
    @blp.response(204)
    @blp.alt_response(404, response="DEFAULT_ERROR")
    @inject
    def delete(
        self, kb: str, document_id: str, service: KnowledgeBaseService = Provide[Container.service]
    ) -> None:
        """Delete a document and its vectors"""
        service.delete_document(kb, document_id)


bulk = Blueprint(
    "bulk-delete",
    __name__,
    url_prefix="/v1/knowledge-bases/<string:kb>/documents/delete",
    description="Remove many documents at once.",
)


@bulk.route("")
class DocumentDeletion(MethodView):
    @writes
    @bulk.arguments(DeleteDocumentsSchema)
    @bulk.response(200, DeletedDocumentsSchema)
    @bulk.alt_response(404, response="DEFAULT_ERROR")
    @inject
    def post(
        self,
        body: dict[str, Any],
        kb: str,
        service: KnowledgeBaseService = Provide[Container.service],
    ) -> dict[str, Any]:
        """Delete documents by ids and/or a metadata filter (dry_run: only report them)"""
        deleted = service.delete_documents(kb, body.get("ids"), body.get("filter"), body["dry_run"])
        return {"deleted": deleted, "count": len(deleted), "dry_run": body["dry_run"]}
