"""/v1/jobs: follow and cancel long work (restores, ingestions) that runs in the background."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from domain.cursor import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from domain.job_runner import Jobs
from domain.jobs import Job
from entrypoints.auth import reads, writes
from entrypoints.container import Container
from entrypoints.job_response import JOBS_PATH, JobListSchema, JobSchema
from entrypoints.json_body import Blueprint

blp = Blueprint(
    "jobs",
    __name__,
    url_prefix=JOBS_PATH,
    description="Jobs: long operations that answer 202 at once and run in the background.",
)


class JobListArgsSchema(Schema):
    limit = fields.Integer(
        load_default=DEFAULT_PAGE_SIZE, validate=validate.Range(min=1, max=MAX_PAGE_SIZE)
    )


@blp.route("")
class JobList(MethodView):
    @reads
    @blp.arguments(JobListArgsSchema(), location="query")
    @blp.response(200, JobListSchema)
    @inject
    def get(self, args: dict[str, Any], jobs: Jobs = Provide[Container.jobs]) -> dict[str, Any]:
        """List the most recent jobs, newest first

        Finished jobs are kept for 7 days.
        """
        return {"items": jobs.list(args["limit"])}


@blp.route("/<string:job_id>")
class JobById(MethodView):
    @reads
    @blp.response(200, JobSchema)
    @blp.alt_response(404, response="DEFAULT_ERROR", description="No job has this id.")
    @inject
    def get(self, job_id: str, jobs: Jobs = Provide[Container.jobs]) -> Job:
        """Get a job: its status and progress

        `status` is queued, running, succeeded, failed or cancelled; `done` of `total` units
        are done (`total` is null while unknown); `error` says why a failed job failed. A job
        that was running when the service stopped says failed, with that reason.
        """
        return jobs.get(job_id)

    @writes
    @blp.response(202, JobSchema)
    @blp.alt_response(404, response="DEFAULT_ERROR", description="No job has this id.")
    @blp.alt_response(
        409, response="DEFAULT_ERROR", description="The job already succeeded or failed."
    )
    @inject
    def delete(self, job_id: str, jobs: Jobs = Provide[Container.jobs]) -> Job:
        """Cancel a job

        Answers 202 with the job. A queued job is cancelled at once; a running one has
        `cancel_requested` true and ends `cancelled` once its work has stopped and removed what
        it had made (GET the job to see it end). Cancelling a cancelled job is harmless (202
        again); a job that already succeeded or failed cannot be cancelled (409).
        """
        return jobs.cancel(job_id)
