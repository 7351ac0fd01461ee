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
BLOCK = 256 * 1024


class BodyStream:
    """What `requests` sends: an iterable of blocks, counted as urllib3 takes them.

    It has no length, so requests sends it chunked; a `SizedBodyStream` has one, so it goes
    with a `Content-Length` (requests reads `len()`; urllib3 then sends the blocks as they are).
    """

    def __init__(self, blocks: Iterator[bytes], upload: Upload) -> None:
        self._blocks = blocks
        self._upload = upload

    def __iter__(self) -> Iterator[bytes]:
        for block in self._blocks:
            self._upload.count(len(block))
            yield block


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
        open_blocks: Callable[[], Iterator[bytes]],
        size: int | None,
        *,
        repeatable: bool,
        on_progress: Progress | None = None,
    ) -> None:
        self._open_blocks = open_blocks
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
        return kind(self._open_blocks(), self)

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
    blocks = iter(source)
    return Upload(lambda: blocks, size, repeatable=False, on_progress=on_progress)


def _path_upload(path: Path, on_progress: Progress | None) -> Upload:
    size = path.stat().st_size  # an unreadable or missing file fails here, before any request

    def open_blocks() -> Iterator[bytes]:
        upload.close()
        file = path.open("rb")
        upload.closing(file.close)
        return _blocks_of(file)

    upload = Upload(open_blocks, size, repeatable=True, on_progress=on_progress)
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

    def open_blocks() -> Iterator[bytes]:
        if start is not None:
            file.seek(start)
        return _blocks_of(file)

    return Upload(open_blocks, size, repeatable=start is not None, on_progress=on_progress)


def _blocks_of(file: IO[bytes]) -> Iterator[bytes]:
    return iter(lambda: file.read(BLOCK), b"")


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
