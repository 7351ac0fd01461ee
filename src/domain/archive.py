"""The kb-archive format, version 1: its manifest and document lines (see docs/archive.md)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from domain.errors import ArchiveInvalidError, DomainError
from domain.layout import NO_LAYOUT, Layout
from domain.model import Chunk, Document, KnowledgeBase, Span

FORMAT = "kb-archive"
VERSION = 1
MANIFEST = "manifest.json"
DOCUMENTS = "documents.jsonl"
VECTORS = "vectors.npy"
CHECKSUMS = "SHA256SUMS"
MEMBERS = (MANIFEST, DOCUMENTS, VECTORS, CHECKSUMS)
VECTOR_DTYPE = "<f4"
# Bounds on what a reader holds in memory at once, whatever an archive claims.
MAX_MANIFEST_BYTES = 1 << 20
MAX_LINE_BYTES = 64 << 20
# Small archives never touch the disk; larger ones spill to a temporary file.
SPOOL_IN_MEMORY = 1 << 20


@dataclass(frozen=True)
class ArchiveHeader:
    """What a writer is told about the knowledge base it archives (the counts it finds itself)."""

    knowledge_base: KnowledgeBase  # its model's fingerprint included
    exported_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class ArchiveManifest:
    """An archive's manifest.json: its header, counts and each data member's sha256 (hex)."""

    header: ArchiveHeader
    document_count: int
    chunk_count: int
    sha256: Mapping[str, str]

    @property
    def knowledge_base(self) -> KnowledgeBase:
        return self.header.knowledge_base


def spool_file(spool_dir: str | None) -> tempfile.SpooledTemporaryFile[bytes]:
    """A temporary file for a member while its size or checksum is not known yet."""
    return tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY, "w+b", dir=spool_dir)


def encode_manifest(manifest: ArchiveManifest) -> bytes:
    kb = manifest.knowledge_base
    body = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": manifest.header.exported_at.isoformat(),
        "knowledge_base": {
            "name": kb.name,
            "description": kb.description,
            "metadata": dict(kb.metadata),
            "created_at": kb.created_at.isoformat(),
            "chunking": str(kb.chunking),
            "chunk_overlap": kb.chunk_overlap,
        },
        "model": {
            "name": kb.model,
            "fingerprint": kb.fingerprint,
            "dimension": kb.dimension,
        },
        "counts": {"documents": manifest.document_count, "chunks": manifest.chunk_count},
        "sha256": dict(manifest.sha256),
    }
    return (json.dumps(body, ensure_ascii=False, allow_nan=False, indent=2) + "\n").encode()


def decode_manifest(data: bytes) -> ArchiveManifest:
    """The manifest in `data`, or ArchiveInvalidError saying which field is wrong and how."""
    body = _json_object(data, MANIFEST, MANIFEST)
    if body.get("format") != FORMAT:
        raise ArchiveInvalidError(
            f"{MANIFEST}: format is {body.get('format')!r}, not {FORMAT!r}: this is not a "
            "knowledge base archive",
            member=MANIFEST,
        )
    version = body.get("version")
    if version != VERSION:
        raise ArchiveInvalidError(
            f"{MANIFEST}: archive format version {version!r} is not supported; this service "
            f"reads version {VERSION}",
            member=MANIFEST,
        )
    kb, model = _get(body, "knowledge_base", dict), _get(body, "model", dict)
    counts, sha256 = _get(body, "counts", dict), _get(body, "sha256", dict)
    try:
        knowledge_base = KnowledgeBase(
            name=_get(kb, "name", str, parent="knowledge_base."),
            model=_get(model, "name", str, parent="model."),
            dimension=_get(model, "dimension", int, parent="model."),
            created_at=_timestamp(_get(kb, "created_at", str, parent="knowledge_base.")),
            description=_get(kb, "description", str, parent="knowledge_base."),
            metadata=_get(kb, "metadata", dict, parent="knowledge_base."),
            chunking=_get(kb, "chunking", str, parent="knowledge_base."),
            chunk_overlap=_get(kb, "chunk_overlap", int, parent="knowledge_base."),
            fingerprint=_get(model, "fingerprint", str, parent="model."),
        )
    except ArchiveInvalidError:
        raise
    except (DomainError, ValueError) as error:
        raise ArchiveInvalidError(
            f"{MANIFEST}: invalid knowledge base: {_reason(error)}", member=MANIFEST
        ) from None
    header = ArchiveHeader(knowledge_base, _timestamp(_get(body, "exported_at", str)))
    checksums = {m: _get(sha256, m, str, parent="sha256.") for m in (DOCUMENTS, VECTORS)}
    documents = _get(counts, "documents", int, parent="counts.")
    chunks = _get(counts, "chunks", int, parent="counts.")
    if documents < 0 or chunks < 0:
        raise ArchiveInvalidError(f"{MANIFEST}: counts must not be negative", member=MANIFEST)
    return ArchiveManifest(header, documents, chunks, checksums)


def encode_document(document: Document) -> bytes:
    """One line of documents.jsonl; chunk labels are left out (a restore allocates its own)."""
    line = {
        "id": document.id,
        "text": document.text,
        "metadata": dict(document.metadata),
        "created_at": document.created_at.isoformat(),
        "updated_at": document.updated_at.isoformat(),
        "truncated": document.truncated,
        "chunks": [[chunk.span.start, chunk.span.end] for chunk in document.chunks],
    }
    if document.layout:  # left out when empty: lines read as before, by older readers too
        line["layout"] = {
            "sections": list(document.layout.sections),
            "pages": list(document.layout.pages),
        }
    return (json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n").encode()


def decode_document(data: bytes, line_number: int, first_row: int) -> Document:
    """Line `line_number` of documents.jsonl; its chunks are labelled with their vectors.npy
    rows, counted from `first_row`. ArchiveInvalidError says what is wrong with the line."""
    where = f"{DOCUMENTS} line {line_number}"
    body = _json_object(data, DOCUMENTS, where)
    try:
        text = _get(body, "text", str, where)
        spans = _spans(_get(body, "chunks", list, where), len(text), where)
        return Document(
            id=_get(body, "id", str, where),
            text=text,
            metadata=_get(body, "metadata", dict, where),
            created_at=_timestamp(_get(body, "created_at", str, where), where),
            updated_at=_timestamp(_get(body, "updated_at", str, where), where),
            chunks=tuple(Chunk(first_row + row, span) for row, span in enumerate(spans)),
            truncated=_get(body, "truncated", bool, where),
            layout=_layout(body, where),
        )
    except ArchiveInvalidError:
        raise
    except DomainError as error:
        raise ArchiveInvalidError(f"{where}: {_reason(error)}", member=DOCUMENTS) from None


def encode_checksums(sha256: Mapping[str, str]) -> bytes:
    """SHA256SUMS in the format `sha256sum -c` checks."""
    return "".join(f"{digest}  {member}\n" for member, digest in sha256.items()).encode()


def decode_checksums(data: bytes) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in data.decode("ascii", errors="replace").splitlines():
        digest, _, member = line.partition("  ")
        sums[member] = digest
    return sums


def _spans(raw: list[Any], length: int, where: str) -> list[Span]:
    if not raw:
        raise ArchiveInvalidError(f"{where}: the document has no chunks", member=DOCUMENTS)
    spans = []
    for number, pair in enumerate(raw):
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(type(bound) is int for bound in pair)
            or not 0 <= pair[0] < pair[1] <= length
        ):
            raise ArchiveInvalidError(
                f"{where}: chunk {number} span {pair!r:.40} is not [start, end] with "
                f"0 <= start < end <= {length} (the text's length)",
                member=DOCUMENTS,
            )
        spans.append(Span(pair[0], pair[1]))
    return spans


def _layout(body: dict[str, Any], where: str) -> Layout:
    """A line's optional layout (archives written before layouts have none)."""
    if "layout" not in body:
        return NO_LAYOUT
    raw = _get(body, "layout", dict, where)
    return Layout(
        tuple(_get(raw, "sections", list, where, "layout.")),
        tuple(_get(raw, "pages", list, where, "layout.")),
    )


def _json_object(data: bytes, member: str, where: str) -> dict[str, Any]:
    try:
        body = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise ArchiveInvalidError(f"{where} is not valid JSON: {error}", member=member) from None
    if not isinstance(body, dict):
        raise ArchiveInvalidError(f"{where} is not a JSON object", member=member)
    return body


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _get(
    body: dict[str, Any], key: str, kind: type, where: str = MANIFEST, parent: str = ""
) -> Any:
    value = body.get(key)
    # bool is an int in Python; neither stands for the other here.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ArchiveInvalidError(
            f"{where}: {parent + key!r} must be {_KINDS[kind]}, not {value!r:.40}",
            member=where.split(" ")[0],
        )
    return value


_KINDS = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict: "an object",
    list: "a list",
}


def _timestamp(text: str, where: str = MANIFEST) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ArchiveInvalidError(
            f"{where}: {text!r:.40} is not an ISO 8601 timestamp with a time zone",
            member=where.split(" ")[0],
        )
    return moment


def _reason(error: Exception) -> str:
    return error.message if isinstance(error, DomainError) else str(error)
