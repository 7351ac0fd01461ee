"""Import use case: documents streamed as NDJSON lines, committed a batch at a time.

Constant memory whatever the stream's length: one line, and one batch of documents, at a
time. Every line ends one way or another: added, replaced, unchanged (its id holds the
same text and metadata already: nothing is embedded or written), refused (recorded with
its line number, id and reason), or blank (ignored). Each batch commits whole or not at
all, and the job's `done` counts the lines settled, so a job stopped half-way (even by
SIGKILL) tells how far its committed batches reach, and running the import again resumes:
the lines already imported come out unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, BinaryIO

from domain.errors import DomainError
from domain.jobs import JobHandle, Refusal
from domain.limits import Limit, Limits
from domain.model import NewDocument, validate_name
from domain.upserts import BatchUpserter

IMPORT_JOB = "import"  # the job kind an import runs as
IMPORT_BATCH = 256  # documents per transaction: big enough for the model, small to redo
SKIP_BLOCK = 1 << 16  # bytes read at a time while skipping the rest of an over-long line
FIELDS = frozenset({"id", "text", "metadata"})

Parse = Callable[[bytes], Any]


class OnConflict(StrEnum):
    """What a line whose id is stored already does."""

    REPLACE = "replace"  # store the line's text and metadata (nothing, if they are the same)
    REFUSE = "refuse"  # keep the stored document; the line is refused


@dataclass(frozen=True)
class ImportOptions:
    """How an import treats its lines: conflicts, the longest line, the per-document limits,
    and the JSON parser (the HTTP edge passes its strict one)."""

    limits: Limits
    max_line: Limit  # bytes in one line, its line break left out
    on_conflict: OnConflict = OnConflict.REPLACE
    parse: Parse = json.loads
    batch: int = IMPORT_BATCH


class LineRefusedError(Exception):
    """One line cannot be a document: why, and its id if it had a usable one."""

    def __init__(self, reason: str, document_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.document_id = reason, document_id


@dataclass
class _Batch:
    documents: list[tuple[int, NewDocument]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)


class DocumentImporter:
    """Reads NDJSON documents into a knowledge base through batch upserts."""

    def __init__(self, upserter: BatchUpserter) -> None:
        self._upserter = upserter

    def run(
        self, kb_name: str, stream: BinaryIO, job: JobHandle, options: ImportOptions
    ) -> dict[str, int]:
        """Import every line of `stream`; return the counts (also the job's `counts`)."""
        validate_name(kb_name)
        counts = {"added": 0, "replaced": 0, "unchanged": 0}
        batch, last = _Batch(), 0
        for number, raw in ndjson_lines(stream, options.max_line.value):
            last = number
            try:
                document = _document(raw, options)
            except LineRefusedError as refused:
                job.refuse(Refusal(number, refused.document_id, refused.reason))
                continue
            if document is None:
                continue  # a blank line
            assert document.id is not None
            if document.id in batch.ids or len(batch.documents) >= options.batch:
                # A repeated id starts a batch of its own, so the later line wins, as in order.
                self._commit(kb_name, batch, counts, job, options)
                job.report(number - 1, durable=True)
                batch = _Batch()
            batch.documents.append((number, document))
            batch.ids.add(document.id)
        self._commit(kb_name, batch, counts, job, options)
        job.report(last, last)
        return counts

    def _commit(
        self,
        kb_name: str,
        batch: _Batch,
        counts: dict[str, int],
        job: JobHandle,
        options: ImportOptions,
    ) -> None:
        job.raise_if_cancelled()
        if not batch.documents:
            return
        stored = self._upserter.current(kb_name, list(batch.ids))
        writes = []
        for number, document in batch.documents:
            assert document.id is not None
            previous = stored.get(document.id)
            if previous is None:
                writes.append(document)
            elif options.on_conflict is OnConflict.REFUSE:
                reason = "a document with this id exists (on_conflict=refuse keeps it)"
                job.refuse(Refusal(number, document.id, reason))
            elif previous.text == document.text and previous.metadata == document.metadata:
                counts["unchanged"] += 1
            else:
                writes.append(document)
        if writes:
            done = self._upserter.upsert(kb_name, writes)
            counts["added"] += done.added
            counts["replaced"] += done.replaced
        job.tally(counts)


def _document(raw: bytes | None, options: ImportOptions) -> NewDocument | None:
    """The line's document, None for a blank line; LineRefusedError saying why not."""
    if raw is None:
        raise LineRefusedError(f"the line is too long: {options.max_line}")
    if not raw.strip():
        return None
    try:
        value = options.parse(raw)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeError are both
        raise LineRefusedError(f"malformed JSON: {_why(error)}") from None
    if not isinstance(value, dict):
        raise LineRefusedError('a line must be a JSON object {"id", "text", "metadata"?}')
    document_id = value.get("id")
    readable_id = document_id if isinstance(document_id, str) else None
    unknown = sorted(set(value) - FIELDS)
    if unknown:
        raise LineRefusedError(f"unknown field(s) {', '.join(unknown)}", readable_id)
    if document_id is None:
        raise LineRefusedError("an id is required: an import is resumed by its ids")
    try:
        document = NewDocument(
            text=value.get("text"),  # type: ignore[arg-type]  # validated by NewDocument
            id=document_id,
            metadata=value.get("metadata") or {},
        )
        options.limits.check_documents([document.text])
        options.limits.check_metadata(document.metadata)
    except DomainError as error:
        raise LineRefusedError(error.message, readable_id) from None
    return document


def _why(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at column {error.colno}"
    return str(error) or type(error).__name__


def ndjson_lines(stream: BinaryIO, max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """Each line of `stream` with its number (from 1), without its line break; None for a
    line longer than `max_bytes`, which is skipped without ever being held whole."""
    number = 0
    # Two bytes over: a line of max_bytes and its CR LF still comes whole.
    while line := stream.readline(max_bytes + 2):
        number += 1
        body = line.rstrip(b"\r\n")
        if len(body) <= max_bytes:
            yield number, body
            continue
        while not line.endswith(b"\n"):
            line = stream.readline(SKIP_BLOCK)
            if not line:
                break
        yield number, None
