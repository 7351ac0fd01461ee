"""File ingestion: each uploaded file becomes one document, with what the service knows of it."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from domain.errors import DocumentExistsError, InvalidInputError
from domain.extraction import ExtractedText, TextExtractor
from domain.jobs import JobHandle
from domain.limits import Limits
from domain.model import Document, NewDocument, validate_document_id
from domain.services import KnowledgeBaseService

FILES_JOB = "files"  # the job kind a large upload runs as
FILES_BATCH = 16  # files a job extracts, embeds and stores at once
SOURCE_SHA256 = "source_sha256"


@dataclass(frozen=True)
class UploadedFile:
    """One file of an upload: `read()` gives its bytes when its turn comes (a job's files wait
    on disk). `id` defaults to `name`; `metadata` is the client's for this file."""

    name: str
    size: int
    read: Callable[[], bytes]
    content_type: str | None = None
    head: bytes = b""  # its first bytes, for a type the name does not tell
    id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def document_id(self) -> str:
        return self.id or self.name


def file_metadata(file: UploadedFile, data: bytes, extracted: ExtractedText) -> dict[str, Any]:
    """The service's metadata (source, content_type, title, source_sha256) under the client's:
    a client's key wins, so it may name its own title or source, except source_sha256,
    which always states the uploaded bytes (sync compares it to skip unchanged files)."""
    metadata: dict[str, Any] = {"source": file.name, "content_type": extracted.content_type}
    if extracted.title:
        metadata["title"] = extracted.title
    metadata.update(file.metadata)
    metadata[SOURCE_SHA256] = hashlib.sha256(data).hexdigest()
    return metadata


class FileIngester:
    """Turns uploaded files into documents: extracts each (bounded, see TextExtractor), then
    adds them as one add does, all or nothing; or, as a job, a batch at a time."""

    def __init__(
        self, service: KnowledgeBaseService, extractor: TextExtractor, limits: Limits
    ) -> None:
        self._service = service
        self._extractor = extractor
        self._limits = limits

    def check(self, kb_name: str, files: Sequence[UploadedFile]) -> None:
        """What can be told before reading a file: every file is of a type read here
        (UnsupportedFileTypeError), every id is valid, new and given once, the client's
        metadata within KB_MAX_METADATA_*, and the knowledge base exists."""
        if not files:
            raise InvalidInputError("send at least one 'file' part", errors={"file": ["missing"]})
        for file in files:
            self._extractor.content_type(file.name, file.content_type, file.head)
        ids = [validate_document_id(file.document_id) for file in files]
        repeated = sorted(each for each, count in Counter(ids).items() if count > 1)
        if repeated:
            raise InvalidInputError(
                f"document id(s) {', '.join(map(repr, repeated))} appear more than once",
                errors={"id": [f"repeated: {each}" for each in repeated]},
            )
        for file in files:
            self._limits.check_metadata(file.metadata)
        self._service.get_knowledge_base(kb_name)
        taken = self._service.delete_documents(kb_name, ids, dry_run=True)
        if taken:
            raise DocumentExistsError(kb_name, taken)

    def document(self, file: UploadedFile) -> NewDocument:
        """The file's document: its text and layout, and the metadata of `file_metadata`."""
        data = file.read()
        extracted = self._extractor.extract(file.name, data, file.content_type)
        metadata = file_metadata(file, data, extracted)
        self._limits.check_metadata(metadata)
        self._limits.check_documents([extracted.text])
        return NewDocument(
            text=extracted.text, id=file.document_id, metadata=metadata, layout=extracted.layout
        )

    def ingest(self, kb_name: str, files: Sequence[UploadedFile]) -> list[Document]:
        """Extract every file, then add their documents all or none."""
        self.check(kb_name, files)
        documents = [self.document(file) for file in files]
        return self._service.add_documents(kb_name, documents)

    def ingest_in_job(
        self, kb_name: str, files: Sequence[UploadedFile], job: JobHandle, added: list[str]
    ) -> None:
        """Extract and add the files a batch at a time, reporting files done to `job`; the
        ids added go to `added`, for the job's cleanup to remove if it fails or is cancelled."""
        job.report(0, len(files))
        remaining = iter(files)
        while batch := list(islice(remaining, FILES_BATCH)):
            documents = []
            for file in batch:  # a file may take up to KB_EXTRACTION_SECONDS: look in between
                job.raise_if_cancelled()
                documents.append(self.document(file))
            job.raise_if_cancelled()
            stored = self._service.add_documents(kb_name, documents)
            added.extend(document.id for document in stored)
            job.report(len(added))

    def undo(self, kb_name: str, added: Sequence[str]) -> None:
        """Remove what a failed or cancelled job added."""
        if added:
            self._service.delete_documents(kb_name, list(added))
