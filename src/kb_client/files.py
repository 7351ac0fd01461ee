"""KBClient's file upload: files (PDF, HTML, DOCX, Markdown, text) become documents, one each."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from kb_client.errors import JobFailed
from kb_client.jobs import JobCalls
from kb_client.models import AddedDocument, Document, Job, Metadata
from kb_client.paths import document_path, files_path

FileSource = str | os.PathLike[str] | tuple[str, bytes]
"""A path (its name is the file name), or (file name, content)."""


class FileCalls(JobCalls):
    def upload_files(
        self,
        kb: str,
        files: Sequence[FileSource],
        ids: Sequence[str | None] | None = None,
        metadata: Metadata | Sequence[Metadata] | None = None,
        *,
        poll: float = 0.5,
        timeout: float | None = None,
        on_progress: Callable[[Job], None] | None = None,
    ) -> list[AddedDocument]:
        """Add files as documents, one each; the service extracts their text.

        `ids` pair with `files` in order (None: the file name is the id); `metadata` is one
        object for every file or one per file. The service adds `source`, `content_type`,
        `title` and `source_sha256`; the client's keys win but for `source_sha256`. A small
        upload is added before the service answers, all or nothing; a large one runs as a job,
        which this waits for (`on_progress(job)` with each state read, `timeout` as in
        `wait_for_job`), raising `JobFailed` if it fails. Raises `Invalid` for a file the
        service cannot read (the message names it), `Conflict` for an id that exists.
        """
        read = [_read(each) for each in files]
        names = [name for name, _ in read]
        form: dict[str, Any] = {}
        if ids is not None:
            form["id"] = [each or "" for each in ids]
        if metadata is not None:
            each = [metadata] if isinstance(metadata, Mapping) else list(metadata)
            form["metadata"] = [json.dumps(one) for one in each]
        parts = [("file", (name, content, "application/octet-stream")) for name, content in read]
        response = self.transport.request("POST", files_path(kb), files=parts, form=form)
        if response.status_code != 202:
            return cast(list[AddedDocument], response.json()["items"])
        job = self.wait_for_job(
            response.json()["id"], poll=poll, timeout=timeout, on_progress=on_progress
        )
        if job["status"] != "succeeded":
            raise JobFailed(job["error"] or f"the upload's job was {job['status']}", body=job)
        chosen = list(ids) if ids is not None else [None] * len(names)
        return [self._added(kb, id or name) for id, name in zip(chosen, names)]

    def _added(self, kb: str, id: str) -> AddedDocument:
        document = cast(Document, self._call("GET", document_path(kb, id)))
        return {
            "id": document["id"],
            "content_hash": document["content_hash"],
            "chunks": document["chunks"],
            "truncated": document["truncated"],
        }


def _read(source: FileSource) -> tuple[str, bytes]:
    if isinstance(source, tuple):
        return source
    path = Path(source)
    return path.name, path.read_bytes()
