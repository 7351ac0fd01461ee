"""Request bodies streamed from a file, a path or an iterable of bytes, counted as they go."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from kb_client.errors import KBConnectionError

Progress = Callable[[int, int | None], None]
"""`on_progress(bytes_so_far, total_bytes_or_None)`."""

Source = str | os.PathLike[str] | bytes | IO[bytes] | Iterable[bytes]
BLOCK = 1 << 20


class BodyStream:
    """What `requests` sends: a file-like object urllib3 reads block by block.

    It has no length, so requests sends it chunked; `SizedBodyStream` has one, so it goes
    with a `Content-Length` (requests reads `len()` and urllib3 then sends the bytes as they are).
    """

    def __init__(self, read: Callable[[int], bytes], upload: Upload) -> None:
        self._read = read
        self._upload = upload

    def read(self, size: int = -1) -> bytes:
        data = self._read(BLOCK if size is None or size < 0 else size)
        self._upload.count(len(data))
        return data

    def __iter__(self) -> Iterator[bytes]:
        while data := self.read(BLOCK):
            yield data


class SizedBodyStream(BodyStream):
    def __len__(self) -> int:
        return self._upload.size or 0


class Upload:
    """A body for one request, made afresh for each attempt while that is still possible.

    A path is opened again and a seekable file sought back to where it started, so a retry
    sends the same bytes; an iterable (another service's download, say) can be sent only once,
    so once a byte of it has gone the transport must not retry.
    """

    def __init__(
        self,
        open_reader: Callable[[], Callable[[int], bytes]],
        size: int | None,
        *,
        repeatable: bool,
        on_progress: Progress | None = None,
    ) -> None:
        self._open_reader = open_reader
        self.size = size
        self.repeatable = repeatable
        self.on_progress = on_progress
        self.sent = 0
        self._closers: list[Callable[[], None]] = []

    def stream(self) -> BodyStream:
        """The body for the next attempt."""
        if self.sent and not self.repeatable:
            raise RuntimeError("this upload's bytes were already sent; it cannot be sent again")
        self.sent = 0
        kind = BodyStream if self.size is None else SizedBodyStream
        return kind(self._open_reader(), self)

    def may_resend(self) -> bool:
        """True when another attempt would send the same bytes from their start."""
        return self.repeatable or self.sent == 0

    def count(self, length: int) -> None:
        self.sent += length
        if self.on_progress is not None and length:
            self.on_progress(self.sent, self.size)

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()

    def closing(self, close: Callable[[], None]) -> None:
        self._closers.append(close)


def upload_of(
    source: Source, size: int | None = None, on_progress: Progress | None = None
) -> Upload:
    """An `Upload` of a path, bytes, a binary file or an iterable of bytes.

    `size` is needed only for an iterable whose length is known (it is then sent with a
    `Content-Length`); files and paths tell their own.
    """
    if isinstance(source, str | os.PathLike):
        return _path_upload(Path(source), on_progress)
    if isinstance(source, bytes | bytearray | memoryview):
        return _file_upload(io.BytesIO(bytes(source)), on_progress)
    if hasattr(source, "read"):
        return _file_upload(source, on_progress)  # type: ignore[arg-type]
    chunks = iter(source)
    return Upload(lambda: _reader_of(chunks), size, repeatable=False, on_progress=on_progress)


def _path_upload(path: Path, on_progress: Progress | None) -> Upload:
    size = path.stat().st_size  # an unreadable or missing file fails here, before any request

    def open_reader() -> Callable[[int], bytes]:
        upload.close()
        file = path.open("rb")
        upload.closing(file.close)
        return file.read

    upload = Upload(open_reader, size, repeatable=True, on_progress=on_progress)
    return upload


def _file_upload(file: IO[bytes], on_progress: Progress | None) -> Upload:
    try:
        start = file.tell() if file.seekable() else None
    except (OSError, ValueError):
        start = None
    size = None
    if start is not None:
        size = file.seek(0, io.SEEK_END) - start
        file.seek(start)

    def open_reader() -> Callable[[int], bytes]:
        if start is not None:
            file.seek(start)
        return file.read

    return Upload(open_reader, size, repeatable=start is not None, on_progress=on_progress)


def _reader_of(chunks: Iterator[bytes]) -> Callable[[int], bytes]:
    """`read(n)` over an iterator of byte strings of any sizes."""
    pending = bytearray()

    def read(size: int) -> bytes:
        while len(pending) < size:
            chunk = next(chunks, None)
            if chunk is None:
                break
            pending.extend(chunk)
        data = bytes(pending[:size])
        del pending[:size]
        return data

    return read


def guard_source(chunks: Iterable[bytes], what: str) -> Iterator[bytes]:
    """`chunks`, with a failure of its own reading told apart from a failure of the upload.

    Raised inside a body that urllib3 is sending, an `OSError` would be reported as the
    upload's connection breaking; a `KBConnectionError` naming the source says what broke.
    """
    try:
        yield from chunks
    except KBConnectionError:
        raise
    # requests' and urllib3's stream errors are many, and the source may be any iterable.
    except Exception as error:
        raise KBConnectionError(f"{what} broke off: {error}") from None
