"""KBClient's streaming import: any number of documents as one NDJSON upload and one job.

The documents go out as they are produced (a generator body, or a file read a block at a
time), so memory stays constant however many there are; the service spools them and imports
them as a job, which this waits on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import cast

from kb_client.jobs import JobCalls
from kb_client.models import Job, NewDocument
from kb_client.paths import documents_path
from kb_client.uploads import BLOCK, Progress, Upload, upload_of

NDJSON = "application/x-ndjson"


class ImportCalls(JobCalls):
    def import_documents(
        self,
        kb: str,
        documents: Iterable[NewDocument] | str | os.PathLike[str],
        *,
        on_conflict: str = "replace",
        wait: bool = True,
        poll: float = 0.5,
        timeout: float | None = None,
        on_progress: Callable[[Job], None] | None = None,
        on_upload: Progress | None = None,
    ) -> Job:
        """Import documents (`{"id", "text", "metadata"?}`, ids required) as a streamed job.

        `documents` is an iterable (sent as it is consumed, never held whole; it cannot be
        resent, so a broken connection fails the call) or the path of a JSONL file (sent as it
        is, again on a retry). A document whose id exists is replaced, or kept with
        `on_conflict="refuse"`; one that is unchanged is left alone, so running an import
        again resumes it. Returns the finished job (`wait=False`: the job, just started):
        `done` of `total` lines, `counts` (added, replaced, unchanged), and `refused` (line,
        id, reason) for the lines the service refused. `on_progress(job)` follows the job,
        `on_upload(bytes, total)` the upload.
        """
        if isinstance(documents, str | os.PathLike):
            upload = upload_of(documents, on_progress=on_upload)
        else:
            lines = _ndjson_blocks(documents)
            upload = Upload(lambda: lines, None, repeatable=False, on_progress=on_upload)
        try:
            response = self.transport.request(
                "POST",
                documents_path(kb),
                params={"on_conflict": on_conflict},
                body=upload,
                headers={"Content-Type": NDJSON},
            )
        finally:
            upload.close()
        job = cast(Job, response.json())
        if not wait:
            return job
        return self.wait_for_job(job["id"], poll, timeout, on_progress)


def _ndjson_blocks(documents: Iterable[NewDocument]) -> Iterator[bytes]:
    """One JSON line per document, gathered into blocks of about BLOCK bytes."""
    block: list[bytes] = []
    size = 0
    for document in documents:
        line = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        block.append(line)
        size += len(line)
        if size >= BLOCK:
            yield b"".join(block)
            block, size = [], 0
    if block:
        yield b"".join(block)
