"""NDJSON imports: `POST .../documents` with an application/x-ndjson body starts a job.

The documents view hands such a request here (`imports_ndjson`); its body is spooled to
disk as it arrives (constant memory, bounded by KB_MAX_IMPORT_BYTES), then read a line at a
time by the import job.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from dependency_injector.wiring import Provide, inject
from flask import jsonify, request
from flask.typing import ResponseReturnValue
from flask_smorest import abort

from domain.imports import IMPORT_BATCH, IMPORT_JOB, ImportOptions, OnConflict
from domain.job_runner import Jobs, Work
from domain.jobs import JobHandle
from domain.limits import Limit, Limits
from domain.services import KnowledgeBaseService
from entrypoints.container import Container
from entrypoints.job_response import LOCATION, JobSchema, job_path
from entrypoints.json_body import strict_loads
from entrypoints.settings import Settings
from entrypoints.spool import remove, spool_request

NDJSON = "application/x-ndjson"
NDJSON_TYPES = frozenset({NDJSON, "application/jsonl", "application/x-jsonlines"})

IMPORT_DESCRIPTION = f"""
**Streaming import.** Send `Content-Type: {NDJSON}` instead, one document
`{{"id", "text", "metadata"?}}` a line, to import any number of documents as a job: 202 with
the job and `Location: /v1/jobs/{{id}}`. The body is spooled to disk as it arrives (up to
KB_MAX_IMPORT_BYTES) and committed {IMPORT_BATCH} documents at a time, each batch whole or not
at all. `done` and `total` count lines (`total` is known once the body is received, i.e. from
the 202 on). `id` is required: running the same import again resumes it. A line whose id
exists replaces that document (`on_conflict=replace`, the default: re-embedded only if its
text changed, left alone (counted `unchanged`) if its text and metadata are the same) or is
refused (`on_conflict=refuse`). Blank lines are ignored. A malformed line, one longer than
KB_MAX_IMPORT_LINE_BYTES, an invalid id, text or metadata is refused and the import goes on:
the job lists the first 1000 refusals (`refused`: line number, id, reason) and counts them all
(`refused_count`); `counts` has `added`, `replaced`, `unchanged`. A job stopped half-way
(cancelled, or the service stopped) keeps every batch it committed: lines 1 to `done` are.
"""

ON_CONFLICT = {
    "in": "query",
    "name": "on_conflict",
    "required": False,
    "schema": {"type": "string", "enum": [each.value for each in OnConflict], "default": "replace"},
    "description": f"{NDJSON} imports only: what a line whose id exists does (replace: store "
    "it, re-embedding only a changed text; refuse: keep the stored document, refuse the line)",
}
IMPORT_DOC = {
    "description": IMPORT_DESCRIPTION,
    "parameters": [ON_CONFLICT],
    "requestBody": {
        "content": {NDJSON: {"schema": {"type": "string", "description": "one document a line"}}}
    },
}
IMPORT_ACCEPTED = {
    "schema": JobSchema,
    "headers": LOCATION,
    "description": f"A {NDJSON} body: the import job, started.",
    "success": True,
}


def imports_ndjson(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send a request with an NDJSON body to `start_import`; any other to `view`."""

    @functools.wraps(view)
    def choose(*args: Any, **kwargs: Any) -> Any:
        if request.mimetype in NDJSON_TYPES:
            return start_import(kwargs["kb"])
        return view(*args, **kwargs)

    return choose


@inject
def start_import(
    kb: str,
    service: KnowledgeBaseService = Provide[Container.service],
    jobs: Jobs = Provide[Container.jobs],
    settings: Settings = Provide[Container.settings],
    limits: Limits = Provide[Container.limits],
) -> ResponseReturnValue:
    """Check what can be checked at once, spool the body, and start the import job."""
    try:
        on_conflict = OnConflict(request.args.get("on_conflict", OnConflict.REPLACE.value))
    except ValueError:
        choices = ", ".join(each.value for each in OnConflict)
        abort(422, message=f"on_conflict must be one of {choices}",
              errors={"query": {"on_conflict": [f"one of {choices}"]}})  # fmt: skip
    service.get_knowledge_base(kb)  # 404 before a large upload is read at all
    options = ImportOptions(
        limits,
        Limit(settings.max_import_line_bytes, "KB_MAX_IMPORT_LINE_BYTES"),
        on_conflict,
        parse=strict_loads,
    )
    spooled = spool_request(
        "KB_MAX_IMPORT_BYTES", settings.max_import_bytes, "kb-import-", ".ndjson",
        settings.spool_dir,
    )  # fmt: skip
    try:
        job = jobs.start(
            IMPORT_JOB,
            kb,
            _import(service, kb, spooled.path, options),
            cleanup=lambda: remove(spooled.path),
            total=spooled.lines,
        )
    except BaseException:
        remove(spooled.path)
        raise
    return jsonify(JobSchema().dump(job)), 202, {"Location": job_path(job.id)}


def _import(service: KnowledgeBaseService, kb: str, path: str, options: ImportOptions) -> Work:
    """The job's work: import the spooled body, then remove it, however it ends."""

    def work(handle: JobHandle) -> None:
        try:
            with open(path, "rb") as stream:
                service.import_documents(kb, stream, handle, options)
        finally:
            remove(path)

    return work
