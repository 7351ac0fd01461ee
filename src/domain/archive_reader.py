"""Reads a kb-archive tar stream sequentially, in constant memory, checking everything."""

from __future__ import annotations

import hashlib
import tarfile
import zlib
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import IO, BinaryIO

import numpy as np
from numpy.lib import format as npy

from domain.archive import (
    CHECKSUMS,
    DOCUMENTS,
    MANIFEST,
    MAX_LINE_BYTES,
    MAX_MANIFEST_BYTES,
    VECTOR_DTYPE,
    VECTORS,
    ArchiveManifest,
    decode_checksums,
    decode_document,
    decode_manifest,
    spool_file,
)
from domain.errors import ArchiveInvalidError
from domain.model import Document
from domain.ports import Vectors

_BLOCK = 1 << 16
Entries = Generator[tuple[Document, Vectors], None, None]


def read_archive(stream: BinaryIO, spool_dir: str | None = None) -> tuple[ArchiveManifest, Entries]:
    """The manifest of the archive in `stream` (plain or compressed tar, read front to back),
    and an iterator of its documents, each with its vectors (one float32 row per chunk).

    Anything wrong raises ArchiveInvalidError saying what: the manifest at once, the rest while
    iterating, at the latest when the iterator is exhausted, so a restore must consume it all
    before it commits. documents.jsonl is spooled (to `spool_dir` once past SPOOL_IN_MEMORY)
    and checked against its checksum before the first document is yielded, because the vectors
    that pair with its lines come after it.
    """
    with _tar_errors():
        # Closed by the iterator, which goes on reading the same stream.
        tar = tarfile.open(fileobj=stream, mode="r|*")  # noqa: SIM115
        try:
            member = _next(tar, MANIFEST)
            if member.size > MAX_MANIFEST_BYTES:
                raise ArchiveInvalidError(
                    f"{MANIFEST} is {member.size} bytes, more than {MAX_MANIFEST_BYTES}",
                    member=MANIFEST,
                )
            raw = _open(tar, member).read()
            manifest = decode_manifest(raw)
        except BaseException:
            tar.close()
            raise
    return manifest, _entries(tar, manifest, hashlib.sha256(raw).hexdigest(), spool_dir)


def _entries(
    tar: tarfile.TarFile, manifest: ArchiveManifest, manifest_sha256: str, spool_dir: str | None
) -> Entries:
    with _tar_errors(), tar, spool_file(spool_dir) as spool:
        documents_sha256 = _copy(_open(tar, _next(tar, DOCUMENTS)), spool)
        _expect(DOCUMENTS, documents_sha256, manifest.sha256[DOCUMENTS], MANIFEST)
        spool.seek(0)
        member = _next(tar, VECTORS)
        rows = _Rows(_open(tar, member), member.size, manifest)
        yield from _pairs(spool, rows, manifest)
        vectors_sha256 = rows.finish()
        _expect(VECTORS, vectors_sha256, manifest.sha256[VECTORS], MANIFEST)
        sums = decode_checksums(_open(tar, _next(tar, CHECKSUMS)).read(MAX_MANIFEST_BYTES))
        actual = {MANIFEST: manifest_sha256, DOCUMENTS: documents_sha256, VECTORS: vectors_sha256}
        for name, digest in actual.items():
            _expect(name, digest, sums.get(name, "nothing"), CHECKSUMS)
        extra = tar.next()
        if extra is not None:
            raise ArchiveInvalidError(f"unexpected member {extra.name!r} after {CHECKSUMS}")


def _pairs(spool: IO[bytes], rows: _Rows, manifest: ArchiveManifest) -> Entries:
    previous: str | None = None
    count = 0
    while line := spool.readline(MAX_LINE_BYTES):
        count += 1
        if count > manifest.document_count:
            raise ArchiveInvalidError(
                f"{DOCUMENTS} holds more than the {manifest.document_count} documents "
                f"{MANIFEST} counts",
                member=DOCUMENTS,
            )
        if not line.endswith(b"\n"):
            raise ArchiveInvalidError(
                f"{DOCUMENTS} line {count} does not end with a newline (or is longer than "
                f"{MAX_LINE_BYTES} bytes)",
                member=DOCUMENTS,
            )
        document = decode_document(line, count, rows.taken)
        if previous is not None and not previous < document.id:
            problem = "appears twice" if previous == document.id else f"comes after {previous!r}"
            raise ArchiveInvalidError(
                f"{DOCUMENTS} line {count}: document id {document.id!r} {problem}; "
                "ids must be unique and in ascending order",
                member=DOCUMENTS,
            )
        yield document, rows.take(document, count)
        previous = document.id
    if count != manifest.document_count:
        raise ArchiveInvalidError(
            f"{DOCUMENTS} holds {count} documents but {MANIFEST} counts {manifest.document_count}",
            member=DOCUMENTS,
        )


class _Rows:
    """vectors.npy read row block by row block, hashed as it goes."""

    def __init__(self, source: IO[bytes], size: int, manifest: ArchiveManifest) -> None:
        self._source = _Hashing(source)
        self._rows, self._dimension = _shape(self._source, size, manifest)
        self.taken = 0

    def take(self, document: Document, line: int) -> Vectors:
        """The rows of `document`'s chunks, the next ones in the member."""
        count = len(document.chunks)
        if self.taken + count > self._rows:
            raise ArchiveInvalidError(
                f"{DOCUMENTS} line {line}: document {document.id!r} has chunks beyond the "
                f"{self._rows} rows of {VECTORS}",
                member=DOCUMENTS,
            )
        data = bytearray(count * self._dimension * 4)
        self._source.read_into(data)
        block = np.frombuffer(data, VECTOR_DTYPE).reshape(count, self._dimension)
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            chunk = int(np.argmin(finite))
            raise ArchiveInvalidError(
                f"{VECTORS} row {self.taken + chunk} (document {document.id!r}, chunk {chunk}) "
                "holds a value that is not a finite number",
                member=VECTORS,
            )
        self.taken += count
        return block.astype(np.float32, copy=False)

    def finish(self) -> str:
        """The member's sha256, once every row was taken."""
        if self.taken != self._rows:
            raise ArchiveInvalidError(
                f"{VECTORS} has {self._rows} rows but {DOCUMENTS} has {self.taken} chunks",
                member=VECTORS,
            )
        return self._source.digest.hexdigest()


def _shape(source: _Hashing, size: int, manifest: ArchiveManifest) -> tuple[int, int]:
    try:
        version = npy.read_magic(source)
        read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran_order, dtype = read_header(source)
    except ValueError as error:
        raise ArchiveInvalidError(
            f"{VECTORS} is not a .npy array: {error}", member=VECTORS
        ) from None
    if dtype != np.dtype(VECTOR_DTYPE) or fortran_order or len(shape) != 2:
        raise ArchiveInvalidError(
            f"{VECTORS} holds a {'x'.join(map(str, shape))} array of {dtype}"
            f"{' (Fortran order)' if fortran_order else ''}: expected rows x dimension of "
            "little-endian float32 in C order",
            member=VECTORS,
        )
    rows, dimension = shape
    if dimension != manifest.knowledge_base.dimension:
        raise ArchiveInvalidError(
            f"{VECTORS} has {dimension} columns but {MANIFEST} says the model's dimension is "
            f"{manifest.knowledge_base.dimension}",
            member=VECTORS,
        )
    if rows != manifest.chunk_count:
        raise ArchiveInvalidError(
            f"{VECTORS} has {rows} rows but {MANIFEST} counts {manifest.chunk_count} chunks",
            member=VECTORS,
        )
    described = source.consumed + rows * dimension * 4
    if size != described:
        raise ArchiveInvalidError(
            f"{VECTORS} is {size} bytes but its header describes {described}", member=VECTORS
        )
    return rows, dimension


class _Hashing:
    """A member's bytes, hashed and counted as they are read."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self.digest = hashlib.sha256()
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.digest.update(data)
        self.consumed += len(data)
        return data

    def read_into(self, buffer: bytearray) -> None:
        view = memoryview(buffer)
        while view:
            got = self._source.readinto(view)  # type: ignore[attr-defined]
            if not got:
                raise ArchiveInvalidError(f"{VECTORS} ends before its last row", member=VECTORS)
            self.digest.update(view[:got])
            view = view[got:]
        self.consumed += len(buffer)


def _next(tar: tarfile.TarFile, name: str) -> tarfile.TarInfo:
    member = tar.next()
    if member is None:
        raise ArchiveInvalidError(f"the archive ends before {name}: it is cut short")
    # `tar -cf` of the unpacked members, named as ./manifest.json and so on, reads the same.
    if member.name.removeprefix("./") != name:
        foreign = ": this is not a knowledge base archive" if name == MANIFEST else ""
        raise ArchiveInvalidError(
            f"expected member {name!r} but found {member.name!r}{foreign}", member=name
        )
    if not member.isfile():
        raise ArchiveInvalidError(f"{name} is not a regular file", member=name)
    return member


def _open(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    source = tar.extractfile(member)
    assert source is not None  # a regular file always has its data
    return source


def _copy(source: IO[bytes], spool: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while block := source.read(_BLOCK):
        digest.update(block)
        spool.write(block)
    return digest.hexdigest()


def _expect(member: str, actual: str, expected: str, listed_in: str) -> None:
    if actual != expected:
        raise ArchiveInvalidError(
            f"{member} does not match its sha256 in {listed_in} (it is {actual}, {listed_in} "
            f"says {expected:.64}): the archive is corrupt",
            member=member,
        )


@contextmanager
def _tar_errors() -> Iterator[None]:
    """tarfile's and zlib's errors, as the archive's fault."""
    try:
        yield
    except (EOFError, tarfile.TarError, zlib.error) as error:
        cut = isinstance(error, EOFError) or "unexpected end" in str(error)
        what = "the archive is cut short" if cut else "the archive is not a readable tar stream"
        raise ArchiveInvalidError(f"{what} ({error})") from None
