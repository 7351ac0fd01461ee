"""Documents packed into one bytes record each: a fifth of the RAM of a `Document` object.

No port of its own: the record format of the in-memory and SQLite repositories' cache.

A `Document` with its chunks, spans, datetimes and metadata dict costs about 1.1 KB of Python
objects; its record is about 60 bytes plus the text and metadata. Documents are built from
records on demand, in a few microseconds.

A record may leave the text out (it then reads back as ""): the SQLite repository keeps
texts in its file, not in RAM.

Record format: header (created and updated as UTC microseconds and UTC offsets in
microseconds, flags, chunk count, metadata length), then the text's 32-byte SHA-256 (its
content hash, kept even where the text is not), then per chunk (label, start, end), then for a
document with a `Layout` (flag LAYOUT) its section and page counts and offsets, then the
metadata (marshal), then the text (UTF-8; lone surrogates, valid in a JSON string, pass
through as they are). A document without a layout costs nothing for it.
"""

from __future__ import annotations

import functools
import marshal
import struct
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

from domain.digests import (
    DIGEST_SIZE,
    HASH_PREFIX,
    DocumentDigest,
    digest_bytes,
    hash_of_digest,
)
from domain.layout import NO_LAYOUT
from domain.model import Chunk, Document, Layout, Span

HEADER = struct.Struct("<qqqqBII")
CHUNK = struct.Struct("<qqq")
CHUNKS_AT = HEADER.size + DIGEST_SIZE  # where the chunks begin
COUNTS = struct.Struct("<BII")  # the header's last fields: flags, chunk count, metadata size
COUNTS_AT = HEADER.size - COUNTS.size
LAYOUT_COUNTS = struct.Struct("<II")  # sections, pages; then that many "<q" offsets
TRUNCATED, LAYOUT = 1, 2  # flags
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ENCODING, ERRORS = "utf-8", "surrogatepass"
MICROSECOND = timedelta(microseconds=1)
T = TypeVar("T")


def pack(document: Document, with_text: bool = True) -> bytes:
    """The record of `document`; without its text (read back as "") for a cache whose texts
    are kept elsewhere (the SQLite file)."""
    return pack_fields(
        document.text if with_text else "",
        pack_metadata(document.metadata),
        instant(document.created_at),
        instant(document.updated_at),
        pack_chunks((chunk.id, chunk.span.start, chunk.span.end) for chunk in document.chunks),
        document.truncated,
        digest_bytes(document.content_hash),
        pack_layout(document.layout),
    )


def pack_fields(
    text: str,
    metadata: bytes,
    created_at: tuple[int, int],
    updated_at: tuple[int, int],
    chunks: bytes,
    truncated: bool,
    digest: bytes,
    layout: bytes = b"",
) -> bytes:
    """A record from its fields, each packed by the `pack_*` function or `instant`; `digest`
    is the text's raw SHA-256 (`domain.digests.text_digest`)."""
    count = len(chunks) // CHUNK.size
    flags = (TRUNCATED if truncated else 0) | (LAYOUT if layout else 0)
    header = HEADER.pack(*created_at, *updated_at, flags, count, len(metadata))
    return b"".join((header, digest, chunks, layout, metadata, text.encode(ENCODING, ERRORS)))


def pack_layout(layout: Layout) -> bytes:
    """A layout's counts and offsets; nothing at all for an empty one."""
    if not layout:
        return b""
    offsets = (*layout.sections, *layout.pages)
    counts = LAYOUT_COUNTS.pack(len(layout.sections), len(layout.pages))
    return counts + struct.pack(f"<{len(offsets)}q", *offsets)


def pack_metadata(metadata: Mapping[str, Any]) -> bytes:
    # marshal, not JSON: it reads back five times faster, keeps every type exactly (bool, int,
    # -0.0, lone surrogates), and is never written to disk, so its format may change freely.
    return marshal.dumps(dict(metadata)) if metadata else b""


def pack_chunks(chunks: Iterable[tuple[int, int, int]]) -> bytes:
    """(label, start, end) of each chunk, packed."""
    return b"".join(CHUNK.pack(*chunk) for chunk in chunks)


def instant(moment: datetime) -> tuple[int, int]:
    """(microseconds since the epoch, UTC offset in microseconds) of an aware datetime."""
    offset = moment.utcoffset() or timedelta(0)
    return (moment - EPOCH) // MICROSECOND, offset // MICROSECOND


@functools.lru_cache(maxsize=4096)
def iso_instant(text: str) -> tuple[int, int]:
    """`instant` of an ISO 8601 time; cached, as a batch of documents shares one time."""
    return instant(datetime.fromisoformat(text))


def unpack(document_id: str, record: bytes) -> Document:
    created, created_offset, updated, updated_offset, flags, count, size = HEADER.unpack_from(
        record
    )
    if count == 1:
        chunks: tuple[Chunk, ...] = (_chunk(*CHUNK.unpack_from(record, CHUNKS_AT)),)
    else:
        chunks = tuple(_chunk(*chunk) for chunk in CHUNK.iter_unpack(_chunk_bytes(record, count)))
    layout, start = _layout(record, flags, count)
    fields = {
        "id": document_id,
        "text": record[start + size :].decode(ENCODING, ERRORS),
        "metadata": _metadata(record, start, size),
        "created_at": _datetime(created, created_offset),
        "updated_at": _datetime(updated, updated_offset),
        "chunks": chunks,
        "truncated": bool(flags & TRUNCATED),
        "content_hash": _hash(record),
        "layout": layout,
    }
    return trusted(Document, fields)


def content_hash(record: bytes) -> str:
    """The document's content hash alone (a start lists ten million of them)."""
    return HASH_PREFIX + record[HEADER.size : CHUNKS_AT].hex()


def digest(document_id: str, record: bytes) -> DocumentDigest:
    """The document's id, content hash and metadata, its text left unread.

    Written out, and built without the dataclass's __init__ (a third of the time): a start
    lists the hashes of every document, ten million of them for a large knowledge base.
    """
    flags, count, size = COUNTS.unpack_from(record, COUNTS_AT)
    at = _layout_end(record, flags, count) if flags & LAYOUT else CHUNKS_AT + count * CHUNK.size
    found = object.__new__(DocumentDigest)
    found.__dict__.update(
        id=document_id,
        content_hash=HASH_PREFIX + record[HEADER.size : CHUNKS_AT].hex(),
        metadata=marshal.loads(record[at : at + size]) if size else {},
    )
    return found


def metadata(record: bytes) -> dict[str, Any]:
    *_, flags, count, size = HEADER.unpack_from(record)
    return _metadata(record, _layout_end(record, flags, count), size)


def chunk_ids(record: bytes) -> list[int]:
    count = HEADER.unpack_from(record)[5]
    if count == 1:
        return [CHUNK.unpack_from(record, CHUNKS_AT)[0]]
    return [label for label, _, _ in CHUNK.iter_unpack(_chunk_bytes(record, count))]


def with_metadata(record: bytes, metadata: dict[str, Any], updated_at: datetime) -> bytes:
    created, created_offset, _, _, flags, count, size = HEADER.unpack_from(record)
    chunks_end = CHUNKS_AT + count * CHUNK.size
    start = _layout_end(record, flags, count)
    return pack_fields(
        record[start + size :].decode(ENCODING, ERRORS),
        pack_metadata(metadata),
        (created, created_offset),
        instant(updated_at),
        bytes(_chunk_bytes(record, count)),
        bool(flags & TRUNCATED),
        record[HEADER.size : CHUNKS_AT],
        record[chunks_end:start],
    )


def trusted(kind: type[T], fields: dict[str, Any]) -> T:
    """A frozen dataclass built without __post_init__: records were validated when stored,
    and validating a million documents again at start costs seconds. Stored values also stay
    readable after a rule tightens (ids such as "/a" were once accepted)."""
    value = object.__new__(kind)
    value.__dict__.update(fields)
    return value


def _chunk(label: int, start: int, end: int) -> Chunk:
    return trusted(Chunk, {"id": label, "span": trusted(Span, {"start": start, "end": end})})


def _layout_end(record: bytes, flags: int, count: int) -> int:
    """Where the metadata begins: after the chunks and the layout, if any."""
    at = CHUNKS_AT + count * CHUNK.size
    if not flags & LAYOUT:
        return at
    sections, pages = LAYOUT_COUNTS.unpack_from(record, at)
    return at + LAYOUT_COUNTS.size + 8 * int(sections + pages)


def _layout(record: bytes, flags: int, count: int) -> tuple[Layout, int]:
    """The record's layout, and where its metadata begins."""
    at = CHUNKS_AT + count * CHUNK.size
    if not flags & LAYOUT:
        return NO_LAYOUT, at
    sections, pages = LAYOUT_COUNTS.unpack_from(record, at)
    offsets = struct.unpack_from(f"<{sections + pages}q", record, at + LAYOUT_COUNTS.size)
    layout = trusted(Layout, {"sections": offsets[:sections], "pages": offsets[sections:]})
    return layout, at + LAYOUT_COUNTS.size + 8 * (sections + pages)


def _chunk_bytes(record: bytes, count: int) -> memoryview:
    return memoryview(record)[CHUNKS_AT : CHUNKS_AT + count * CHUNK.size]


def _hash(record: bytes) -> str:
    return hash_of_digest(record[HEADER.size : CHUNKS_AT])


def _metadata(record: bytes, start: int, size: int) -> dict[str, Any]:
    if not size:
        return {}
    found: dict[str, Any] = marshal.loads(record[start : start + size])
    return found


@functools.lru_cache(maxsize=4096)  # datetimes are immutable: documents may share one
def _datetime(micros: int, offset: int) -> datetime:
    moment = EPOCH + timedelta(microseconds=micros)
    return moment if not offset else moment.astimezone(timezone(timedelta(microseconds=offset)))
