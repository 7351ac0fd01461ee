"""Limits: an operator's bounds on one request and on the store; every refusal names its limit."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from domain.errors import ConflictError, InvalidInputError
from domain.search_request import MAX_BATCH_QUERIES, MAX_QUERY_CHARS, MAX_TOP_K

Path = tuple[str, ...]


@dataclass(frozen=True)
class Limit:
    """One bound, and the name its operator sets it by: a refusal says "<name> is <value>"."""

    value: int
    name: str

    def __str__(self) -> str:
        return f"{self.name} is {self.value}"

    def refusal(self, what: str, path: Path) -> InvalidInputError:
        """`what` the request holds and this limit, with the field it concerns under `path`."""
        errors: Any = [str(self)]
        for key in reversed(path):
            errors = {key: errors}
        return InvalidInputError(f"{what}: {self}", errors=errors)


@dataclass(frozen=True)
class Limits:
    """What one request may hold and how many knowledge bases may exist.

    Each value is at least 1, and no higher than the domain's own ceiling where it has one
    (MAX_TOP_K, MAX_QUERY_CHARS, MAX_BATCH_QUERIES): InvalidInputError otherwise.
    """

    top_k: Limit
    query_chars: Limit
    batch_queries: Limit
    batch_documents: Limit
    text_chars: Limit
    metadata_keys: Limit
    metadata_bytes: Limit
    knowledge_bases: Limit

    def __post_init__(self) -> None:
        for each in fields(self):
            limit = getattr(self, each.name)
            if limit.value < 1:
                raise InvalidInputError(f"{limit.name} must be at least 1")
        ceilings = (
            (self.top_k, MAX_TOP_K),
            (self.query_chars, MAX_QUERY_CHARS),
            (self.batch_queries, MAX_BATCH_QUERIES),
        )
        for limit, ceiling in ceilings:
            if limit.value > ceiling:
                raise InvalidInputError(f"{limit.name}={limit.value}: at most {ceiling}")

    def check_metadata(self, metadata: Any, path: Path = ("metadata",)) -> None:
        if not isinstance(metadata, Mapping):
            return  # not a limit's to judge: the metadata rule says what is wrong with it
        keys = len(metadata)
        if keys > self.metadata_keys.value:
            raise self.metadata_keys.refusal(f"metadata has {keys} keys", path)
        size = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode())
        if size > self.metadata_bytes.value:
            raise self.metadata_bytes.refusal(f"metadata is {size} bytes as JSON", path)

    def check_search(self, top_k: Any, query: Any, path: Path = ()) -> None:
        """top_k and the query text's length of one search (of a batch, under `path`)."""
        if isinstance(top_k, int) and not isinstance(top_k, bool) and top_k > self.top_k.value:
            raise self.top_k.refusal(f"top_k is {top_k}", (*path, "top_k"))
        if isinstance(query, str) and len(query) > self.query_chars.value:
            what = f"the query is {len(query)} characters"
            raise self.query_chars.refusal(what, (*path, "query"))

    def check_batch_queries(self, count: int) -> None:
        if count > self.batch_queries.value:
            raise self.batch_queries.refusal(f"the batch has {count} searches", ("queries",))

    def check_documents(self, texts: Sequence[str]) -> None:
        """How many documents one request adds, and each one's text length."""
        if len(texts) > self.batch_documents.value:
            what = f"the batch has {len(texts)} documents"
            raise self.batch_documents.refusal(what, ("documents",))
        too_long = {
            str(i): {"text": [str(self.text_chars)]}
            for i, text in enumerate(texts)
            if len(text) > self.text_chars.value
        }
        if too_long:
            raise InvalidInputError(
                f"a text is longer than the limit: {self.text_chars}",
                errors={"documents": too_long},
            )

    def check_room(self, knowledge_bases: int) -> None:
        """ConflictError unless one more knowledge base fits beside `knowledge_bases`."""
        if knowledge_bases >= self.knowledge_bases.value:
            raise ConflictError(
                f"cannot create another knowledge base: {self.knowledge_bases}",
                errors={"name": [str(self.knowledge_bases)]},
            )
