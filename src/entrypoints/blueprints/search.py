"""/v1/knowledge-bases/{kb}/search: documents ranked by cosine similarity to a query."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView

from domain.search_request import SearchRequest
from domain.services import KnowledgeBaseService
from entrypoints.auth import reads
from entrypoints.container import Container
from entrypoints.json_body import Blueprint
from entrypoints.responses import BatchSearchResultSchema, SearchResultSchema
from entrypoints.schemas import BatchSearchSchema, SearchSchema

blp = Blueprint(
    "search",
    __name__,
    url_prefix="/v1/knowledge-bases/<string:kb>/search",
    description="Similarity search by text, by an existing document, or by a raw vector.",
)


@blp.route("")
class Search(MethodView):
    @reads
    @blp.arguments(SearchSchema())
    @blp.response(200, SearchResultSchema)
    @blp.alt_response(404, response="DEFAULT_ERROR")
    @inject
    def post(
        self,
        body: dict[str, Any],
        kb: str,
        service: KnowledgeBaseService = Provide[Container.service],
    ) -> dict[str, Any]:
        """Find the documents most similar to a query text, document or vector"""
        hits = service.search(kb, SearchRequest(**body))
        return {"hits": hits}


@blp.route("/batch")
class BatchSearch(MethodView):
    @reads
    @blp.arguments(BatchSearchSchema())
    @blp.response(200, BatchSearchResultSchema)
    @blp.alt_response(404, response="DEFAULT_ERROR")
    @inject
    def post(
        self,
        body: dict[str, Any],
        kb: str,
        service: KnowledgeBaseService = Provide[Container.service],
    ) -> dict[str, Any]:
        """Run up to KB_MAX_BATCH_QUERIES searches at once; their texts share one model batch"""
        results = service.search_many(kb, [SearchRequest(**query) for query in body["queries"]])
        return {"results": [{"hits": hits} for hits in results]}
