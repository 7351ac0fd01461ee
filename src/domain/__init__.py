"""kb-service's domain core: import this to embed knowledge bases in another Python program."""

from domain.archive import ArchiveHeader, ArchiveManifest
from domain.archive_reader import read_archive
from domain.archive_writer import write_archive
from domain.errors import (
    ArchiveInvalidError,
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
    StorageFullError,
    StorageUnavailableError,
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
from domain.ports import (
    DocumentRepository,
    Embedder,
    KeywordIndex,
    UnitOfWork,
    VectorIndex,
    VectorIndexFactory,
    by_dimension,
)
from domain.search_request import SearchRequest
from domain.services import KnowledgeBaseInfo, KnowledgeBaseService

__all__ = [
    "ArchiveHeader",
    "ArchiveInvalidError",
    "ArchiveManifest",
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
    "KeywordIndex",
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
    "StorageFullError",
    "StorageUnavailableError",
    "UnitOfWork",
    "VectorIndex",
    "VectorIndexFactory",
    "by_dimension",
    "read_archive",
    "write_archive",
]
