"""/v1/knowledge-bases/{kb}/files: uploaded files (PDF, HTML, DOCX, Markdown, text) become
documents, one each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dependency_injector.wiring import Provide, inject
from flask import Response, jsonify
from flask.views import MethodView

from domain.files import FILES_JOB, FileIngester, UploadedFile
from domain.job_runner import Jobs, Work
from domain.jobs import JobHandle
from entrypoints.auth import writes
from entrypoints.container import Container
from entrypoints.job_response import LOCATION, JobSchema, accepted
from entrypoints.json_body import Blueprint
from entrypoints.responses import AddedDocumentsSchema
from entrypoints.settings import Settings
from entrypoints.uploaded_files import (
    MULTIPART,
    FilePart,
    in_memory,
    read_upload,
    remove,
    spooled,
)

blp = Blueprint(
    "files",
    __name__,
    url_prefix="/v1/knowledge-bases/<string:kb>/files",
    description="Files: PDF, HTML, Word .docx, Markdown and text files, each made a document.",
)

FILE_PARTS = {
    "schema": {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
            "id": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "array", "items": {"type": "string", "description": "JSON"}},
        },
    }
}


@blp.route("")
class Files(MethodView):
    @writes
    @blp.doc(requestBody={"required": True, "content": {MULTIPART: FILE_PARTS}})
    @blp.response(201, AddedDocumentsSchema)
    @blp.alt_response(202, schema=JobSchema, headers=LOCATION, success=True,
                      description="A large upload: the job adding its files.")  # fmt: skip
    @blp.alt_response(404, response="DEFAULT_ERROR")
    @blp.alt_response(409, response="DEFAULT_ERROR", description="An id is taken; nothing added.")
    @blp.alt_response(413, response="DEFAULT_ERROR", description="Over KB_MAX_FILE_BYTES or "
                      "KB_MAX_UPLOAD_BYTES.")  # fmt: skip
    @blp.alt_response(415, response="DEFAULT_ERROR", description="A file of a type not read "
                      "here, or a body that is not multipart/form-data.")  # fmt: skip
    @blp.alt_response(422, response="DEFAULT_ERROR", description="A file no text could be "
                      "read from (malformed, encrypted, scanned, over a limit); the message "
                      "names it and says why.")  # fmt: skip
    @inject
    def post(
        self,
        kb: str,
        files: FileIngester = Provide[Container.files],
        jobs: Jobs = Provide[Container.jobs],
        settings: Settings = Provide[Container.settings],
    ) -> Any:
        """Add files as documents, one each (multipart/form-data)

        Send one or more `file` parts. Optional `id` fields pair with the files in order (an
        empty one, or none at all: the file's name is its id); optional `metadata` fields, JSON
        objects, likewise, or a single one for every file. Each document's metadata holds
        `source` (the file name), `content_type`, `title` (HTML `<title>`, the PDF's or DOCX's
        title property, else the first heading) and `source_sha256` (of the bytes sent) under
        the client's: a client's key wins, but `source_sha256` is always the service's.

        Files are read in worker processes bounded by KB_EXTRACTION_SECONDS and
        KB_EXTRACTION_MEMORY_BYTES. An upload of at most KB_FILES_JOB_FILES files and
        KB_FILES_JOB_BYTES bytes answers 201 once all are added, all or nothing, as adding
        documents does; a larger one 202 with a job (`Location`; `done` counts files) that
        adds them a batch at a time and removes what it added if it fails or is cancelled.
        """
        parts = read_upload(settings.file_limits)
        size = sum(part.size for part in parts)
        if len(parts) <= settings.files_job_files and size <= settings.files_job_bytes:
            uploads = [in_memory(part) for part in parts]
            return {"items": files.ingest(kb, uploads)}
        return _start_job(kb, parts, files, jobs, settings)


def _start_job(
    kb: str, parts: Sequence[FilePart], files: FileIngester, jobs: Jobs, settings: Settings
) -> tuple[Response, int, dict[str, Any]]:
    """Check what can be checked now, spool the files to disk and queue the job."""
    files.check(kb, [in_memory(part) for part in parts])
    spooled_files: list[tuple[UploadedFile, str]] = []
    try:
        for part in parts:
            spooled_files.append(spooled(part, settings.spool_dir))
        uploads = [upload for upload, _ in spooled_files]
        paths = [path for _, path in spooled_files]
        added: list[str] = []

        def cleanup() -> None:
            _remove_all(paths)
            files.undo(kb, added)

        job = jobs.start(FILES_JOB, kb, _ingest(files, kb, uploads, paths, added), cleanup)
    except BaseException:
        _remove_all([path for _, path in spooled_files])
        raise
    body, status, headers = accepted(job)
    return jsonify(JobSchema().dump(body)), status, headers


def _ingest(
    files: FileIngester, kb: str, uploads: list[UploadedFile], paths: list[str], added: list[str]
) -> Work:
    """The job's work: add the files, then remove their spooled copies however it ends."""

    def work(handle: JobHandle) -> None:
        try:
            files.ingest_in_job(kb, uploads, handle, added)
        finally:
            _remove_all(paths)

    return work


def _remove_all(paths: Sequence[str]) -> None:
    for path in paths:
        remove(path)
