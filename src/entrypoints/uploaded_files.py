"""A multipart upload of files, read into UploadedFile values: each `file` part paired with its
`id` and `metadata` fields, sizes checked against the KB_MAX_* file bounds."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import g, request
from flask_smorest import abort
from werkzeug.datastructures import FileStorage

from domain.errors import FileTooLargeError, InvalidInputError
from domain.extraction import FileLimits
from domain.files import UploadedFile
from domain.model import validate_metadata
from entrypoints.json_body import strict_loads

MULTIPART = "multipart/form-data"
PAIRING = (
    "one or more `file` parts; optionally `id` fields, one per file in the same order (an "
    "empty one: the file name), and `metadata` fields (JSON objects), one for every file or "
    "one per file in order"
)


@dataclass(frozen=True)
class FilePart:
    """One `file` part of the request, its size in bytes, and the id and metadata paired with it."""

    storage: FileStorage
    size: int
    id: str | None
    metadata: dict[str, Any]


def read_upload(limits: FileLimits) -> list[FilePart]:
    """The request's files, checked against KB_MAX_UPLOAD_FILES and KB_MAX_FILE_BYTES."""
    if request.mimetype != MULTIPART:
        abort(415, message=f"send files as {MULTIPART}: {PAIRING}")
    bound = limits.upload_bytes
    g.body_limit = (bound.name, bound.value)  # the 413 handler names this bound
    request.max_content_length = bound.value
    request.max_form_parts = 3 * limits.upload_files.value + 10
    if request.content_length is not None and request.content_length > bound.value:
        abort(413)
    parts = request.files.getlist("file")
    if len(parts) > limits.upload_files.value:
        raise limits.upload_files.refusal(f"the upload has {len(parts)} files", ("file",))
    ids = _paired("id", request.form.getlist("id"), len(parts), repeat_one=False)
    metadata = _paired("metadata", request.form.getlist("metadata"), len(parts), repeat_one=True)
    files = []
    for part, id, raw in zip(parts, ids, metadata):
        name = part.filename or ""
        if not name:
            raise InvalidInputError("every `file` part needs a file name", errors={"file": [name]})
        size = _size(part)
        if size > limits.file_bytes.value:
            raise FileTooLargeError(name, str(limits.file_bytes))
        files.append(FilePart(part, size, id or None, _metadata(raw)))
    return files


def in_memory(part: FilePart) -> UploadedFile:
    """The part as an UploadedFile read from the request (answered before it ends)."""
    return _uploaded(part, lambda: _content(part.storage))


def spooled(part: FilePart, folder: str | None) -> tuple[UploadedFile, str]:
    """The part copied to a file in `folder` (for a job, which outlives the request), and
    that file's path (the job removes it)."""
    if folder is not None:
        os.makedirs(folder, exist_ok=True)
    descriptor, path = tempfile.mkstemp(prefix="kb-upload-", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as target:
            stream = part.storage.stream
            stream.seek(0)
            while block := stream.read(1 << 20):
                target.write(block)
    except BaseException:
        remove(path)
        raise
    return _uploaded(part, Path(path).read_bytes), path


def remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _uploaded(part: FilePart, read: Callable[[], bytes]) -> UploadedFile:
    storage = part.storage
    storage.stream.seek(0)
    head = storage.stream.read(8)
    name, declared = storage.filename or "", storage.mimetype or None
    return UploadedFile(name, part.size, read, declared, head, part.id, part.metadata)


def _content(part: FileStorage) -> bytes:
    part.stream.seek(0)
    return part.stream.read()


def _size(part: FileStorage) -> int:
    stream = part.stream
    size = stream.seek(0, os.SEEK_END)
    stream.seek(0)
    return size


def _paired(field: str, values: list[str], files: int, repeat_one: bool) -> list[str | None]:
    paired: list[str | None] = list(values)
    if not values:
        return [None] * files
    if repeat_one and len(values) == 1:
        return paired * files
    if len(values) != files:
        raise InvalidInputError(
            f"{len(values)} `{field}` fields for {files} files: {PAIRING}",
            errors={field: [f"expected {files}{' or 1' if repeat_one else ''}"]},
        )
    return paired


def _metadata(raw: str | None) -> dict[str, Any]:
    if raw is None or not raw.strip():
        return {}
    try:
        value = strict_loads(raw)
    except json.JSONDecodeError:
        raise InvalidInputError(
            "each `metadata` field must be a JSON object", errors={"metadata": ["not JSON"]}
        ) from None
    return validate_metadata(value)
