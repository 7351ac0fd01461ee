"""/v1/knowledge-bases: create, list, read, update and delete knowledge bases."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView

from domain.model import Page
from domain.services import KnowledgeBaseInfo, KnowledgeBaseService
from entrypoints.auth import reads, writes
from entrypoints.container import Container
from entrypoints.json_body import Blueprint
from entrypoints.responses import KnowledgeBasePageSchema, KnowledgeBaseSchema
from entrypoints.schemas import KnowledgeBaseCreateSchema, KnowledgeBaseUpdateSchema, PageArgsSchema

blp = Blueprint(
    "knowledge-bases",
    __name__,
    url_prefix="/v1/knowledge-bases",
    description="Knowledge bases: named collections of embedded documents.",
)


@blp.route("")
class KnowledgeBases(MethodView):
    @writes
    @blp.arguments(KnowledgeBaseCreateSchema())
    @blp.response(201, KnowledgeBaseSchema)
    @blp.alt_response(409, response="DEFAULT_ERROR", description="The name is taken.")
    @inject
    def post(
        self, body: dict[str, Any], service: KnowledgeBaseService = Provide[Container.service]
    ) -> KnowledgeBaseInfo:
        """Create a knowledge base"""
        kb = service.create_knowledge_base(**body)
        return service.get_knowledge_base(kb.name)

    @reads
    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, KnowledgeBasePageSchema)
    @inject
    def get(
        self, args: dict[str, Any], service: KnowledgeBaseService = Provide[Container.service]
    ) -> Page:
        """List knowledge bases, by name, a page at a time"""
        return service.list_knowledge_bases(args["limit"], args.get("cursor"))


@blp.route("/<string:kb>")
class KnowledgeBaseByName(MethodView):
    @reads
    @blp.response(200, KnowledgeBaseSchema)
    @blp.alt_response(404, response="DEFAULT_ERROR")
    @inject
    def get(
        self, kb: str, service: KnowledgeBaseService = Provide[Container.service]
    ) -> KnowledgeBaseInfo:
        """Get a knowledge base with its document and chunk counts"""
        return service.get_knowledge_base(kb)

    @writes
    @blp.arguments(KnowledgeBaseUpdateSchema())
    @blp.response(200, KnowledgeBaseSchema)
    @blp.alt_response(404, response="DEFAULT_ERROR")
    @inject
    def patch(
        self,
        body: dict[str, Any],
        kb: str,
        service: KnowledgeBaseService = Provide[Container.service],
    ) -> KnowledgeBaseInfo:
        """Change a knowledge base's description or metadata"""
        return service.update_knowledge_base(kb, **body)

    @writes
    @blp.response(204)
    @blp.alt_response(404, response="DEFAULT_ERROR")
    @inject
    def delete(self, kb: str, service: KnowledgeBaseService = Provide[Container.service]) -> None:
        """Delete a knowledge base with all its documents"""
        service.delete_knowledge_base(kb)
