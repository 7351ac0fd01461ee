"""FileIngester: files to documents with the service's metadata under the client's, the
extractor's layout passed on, checks before any file is read, and a job's batches undone."""

from __future__ import annotations

import hashlib

import pytest

from domain.errors import (
    DocumentExistsError,
    FileUnreadableError,
    InvalidInputError,
    KnowledgeBaseNotFoundError,
    UnsupportedFileTypeError,
)
from domain.extraction import ExtractedText
from domain.files import FILES_BATCH, FileIngester, UploadedFile
from domain.jobs import JobCancelledError
from domain.limits import Limit, Limits
from domain.model import Layout, NewDocument


class FakeTextExtractor:
    """Reads .txt files as their text, with a section at every line starting "#"; refuses
    other types, and files whose text is "unreadable"."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def content_type(self, name, declared_type=None, head=b""):
        if not name.endswith(".txt"):
            raise UnsupportedFileTypeError(name, "only .txt here")
        return "text/plain"

    def extract(self, name, data, declared_type=None):
        self.content_type(name)
        self.read.append(name)
        text = data.decode()
        if text == "unreadable":
            raise FileUnreadableError(name, "cannot")
        starts, offset = [], 0
        for line in text.split("\n"):
            if line.startswith("#"):
                starts.append(offset)
            offset += len(line) + 1
        title = text.split("\n")[0].lstrip("# ") if starts else None
        return ExtractedText(text, title, "text/plain", Layout(sections=tuple(starts)))


class SpyingService:
    """The real service, recording what add_documents was given."""

    def __init__(self, service):
        self._service = service
        self.added = []

    def add_documents(self, kb, documents):
        self.added.append(list(documents))
        return self._service.add_documents(kb, documents)

    def __getattr__(self, name):
        return getattr(self._service, name)


class Handle:
    def __init__(self, cancel_after_reports=None):
        self.reports = []
        self._cancel_after = cancel_after_reports

    job_id = "job-1"

    def report(self, done, total=None):
        self.reports.append((done, total))

    def cancelled(self):
        return self._cancel_after is not None and len(self.reports) > self._cancel_after

    def raise_if_cancelled(self):
        if self.cancelled():
            raise JobCancelledError(self.job_id)


def file(name, text, **fields):
    data = text.encode()
    return UploadedFile(name, len(data), lambda: data, **fields)


def limits(**values):
    defaults = dict.fromkeys(
        ("top_k", "query_chars", "batch_queries", "batch_documents", "text_chars",
         "metadata_keys", "metadata_bytes", "knowledge_bases"), 10,
    )  # fmt: skip
    defaults.update(text_chars=10_000, metadata_bytes=10_000)
    defaults.update(values)
    return Limits(
        **{name: Limit(value, f"KB_MAX_{name.upper()}") for name, value in defaults.items()}
    )


@pytest.fixture
def spy(service):
    return SpyingService(service)


@pytest.fixture
def extractor():
    return FakeTextExtractor()


@pytest.fixture
def ingester(spy, extractor):
    return FileIngester(spy, extractor, limits())


def test_a_file_becomes_a_document_with_its_layout_and_the_service_metadata(ingester, spy, kb):
    (stored,) = ingester.ingest(kb, [file("notes.txt", "# Cats\npurr\n# Dogs\nbark")])
    assert stored.id == "notes.txt"
    assert stored.metadata == {
        "source": "notes.txt",
        "content_type": "text/plain",
        "title": "Cats",
        "source_sha256": hashlib.sha256(b"# Cats\npurr\n# Dogs\nbark").hexdigest(),
    }
    (sent,) = spy.added[0]
    assert sent.layout == Layout(sections=(0, 12))


def test_the_clients_metadata_wins_except_for_source_sha256(ingester, kb):
    metadata = {"title": "Mine", "source": "s3://bucket/notes", "source_sha256": "0" * 64}
    (stored,) = ingester.ingest(kb, [file("n.txt", "# T\nx", id="n", metadata=metadata)])
    assert stored.id == "n"
    assert stored.metadata["title"] == "Mine" and stored.metadata["source"] == "s3://bucket/notes"
    assert stored.metadata["source_sha256"] == hashlib.sha256(b"# T\nx").hexdigest()


def test_checks_come_before_any_file_is_read(ingester, extractor, service, kb):
    service.add_documents(kb, [NewDocument("x", id="taken.txt")])
    with pytest.raises(UnsupportedFileTypeError):
        ingester.ingest(kb, [file("a.txt", "a"), file("b.pdf", "b")])
    with pytest.raises(InvalidInputError, match="more than once"):
        ingester.ingest(kb, [file("a.txt", "a"), file("other.txt", "b", id="a.txt")])
    with pytest.raises(DocumentExistsError):
        ingester.ingest(kb, [file("a.txt", "a"), file("taken.txt", "b")])
    with pytest.raises(KnowledgeBaseNotFoundError):
        ingester.ingest("missing", [file("a.txt", "a")])
    with pytest.raises(InvalidInputError, match="at least one"):
        ingester.ingest(kb, [])
    assert extractor.read == []


def test_an_unreadable_file_adds_nothing(ingester, service, kb):
    with pytest.raises(FileUnreadableError):
        ingester.ingest(kb, [file("a.txt", "fine"), file("b.txt", "unreadable")])
    assert service.list_documents(kb).items == []


def test_a_text_over_the_limit_is_refused(spy, extractor, kb):
    ingester = FileIngester(spy, extractor, limits(text_chars=5))
    with pytest.raises(InvalidInputError, match="KB_MAX_TEXT_CHARS is 5"):
        ingester.ingest(kb, [file("a.txt", "longer than five")])


def test_a_job_adds_a_batch_at_a_time_reporting_files_done(spy, extractor, service, kb):
    files = [file(f"{i:02}.txt", f"text {i}") for i in range(FILES_BATCH + 3)]
    handle, added = Handle(), []
    ingester = FileIngester(spy, extractor, limits(batch_documents=FILES_BATCH))
    ingester.ingest_in_job(kb, files, handle, added)
    assert [len(batch) for batch in spy.added] == [FILES_BATCH, 3]
    assert handle.reports == [(0, len(files)), (FILES_BATCH, None), (len(files), None)]
    assert added == [each.name for each in files]
    assert len(service.list_documents(kb).items) == len(files)


def test_a_cancelled_job_is_undone(ingester, service, kb):
    files = [file(f"{i:02}.txt", f"text {i}") for i in range(FILES_BATCH + 3)]
    added = []
    with pytest.raises(JobCancelledError):
        ingester.ingest_in_job(kb, files, Handle(cancel_after_reports=1), added)
    assert len(added) == FILES_BATCH
    ingester.undo(kb, added)
    assert service.list_documents(kb).items == []


@pytest.mark.parametrize(
    "offsets",
    [{"sections": (3, 3)}, {"pages": (5, 2)}, {"sections": (100,)}, {"pages": (-1,)}],
)
def test_an_extracted_layout_must_increase_within_the_text(offsets):
    with pytest.raises(InvalidInputError, match="layout"):
        ExtractedText("some text here", None, "text/plain", Layout(**offsets))
