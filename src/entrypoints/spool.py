"""Request bodies copied to a file as they arrive: an upload of any size in constant memory."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flask import g, request
from flask_smorest import abort

log = logging.getLogger(__name__)

BLOCK = 1 << 20  # bytes read from the upload at once
# What uploads spool as (restore archives, NDJSON imports): a process killed mid-job leaves one.
LEFTOVERS = ("kb-restore-*.kbar", "kb-import-*.ndjson")


@dataclass(frozen=True)
class Spooled:
    """The body's file (the caller removes it) and how many lines it holds (the last one
    counted whether or not a line break ends it)."""

    path: str
    lines: int


def spool_request(
    setting: str, limit: int, prefix: str, suffix: str, folder: str | None
) -> Spooled:
    """Copy the request body, a block at a time, to a new file in `folder` (None: the system's
    temporary folder); 413 past `limit` bytes, named by `setting` (not KB_MAX_BODY_BYTES)."""
    g.body_limit = (setting, limit)  # read by the 413 handler
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        abort(413)
    if folder is not None:
        os.makedirs(folder, exist_ok=True)
    descriptor, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as spool:
            lines = _copy(request.stream, spool, limit)
    except BaseException:
        remove(path)
        raise
    return Spooled(path, lines)


def _copy(source: IO[bytes], target: IO[bytes], limit: int) -> int:
    copied = lines = 0
    last = b"\n"
    while block := source.read(BLOCK):
        copied += len(block)
        if copied > limit:  # a body sent without Content-Length (chunked) that goes on
            abort(413)
        target.write(block)
        lines += block.count(b"\n")
        last = block[-1:]
    return lines + (last != b"\n")


def remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def remove_leftovers(folder: str) -> int:
    """Remove the uploads a killed process left in `folder` (its jobs are failed by now); only
    for a folder no other process spools to. Return how many."""
    removed = 0
    for pattern in LEFTOVERS:
        for path in Path(folder).glob(pattern):
            remove(str(path))
            removed += 1
    if removed:
        log.warning("removed %d upload(s) left in %s by a process that stopped", removed, folder)
    return removed
