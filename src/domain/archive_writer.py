"""Writes one knowledge base as a kb-archive tar stream, in constant memory."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterable
from typing import IO, BinaryIO

import numpy as np
from numpy.lib import format as npy

from domain.archive import (
    CHECKSUMS,
    DOCUMENTS,
    MANIFEST,
    VECTOR_DTYPE,
    VECTORS,
    ArchiveHeader,
    ArchiveManifest,
    encode_checksums,
    encode_document,
    encode_manifest,
    spool_file,
)
from domain.model import Document
from domain.ports import Vectors

_BLOCK = 1 << 16


def write_archive(
    header: ArchiveHeader,
    documents: Iterable[tuple[Document, Vectors]],
    out: BinaryIO,
    spool_dir: str | None = None,
) -> ArchiveManifest:
    """Write an archive of `documents` (in ascending id order, each with one float32 row per
    chunk) to `out`, which need not be seekable; return its manifest.

    The data is spooled first (to `spool_dir` once past SPOOL_IN_MEMORY) because the manifest,
    which comes first, holds its counts and checksums: `documents` is consumed before the first
    byte reaches `out`, so a caller can hold a knowledge base's lock just while it runs dry.
    ValueError if `documents` breaks the format's rules (order, vector shape, finite values).
    """
    with spool_file(spool_dir) as texts, spool_file(spool_dir) as rows:
        counts = _spool_documents(header, documents, texts, rows)
        npy_header = _npy_header(counts[1], header.knowledge_base.dimension)
        sha256 = {
            DOCUMENTS: _digest(b"", texts),
            VECTORS: _digest(npy_header, rows),
        }
        manifest = ArchiveManifest(header, counts[0], counts[1], sha256)
        manifest_bytes = encode_manifest(manifest)
        sums = {MANIFEST: hashlib.sha256(manifest_bytes).hexdigest(), **sha256}
        mtime = int(header.exported_at.timestamp())
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, MANIFEST, io.BytesIO(manifest_bytes), len(manifest_bytes), mtime)
            _add(tar, DOCUMENTS, texts, texts.tell(), mtime)
            vectors = _Joined(npy_header, rows)
            _add(tar, VECTORS, vectors, vectors.size, mtime)
            sums_bytes = encode_checksums(sums)
            _add(tar, CHECKSUMS, io.BytesIO(sums_bytes), len(sums_bytes), mtime)
    return manifest


def _spool_documents(
    header: ArchiveHeader,
    documents: Iterable[tuple[Document, Vectors]],
    texts: IO[bytes],
    rows: IO[bytes],
) -> tuple[int, int]:
    dimension = header.knowledge_base.dimension
    count = chunks = 0
    previous: str | None = None
    for document, vectors in documents:
        if previous is not None and not previous < document.id:
            raise ValueError(f"document {document.id!r} comes after {previous!r}: ids must ascend")
        block = np.asarray(vectors)
        if block.shape != (len(document.chunks), dimension):
            raise ValueError(
                f"document {document.id!r}: vectors of shape {block.shape}, expected "
                f"({len(document.chunks)}, {dimension}), one row per chunk"
            )
        if not np.isfinite(block).all():
            raise ValueError(f"document {document.id!r}: its vectors are not all finite")
        texts.write(encode_document(document))
        rows.write(block.astype(VECTOR_DTYPE, copy=False).tobytes())
        previous, count, chunks = document.id, count + 1, chunks + len(document.chunks)
    return count, chunks


def _npy_header(rows: int, dimension: int) -> bytes:
    buffer = io.BytesIO()
    shape = {"descr": VECTOR_DTYPE, "fortran_order": False, "shape": (rows, dimension)}
    npy.write_array_header_1_0(buffer, shape)
    return buffer.getvalue()


def _digest(prefix: bytes, spool: IO[bytes]) -> str:
    """sha256 of `prefix` and the whole spool, which is left at its end."""
    digest = hashlib.sha256(prefix)
    spool.seek(0)
    while block := spool.read(_BLOCK):
        digest.update(block)
    return digest.hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: IO[bytes] | _Joined, size: int, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    if not isinstance(data, _Joined):
        data.seek(0)
    tar.addfile(info, data)


class _Joined:
    """The .npy header followed by the spooled rows, read as one file (tarfile only reads)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        rest.seek(0, io.SEEK_END)
        self.size = len(head) + rest.tell()
        rest.seek(0)
        self._head, self._rest = head, rest

    def read(self, size: int = -1) -> bytes:
        # Whole blocks: tarfile takes a short read for the end of the data.
        head = self._head if size < 0 else self._head[:size]
        self._head = self._head[len(head) :]
        return head + self._rest.read(-1 if size < 0 else size - len(head))
