"""/v1/knowledge-bases/{kb}/archive: back a knowledge base up as a kb-archive, or restore one."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask import Response, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields

from domain.job_runner import Jobs, Work
from domain.jobs import Job, JobHandle
from domain.limits import Limits
from domain.restores import RESTORE_JOB
from domain.services import KnowledgeBaseService
from entrypoints.auth import reads, writes
from entrypoints.container import Container
from entrypoints.job_response import LOCATION, JobSchema, accepted
from entrypoints.json_body import Blueprint
from entrypoints.settings import Settings
from entrypoints.spool import remove, spool_request

ARCHIVE_TYPE = "application/x-tar"
# What a client may call an archive it uploads (tar, or tar compressed as `tar -czf` makes it).
UPLOAD_TYPES = frozenset(
    {ARCHIVE_TYPE, "application/octet-stream", "application/gzip", "application/x-gzip"}
)
EXTENSION = ".kbar"

blp = Blueprint(
    "archives",
    __name__,
    url_prefix="/v1/knowledge-bases",
    description="Archives: a knowledge base's documents and vectors as one portable file.",
)

BINARY = {"schema": {"type": "string", "format": "binary"}}


class RestoreArgsSchema(Schema):
    reembed = fields.Boolean(
        load_default=False,
        metadata={
            "description": "embed the texts with this service's model (an archive of another "
            "model); without it the archive's vectors are stored as they are"
        },
    )


@blp.route("/<string:kb>/archive")
class KnowledgeBaseArchive(MethodView):
    @reads
    @blp.response(
        200,
        content_type=ARCHIVE_TYPE,
        description="The kb-archive (see docs/archive.md), with its Content-Length.",
    )
    @blp.alt_response(404, response="DEFAULT_ERROR")
    @inject
    def get(
        self,
        kb: str,
        service: KnowledgeBaseService = Provide[Container.service],
        settings: Settings = Provide[Container.settings],
    ) -> Response:
        """Back up a knowledge base: download it as a kb-archive

        Documents, metadata, timestamps, chunk spans and the stored vectors of one consistent
        state: it is spooled (to the data folder, or the temporary folder) while writes to this
        knowledge base wait, then streamed. The file is a tar that `tar -xf` opens.
        """
        spooled = service.export_archive(kb, spool_dir=settings.spool_dir)
        return Response(
            spooled.blocks(),
            mimetype=ARCHIVE_TYPE,
            headers={
                "Content-Length": str(spooled.size),
                "Content-Disposition": f'attachment; filename="{kb}{EXTENSION}"',
            },
            direct_passthrough=True,
        )

    @writes
    @blp.arguments(RestoreArgsSchema(), location="query")
    @blp.doc(requestBody={"required": True, "content": {ARCHIVE_TYPE: BINARY}})
    @blp.response(202, JobSchema, headers=LOCATION)
    @blp.alt_response(409, response="DEFAULT_ERROR", description="The name is taken, the "
                      "archive is another model's and reembed is false, or "
                      "KB_MAX_KNOWLEDGE_BASES are there.")  # fmt: skip
    @blp.alt_response(413, response="DEFAULT_ERROR", description="Over KB_MAX_ARCHIVE_BYTES.")
    @blp.alt_response(415, response="DEFAULT_ERROR", description="The body is not an archive.")
    @blp.alt_response(422, response="DEFAULT_ERROR", description="The archive's manifest is "
                      "unreadable, or it is not a kb-archive.")  # fmt: skip
    @inject
    def post(
        self,
        args: dict[str, Any],
        kb: str,
        service: KnowledgeBaseService = Provide[Container.service],
        jobs: Jobs = Provide[Container.jobs],
        settings: Settings = Provide[Container.settings],
        limits: Limits = Provide[Container.limits],
    ) -> tuple[Job, int, dict[str, Any]]:
        """Restore a knowledge base from a kb-archive (the raw request body)

        Creates knowledge base `kb` from the archive, whatever name it had. What needs only
        the archive's manifest is answered at once: 409 if `kb` exists, or if the archive's
        model is not this service's and `reembed` is false (the message names both models);
        422 if it is not a readable kb-archive. Otherwise 202 with the restore job (`Location`
        is its URL; `done` and `total` count documents): with this service's model the
        archive's vectors are stored as they are, nothing is embedded. The job fails, with the
        reason, if the archive turns out corrupt; the knowledge base appears only when the
        whole archive was read and checked, and a failed or cancelled restore leaves nothing.
        The body may be up to KB_MAX_ARCHIVE_BYTES; it is spooled to disk as it arrives.
        """
        # A restore a stopped process (or worker) left behind must not hold the name.
        service.discard_abandoned_restores(jobs.unfinished)
        limits.check_room(service.count_knowledge_bases())  # a restore creates one too
        service.check_name_free(kb)  # before a large upload is read at all
        upload = _spool_upload(settings)
        try:
            with open(upload, "rb") as archive:
                service.inspect_archive(kb, archive, args["reembed"])
            job = jobs.start(
                RESTORE_JOB,
                kb,
                _restore(service, kb, upload, args["reembed"], settings.spool_dir),
                cleanup=lambda: remove(upload),
            )
        except BaseException:
            remove(upload)
            raise
        return accepted(job)


def _restore(
    service: KnowledgeBaseService, kb: str, upload: str, reembed: bool, spool_dir: str | None
) -> Work:
    """The job's work: restore from the uploaded file, then remove it, however it ends."""

    def work(handle: JobHandle) -> None:
        try:
            with open(upload, "rb") as archive:
                service.restore_archive(kb, archive, handle, reembed, spool_dir)
        finally:
            remove(upload)

    return work


def _spool_upload(settings: Settings) -> str:
    """The request body copied to a file, a block at a time; its path (the caller removes it)."""
    if request.mimetype not in UPLOAD_TYPES:
        abort(
            415,
            message=f"send the archive as the raw body, as {ARCHIVE_TYPE} or "
            f"application/octet-stream, not {request.mimetype or 'no content type'}",
        )
    limit = settings.max_archive_bytes
    spooled = spool_request(
        "KB_MAX_ARCHIVE_BYTES", limit, "kb-restore-", EXTENSION, settings.spool_dir
    )
    return spooled.path
