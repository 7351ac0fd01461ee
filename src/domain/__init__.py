"""kb-service's domain core: import this to embed knowledge bases in another Python program."""

from domain.errors import (
    ConflictError,
    DocumentExistsError,
    DocumentNotFoundError,
    DomainError,
    InvalidInputError,
    KnowledgeBaseExistsError,
    KnowledgeBaseNotFoundError,
    ModelMismatchError,
    ModelUnavailableError,
    NotFoundError,
    StorageError,
)
from domain.model import (
    Chunk,
    Chunking,
    Document,
    Hit,
    KnowledgeBase,
    NewDocument,
    Page,
    Passage,
    Span,
)
from domain.ports import DocumentRepository, Embedder, VectorIndex, VectorIndexFactory
from domain.search_request import SearchRequest
from domain.services import KnowledgeBaseInfo, KnowledgeBaseService

__all__ = [
    "Chunk",
    "Chunking",
    "ConflictError",
    "Document",
    "DocumentExistsError",
    "DocumentNotFoundError",
    "DocumentRepository",
    "DomainError",
    "Embedder",
    "Hit",
    "InvalidInputError",
    "KnowledgeBase",
    "KnowledgeBaseExistsError",
    "KnowledgeBaseInfo",
    "KnowledgeBaseNotFoundError",
    "KnowledgeBaseService",
    "ModelMismatchError",
    "ModelUnavailableError",
    "NewDocument",
    "NotFoundError",
    "Page",
    "Passage",
    "SearchRequest",
    "Span",
    "StorageError",
    "VectorIndex",
    "VectorIndexFactory",
]
