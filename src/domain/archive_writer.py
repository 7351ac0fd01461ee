"""Writes one knowledge base as a kb-archive tar stream, in constant memory."""

from __future__ import annotations

import hashlib
import io
import itertools
import tarfile
from collections.abc import Iterable, Iterator
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

_CHUNK = 1 << 16
_BLOCK_SIZE = tarfile.BLOCKSIZE
# Two zero blocks end a tar, padded to a whole record as tar(1) and tarfile write it.
_END_SIZE = tarfile.RECORDSIZE


def write_archive(
    header: ArchiveHeader,
    documents: Iterable[tuple[Document, Vectors]],
    out: BinaryIO,
    spool_dir: str | None = None,
) -> ArchiveManifest:
    """Write an archive of `documents` (in ascending id order, each with one float32 row per
    chunk) to `out`, which need not be seekable; return its manifest. See `spool_archive`."""
    with spool_archive(header, documents, spool_dir) as archive:
        for block in archive.blocks():
            out.write(block)
    return archive.manifest


def spool_archive(
    header: ArchiveHeader,
    documents: Iterable[tuple[Document, Vectors]],
    spool_dir: str | None = None,
) -> SpooledArchive:
    """Consume `documents` into temporary files (in `spool_dir` once past SPOOL_IN_MEMORY) and
    return the archive, ready to stream.

    The manifest comes first and holds the counts and checksums, so the data is spooled before
    the first byte goes out; a caller holds a knowledge base's lock (or snapshot) only while
    this runs, not while a slow client downloads. ValueError if `documents` breaks the
    format's rules (ascending ids, one finite row of the right dimension per chunk).
    """
    texts, rows = spool_file(spool_dir), spool_file(spool_dir)
    try:
        counts = _spool_documents(header, documents, texts, rows)
    except BaseException:
        texts.close()
        rows.close()
        raise
    return SpooledArchive(header, counts, texts, rows)


class SpooledArchive:
    """An archive whose data is spooled: its manifest, its exact size, and its bytes."""

    def __init__(
        self, header: ArchiveHeader, counts: tuple[int, int], texts: IO[bytes], rows: IO[bytes]
    ) -> None:
        self._texts, self._rows = texts, rows
        self._npy_header = _npy_header(counts[1], header.knowledge_base.dimension)
        sha256 = {DOCUMENTS: _digest(b"", texts), VECTORS: _digest(self._npy_header, rows)}
        self.manifest = ArchiveManifest(header, counts[0], counts[1], sha256)
        self._manifest = encode_manifest(self.manifest)
        sums = {MANIFEST: hashlib.sha256(self._manifest).hexdigest(), **sha256}
        self._sums = encode_checksums(sums)
        sizes = {
            MANIFEST: len(self._manifest),
            DOCUMENTS: _size(texts),
            VECTORS: len(self._npy_header) + _size(rows),
            CHECKSUMS: len(self._sums),
        }
        mtime = int(header.exported_at.timestamp())
        self._headers = {name: _tar_header(name, size, mtime) for name, size in sizes.items()}
        self._padding = {name: _padded(size) - size for name, size in sizes.items()}
        # How many bytes `blocks` yields, known before the first (e.g. for a Content-Length).
        self.size = sum(len(h) for h in self._headers.values()) + sum(sizes.values())
        self.size += sum(self._padding.values()) + _END_SIZE

    def blocks(self) -> Iterator[bytes]:
        """The archive's bytes, a block at a time; the spooled files are closed at the end."""
        with self:
            yield from self._member(MANIFEST, [self._manifest])
            yield from self._member(DOCUMENTS, _read(self._texts))
            yield from self._member(VECTORS, itertools.chain([self._npy_header], _read(self._rows)))
            yield from self._member(CHECKSUMS, [self._sums])
            yield bytes(_END_SIZE)

    def _member(self, name: str, data: Iterable[bytes]) -> Iterator[bytes]:
        yield self._headers[name]
        yield from data
        yield bytes(self._padding[name])

    def close(self) -> None:
        self._texts.close()
        self._rows.close()

    def __enter__(self) -> SpooledArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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
    digest = hashlib.sha256(prefix)
    for block in _read(spool):
        digest.update(block)
    return digest.hexdigest()


def _read(spool: IO[bytes]) -> Iterator[bytes]:
    spool.seek(0)
    while block := spool.read(_CHUNK):
        yield block


def _size(spool: IO[bytes]) -> int:
    return spool.seek(0, io.SEEK_END)


def _tar_header(name: str, size: int, mtime: int) -> bytes:
    """A member's header block(s), POSIX pax: a member past 8 GiB gets an extended header."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    return info.tobuf(tarfile.PAX_FORMAT)


def _padded(size: int) -> int:
    """`size` rounded up to whole tar blocks."""
    return -(-size // _BLOCK_SIZE) * _BLOCK_SIZE
