"""A job as the API shows it, and the 202 answer of every endpoint that starts one."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields

from domain.jobs import MAX_REFUSALS, Job, JobStatus

JOBS_PATH = "/v1/jobs"
# For `@blp.response(202, JobSchema, headers=LOCATION)` on a view that starts a job.
LOCATION = {
    "Location": {
        "description": "The job's URL: GET it to follow the job, DELETE it to cancel it",
        "schema": {"type": "string"},
    }
}


class RefusalSchema(ma.Schema):
    line = fields.Integer(metadata={"description": "the input's line number, from 1"})
    id = fields.String(allow_none=True, metadata={"description": "its id, if it had one"})
    reason = fields.String()


class JobSchema(ma.Schema):
    """Dumps a Job."""

    id = fields.String()
    kind = fields.String(metadata={"description": "what the job does, e.g. 'restore'"})
    knowledge_base = fields.String(allow_none=True)
    status = fields.Enum(JobStatus, by_value=True)
    done = fields.Integer(metadata={"description": "units done so far (the kind says which)"})
    total = fields.Integer(allow_none=True, metadata={"description": "units in all; null: unknown"})
    error = fields.String(allow_none=True, metadata={"description": "why a failed job failed"})
    cancel_requested = fields.Boolean(
        metadata={"description": "a client asked to cancel it; it ends once its work stops"}
    )
    refused = fields.List(
        fields.Nested(RefusalSchema),
        metadata={"description": f"the first {MAX_REFUSALS} inputs refused (an import's lines)"},
    )
    refused_count = fields.Integer(metadata={"description": "every input refused"})
    counts = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "the kind's tallies: an import's added, replaced, unchanged"},
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class JobListSchema(ma.Schema):
    items = fields.List(fields.Nested(JobSchema))


def job_path(job_id: str) -> str:
    return f"{JOBS_PATH}/{job_id}"


def accepted(job: Job) -> tuple[Job, int, dict[str, Any]]:
    """What a view that started `job` returns: 202, the job, and `Location: /v1/jobs/{id}`.

    Pair it with `@blp.response(202, JobSchema, headers=LOCATION)`.
    """
    return job, 202, {"Location": job_path(job.id)}
