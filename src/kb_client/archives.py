"""KBClient's archive calls: back a knowledge base up, restore it, copy it between services.

An archive (docs/archive.md) goes through in blocks both ways, so memory stays constant
whatever the knowledge base's size; a copy pipes one service's download into the other's
upload without holding it anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, cast

import requests

from kb_client.base import ClientBase
from kb_client.errors import Conflict, KBConnectionError, NotFound
from kb_client.models import Job
from kb_client.paths import archive_path, kb_path
from kb_client.uploads import BLOCK, Progress, Source, Upload, guard_source, upload_of

ARCHIVE_TYPE = "application/x-tar"
# Errors still come back as JSON, which the transport turns into typed errors.
ACCEPT_ARCHIVE = {"Accept": f"{ARCHIVE_TYPE}, application/json"}


def content_length(response: requests.Response) -> int | None:
    """The archive's size in bytes, when the service said it and no encoding changes it."""
    if response.headers.get("Content-Encoding", "identity") != "identity":
        return None
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


class ArchiveCalls(ClientBase):
    def download_archive(
        self,
        kb: str,
        file_or_path: str | os.PathLike[str] | IO[bytes],
        on_progress: Progress | None = None,
    ) -> int:
        """Write knowledge base `kb`'s archive to a path or a binary file; the bytes written.

        The service takes a consistent snapshot, then sends it; `on_progress(bytes, total)`
        follows the download. A path is written as `<path>.partial` and renamed once whole, so
        a failed download never leaves a file that looks like an archive.
        """
        response = self._archive_response(kb)
        with response:
            total = content_length(response)
            if not isinstance(file_or_path, str | os.PathLike):
                return _write(response, file_or_path, total, on_progress)
            path = Path(file_or_path)
            partial = path.with_name(path.name + ".partial")
            try:
                with partial.open("wb") as out:
                    written = _write(response, out, total, on_progress)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            partial.replace(path)
            return written

    def restore_archive(
        self,
        kb: str,
        source: Source,
        reembed: bool = False,
        *,
        size: int | None = None,
        on_progress: Progress | None = None,
    ) -> Job:
        """Create knowledge base `kb` from an archive: a path, bytes, a binary file or an
        iterable of bytes (`size` its length, when known). Returns the restore's job at once;
        follow it with `wait_for_job`.

        `reembed=True` re-embeds the texts when the archive was made with another model.
        Raises `Conflict` when `kb` exists or the models differ without `reembed`, `Invalid`
        when the body is not an archive (damage found later fails the job instead).
        `on_progress(bytes, total)` follows the upload. A file is sent again on a retry; an
        iterable is never sent twice, so once its first bytes have gone nothing is retried.
        A taken name is refused before the upload (the service reads the whole body first).
        """
        upload = upload_of(source, size, on_progress)  # a missing file fails before any call
        _refuse_taken(self, kb)
        return self._send_archive(kb, upload, reembed)

    def _send_archive(self, kb: str, upload: Upload, reembed: bool) -> Job:
        try:
            response = self.transport.request(
                "POST",
                archive_path(kb),
                params={"reembed": "true" if reembed else "false"},
                body=upload,
                headers={"Content-Type": ARCHIVE_TYPE},
            )
        finally:
            upload.close()
        return cast(Job, response.json())

    def copy_knowledge_base(
        self,
        kb: str,
        to: ArchiveCalls,
        as_name: str | None = None,
        reembed: bool = False,
        on_progress: Progress | None = None,
    ) -> Job:
        """Copy knowledge base `kb` from this service to the one `to` talks to, as `as_name`
        (default: the same name); returns the restore's job on `to` (`to.wait_for_job`).

        The download is piped into the upload block by block: nothing is held in memory or
        on disk here, and `on_progress(bytes, total)` follows both at once. The target's
        name is checked first so a taken one fails before this service snapshots `kb`.
        """
        name = as_name or kb
        _refuse_taken(to, name)
        response = self._archive_response(kb)
        with response:
            what = f"the download of {kb!r} from {self.url}"
            chunks = guard_source(response.iter_content(BLOCK), what)
            upload = upload_of(chunks, content_length(response), on_progress)
            return to._send_archive(name, upload, reembed)

    def _archive_response(self, kb: str) -> requests.Response:
        return self.transport.request("GET", archive_path(kb), headers=ACCEPT_ARCHIVE, stream=True)


def _refuse_taken(client: ClientBase, name: str) -> None:
    try:
        client.transport.request("GET", kb_path(name)).close()
    except NotFound:
        return
    raise Conflict(f"knowledge base {name!r} already exists at {client.url}", status=409)


def _write(
    response: requests.Response, out: IO[bytes], total: int | None, on_progress: Progress | None
) -> int:
    written = 0
    chunks: Iterable[bytes] = response.iter_content(BLOCK)
    for chunk in guard_source(chunks, f"the download from {response.url}"):
        out.write(chunk)
        written += len(chunk)
        if on_progress is not None:
            on_progress(written, total)
    if total is not None and written != total:
        what = f"the download from {response.url}"
        raise KBConnectionError(f"{what} stopped at {written} of {total} bytes")
    return written
