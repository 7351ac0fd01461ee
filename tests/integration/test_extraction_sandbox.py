"""SandboxedTextExtractor: a file that hangs, spins, eats memory or crashes its reader costs a
worker process and is refused with a reason; the service goes on."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import hostile_readers
from adapters.extraction.sandbox import SandboxedTextExtractor
from domain.errors import FileTooLargeError, FileUnreadableError
from domain.extraction import FileLimits
from domain.limits import Limit
from file_samples import pdf


def limits(seconds: int = 30, memory: int = 1 << 30, file_bytes: int = 1 << 20) -> FileLimits:
    values = {
        "file_bytes": file_bytes, "upload_bytes": 1 << 28, "upload_files": 10, "pdf_pages": 10,
        "extracted_bytes": 1 << 24, "extraction_seconds": seconds,
        "extraction_memory_bytes": memory,
    }  # fmt: skip
    return FileLimits(
        **{name: Limit(value, f"KB_{name.upper()}") for name, value in values.items()}
    )


@pytest.fixture
def make():
    """Build extractors (with a test reader, and bounds); their workers stop after the test."""
    made: list[SandboxedTextExtractor] = []

    def extractor(reader=None, **bounds) -> SandboxedTextExtractor:
        kwargs = {} if reader is None else {"reader": reader}
        made.append(SandboxedTextExtractor(limits(**bounds), **kwargs))
        return made[-1]

    yield extractor
    for each in made:
        each.close()


@pytest.mark.parametrize("reader", [hostile_readers.hang, hostile_readers.spin])
def test_a_file_that_takes_too_long_is_refused_once_the_time_is_up(make, reader):
    extractor = make(reader, seconds=2)
    started = time.monotonic()
    expected = "took longer than allowed: KB_EXTRACTION_SECONDS is 2"
    with pytest.raises(FileUnreadableError, match=expected):
        extractor.extract("slow.txt", b"x")
    assert time.monotonic() - started < 10


def test_a_file_that_needs_too_much_memory_is_refused(make):
    extractor = make(hostile_readers.hog, memory=512 * 1024 * 1024)
    with pytest.raises(FileUnreadableError, match="more memory than allowed"):
        extractor.extract("huge.txt", b"x")


def test_a_file_that_crashes_its_reader_is_refused(make):
    with pytest.raises(FileUnreadableError, match=r"crashed the extractor \(SIGSEGV"):
        make(hostile_readers.crash).extract("bad.txt", b"x")


def test_a_worker_reads_file_after_file_and_is_replaced_after_a_failure(make):
    extractor = make(hostile_readers.pid_or_crash)
    first = extractor.extract("a.txt", b"a").text
    assert extractor.extract("b.txt", b"b").text == first  # the same worker, kept
    with pytest.raises(FileUnreadableError, match="crashed"):
        extractor.extract("c.txt", b"crash")
    assert extractor.extract("d.txt", b"d").text != first


def test_the_real_reader_works_after_a_refusal(make):
    extractor = make(seconds=30)
    with pytest.raises(FileUnreadableError, match="damaged"):
        extractor.extract("broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50)
    assert extractor.extract("ok.pdf", pdf(["Still reading."])).text == "Still reading."


def test_a_file_over_the_size_limit_is_refused_before_a_worker_sees_it(make):
    with pytest.raises(FileTooLargeError, match="KB_FILE_BYTES is 10"):
        make(file_bytes=10).extract("big.txt", b"x" * 11)


def test_the_service_process_never_loads_a_parser():
    check = (
        "import sys, entrypoints.app, entrypoints.container; "
        "print(sorted({'pypdf', 'bs4', 'docx', 'lxml'} & set(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path)}
    loaded = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, env=env, check=True
    )
    assert loaded.stdout.strip() == "[]"
