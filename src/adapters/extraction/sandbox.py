"""SandboxedTextExtractor: files read in worker processes with a memory limit, killed when one
takes too long, so no file can crash, exhaust or hang the service."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from adapters.extraction.file_types import content_type_of
from domain.errors import FileTooLargeError, FileUnreadableError
from domain.extraction import ExtractedText, FileLimits

log = logging.getLogger(__name__)

Reader = Callable[[str, bytes, FileLimits], ExtractedText]
READY = "ready"  # a new worker's first message: its parsers are loaded
STARTUP_SECONDS = 120  # for a new worker to import its parsers (not counted against a file)
RECYCLE_AFTER = 100  # files a worker reads before a fresh one replaces it (its heap grows)


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    requests: Connection
    results: Connection
    served: int = 0

    def stop(self) -> None:
        self.requests.close()
        self.results.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class SandboxedTextExtractor:
    """The TextExtractor port: reads files with `formats.read_as` in worker processes.

    Each worker is a fresh interpreter (none of the service's threads, model or stores) limited
    to `extraction_memory_bytes` of address space. A file that takes longer than
    `extraction_seconds`, or kills its worker, costs that worker (a new one starts) and is
    refused; one that reads is answered and the worker kept for the next. At most `workers`
    files are read at once; more callers wait. `reader` is for tests: a module-level function
    run in the worker instead of `read_file`.
    """

    def __init__(self, limits: FileLimits, workers: int = 2, reader: Reader | None = None) -> None:
        self._limits = limits
        self._slots = threading.BoundedSemaphore(max(1, workers))
        self._reader = reader or read_file
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def content_type(self, name: str, declared_type: str | None = None, head: bytes = b"") -> str:
        return content_type_of(name, declared_type, head)

    def extract(self, name: str, data: bytes, declared_type: str | None = None) -> ExtractedText:
        if len(data) > self._limits.file_bytes.value:
            raise FileTooLargeError(name, str(self._limits.file_bytes))
        content_type = content_type_of(name, declared_type, data[:8])
        with self._slots:
            outcome, value = self._read(content_type, data)
        if outcome == "text":
            assert isinstance(value, ExtractedText)
            return value
        raise FileUnreadableError(name, str(value))

    def close(self) -> None:
        """Stop the idle workers (busy ones stop when their file is done)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()

    def _read(self, content_type: str, data: bytes) -> tuple[str, Any]:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None or worker.process.poll() is not None:
            worker = self._start()
        outcome: tuple[str, Any] = ("error", "the extractor stopped")
        try:
            worker.requests.send((self._reader, content_type, data, self._limits))
            outcome = self._outcome(worker)
        except OSError:  # the worker died before it took the file
            outcome = "error", self._death(worker)
        finally:
            worker.served += 1
            if outcome[0] == "text" and worker.served < RECYCLE_AFTER:
                with self._lock:
                    self._idle.append(worker)
            else:  # a failure may have left the worker's heap swollen, or the worker stuck
                worker.stop()
        return outcome

    def _outcome(self, worker: _Worker) -> tuple[str, Any]:
        seconds = self._limits.extraction_seconds
        if not worker.results.poll(seconds.value):
            return "error", f"reading it took longer than allowed: {seconds}"
        try:
            return worker.results.recv()  # type: ignore[no-any-return]
        except EOFError:
            return "error", self._death(worker)

    def _death(self, worker: _Worker) -> str:
        try:
            code = worker.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0 and -code in signal.valid_signals():
            return f"reading it crashed the extractor ({signal.Signals(-code).name})"
        log.error("an extraction worker exited with %s: see its output above", code)
        return f"the extractor failed on it (exit code {code})"

    def _start(self) -> _Worker:
        """A new worker, with this process's sys.path (this package, wherever it is)."""
        requests_read, requests_write = os.pipe()
        results_read, results_write = os.pipe()
        paths = [path or os.getcwd() for path in sys.path]
        environ = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        memory = str(self._limits.extraction_memory_bytes.value)
        command = [sys.executable, "-m", "adapters.extraction.worker"]
        try:
            process = subprocess.Popen(
                [*command, str(requests_read), str(results_write), memory],
                pass_fds=(requests_read, results_write),
                stdin=subprocess.DEVNULL,
                env=environ,
            )
        except BaseException:
            for descriptor in (requests_write, results_read):
                os.close(descriptor)
            raise
        finally:
            os.close(requests_read)
            os.close(results_write)
        requests = Connection(requests_write, readable=False)
        worker = _Worker(process, requests, Connection(results_read, writable=False))
        try:
            ready = worker.results.poll(STARTUP_SECONDS) and worker.results.recv() == READY
        except EOFError:
            ready = False
        if not ready:
            worker.stop()
            raise RuntimeError(f"an extraction worker did not start: exit code {process.poll()}")
        return worker


def read_file(content_type: str, data: bytes, limits: FileLimits) -> ExtractedText:
    """`formats.read_as`, imported when called: the parsers (pypdf, lxml, ...) load in the
    worker processes, never in the service's."""
    from adapters.extraction.formats import read_as

    return read_as(content_type, data, limits)
