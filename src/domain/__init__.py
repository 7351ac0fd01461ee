"""kb-service's domain core: import this to embed knowledge bases in another Python program."""

from domain.archive import ArchiveHeader, ArchiveManifest
from domain.archive_reader import read_archive
from domain.archive_writer import write_archive
from domain.digests import DocumentDigest, content_hash
from domain.errors import (
    ArchiveInvalidError,
    ConflictError,
    DocumentExistsError,
    DocumentNotFoundError,
    DomainError,
    InvalidInputError,
    JobFinishedError,
    JobNotFoundError,
    KnowledgeBaseExistsError,
    KnowledgeBaseNotFoundError,
    ModelMismatchError,
    ModelUnavailableError,
    NotFoundError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
)
from domain.job_runner import Jobs
from domain.jobs import Job, JobCancelledError, JobHandle, JobStatus, JobStore
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
    "DocumentDigest",
    "DocumentExistsError",
    "DocumentNotFoundError",
    "DocumentRepository",
    "DomainError",
    "Embedder",
    "Hit",
    "InvalidInputError",
    "Job",
    "JobCancelledError",
    "JobFinishedError",
    "JobHandle",
    "JobNotFoundError",
    "JobStatus",
    "JobStore",
    "Jobs",
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
    "content_hash",
    "read_archive",
    "write_archive",
]
