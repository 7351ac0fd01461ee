"""NDJSON imports on the service with fakes: batches, refusals by line, resuming, conflicts."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from domain import SearchRequest
from domain.errors import StorageFullError
from domain.imports import ImportOptions, OnConflict, ndjson_lines
from domain.job_run import JobRun
from domain.jobs import (
    MAX_REFUSALS,
    Job,
    JobCancelledError,
    JobStatus,
    Refusal,
    report_fields,
    report_json,
)
from domain.limits import Limit, Limits
from fakes import FakeJobStore

NOW = datetime(2026, 12, 5, tzinfo=UTC)
LIMITS = Limits(
    top_k=Limit(100, "KB_MAX_TOP_K"),
    query_chars=Limit(1000, "KB_MAX_QUERY_CHARS"),
    batch_queries=Limit(8, "KB_MAX_BATCH_QUERIES"),
    batch_documents=Limit(1000, "KB_MAX_BATCH_DOCUMENTS"),
    text_chars=Limit(500, "KB_MAX_TEXT_CHARS"),
    metadata_keys=Limit(4, "KB_MAX_METADATA_KEYS"),
    metadata_bytes=Limit(1000, "KB_MAX_METADATA_BYTES"),
    knowledge_bases=Limit(10, "KB_MAX_KNOWLEDGE_BASES"),
)


def options(**changes: Any) -> ImportOptions:
    return ImportOptions(LIMITS, Limit(2000, "KB_MAX_IMPORT_LINE_BYTES"), **changes)


def ndjson(*records: Any) -> io.BytesIO:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def doc(i: int, text: str | None = None, **metadata: Any) -> dict[str, Any]:
    return {"id": f"d{i}", "text": text or f"text number {i}", "metadata": metadata}


@pytest.fixture
def handle() -> JobRun:
    store = FakeJobStore()
    job = Job("job1", "import", "kb", JobStatus.RUNNING, NOW, NOW)
    store.add(job)
    return JobRun(job, store, lambda: NOW, interval=0.0)


def run(service, kb, stream, handle, **changes: Any) -> dict[str, int]:
    return service.import_documents(kb, stream, handle, options(**changes))


def test_a_stream_is_committed_a_batch_at_a_time_with_one_model_call_each(
    service, kb, embedder, handle
):
    counts = run(service, kb, ndjson(*(doc(i) for i in range(25))), handle, batch=10)
    assert counts == {"added": 25, "replaced": 0, "unchanged": 0}
    assert [len(call) for call in embedder.calls] == [10, 10, 5]
    assert service.get_knowledge_base(kb).stats.document_count == 25
    assert (handle.job.done, handle.job.total) == (25, 25)
    assert handle.job.counts == counts
    assert service.get_document(kb, "d7").metadata == {}


def test_every_refused_line_is_reported_with_its_number_id_and_reason(service, kb, handle):
    stream = ndjson(
        doc(1),
        "{not json",
        "",
        "   ",
        "[1, 2]",
        {"id": "d5", "text": "t", "colour": "red"},
        {"text": "no id here"},
        {"id": " padded", "text": "t"},
        {"id": "d8", "text": ""},
        {"id": "d9", "text": "x" * 501},
        {"id": "d10", "text": "t", "metadata": {str(k): k for k in range(5)}},
        {"id": "d11", "text": "y" * 2100},
        doc(12),
    )
    counts = run(service, kb, stream, handle)
    assert counts["added"] == 2
    refused = {r.line: r for r in handle.job.refused}
    assert sorted(refused) == [2, 5, 6, 7, 8, 9, 10, 11, 12]  # lines 3 and 4 are blank
    assert refused[2].reason.startswith("malformed JSON") and refused[2].id is None
    assert "JSON object" in refused[5].reason
    assert "colour" in refused[6].reason and refused[6].id == "d5"
    assert "id is required" in refused[7].reason
    assert refused[8].id == " padded" and "invalid document id" in refused[8].reason
    assert refused[9].id == "d8" and "non-empty" in refused[9].reason
    assert "KB_MAX_TEXT_CHARS is 500" in refused[10].reason
    assert "KB_MAX_METADATA_KEYS is 4" in refused[11].reason
    assert refused[12].reason == "the line is too long: KB_MAX_IMPORT_LINE_BYTES is 2000"
    assert handle.job.refused_count == 9
    assert (handle.job.done, handle.job.total) == (13, 13)
    assert service.get_document(kb, "d12").text == "text number 12"


def test_running_an_import_again_embeds_nothing_and_changes_nothing(service, kb, embedder, handle):
    records = [doc(i, colour="red") for i in range(30)]
    run(service, kb, ndjson(*records), handle, batch=8)
    before = service.get_document(kb, "d3")
    embedder.calls.clear()
    counts = run(service, kb, ndjson(*records), handle, batch=8)
    assert counts == {"added": 0, "replaced": 0, "unchanged": 30}
    assert embedder.calls == []
    assert service.get_document(kb, "d3") == before


def test_a_changed_text_is_re_embedded_and_a_metadata_change_is_not(service, kb, embedder, handle):
    run(service, kb, ndjson(doc(1), doc(2), doc(3)), handle)
    embedder.calls.clear()
    counts = run(service, kb, ndjson(doc(1, "a new text"), doc(2, colour="blue"), doc(3)), handle)
    assert counts == {"added": 0, "replaced": 2, "unchanged": 1}
    assert embedder.calls == [["a new text"]]
    assert service.get_document(kb, "d1").text == "a new text"
    assert service.get_document(kb, "d2").metadata == {"colour": "blue"}
    hits = service.search(kb, SearchRequest(query="a new text", top_k=3))
    assert hits[0].id == "d1" and hits[0].score == pytest.approx(1.0)


def test_on_conflict_refuse_keeps_the_stored_document(service, kb, handle):
    run(service, kb, ndjson(doc(1)), handle)
    counts = run(
        service, kb, ndjson(doc(1, "other"), doc(2)), handle, on_conflict=OnConflict.REFUSE
    )
    assert counts["added"] == 1
    assert service.get_document(kb, "d1").text == "text number 1"
    (refusal,) = handle.job.refused
    assert (refusal.line, refusal.id) == (1, "d1") and "exists" in refusal.reason


def test_a_repeated_id_takes_its_last_line_as_a_replay_in_order_would(service, kb, handle):
    counts = run(service, kb, ndjson(doc(1, "first"), doc(2), doc(1, "second")), handle)
    assert counts == {"added": 2, "replaced": 1, "unchanged": 0}
    assert service.get_document(kb, "d1").text == "second"


def test_a_failed_batch_leaves_earlier_batches_whole_and_a_rerun_resumes(
    service, kb, embedder, handle, repository
):
    records = [doc(i) for i in range(1, 31)]
    real_add = repository.add_documents
    calls = []

    def add_then_fail(kb_name, documents, vectors):
        calls.append(len(documents))
        if len(calls) == 3:
            raise StorageFullError("the disk is full")
        real_add(kb_name, documents, vectors)

    repository.add_documents = add_then_fail
    with pytest.raises(StorageFullError):
        run(service, kb, ndjson(*records), handle, batch=10)
    assert handle.job.done == 20  # lines 1-20 committed, the third batch not at all
    assert service.get_knowledge_base(kb).stats.document_count == 20
    repository.add_documents = real_add
    embedder.calls.clear()
    counts = run(service, kb, ndjson(*records), handle, batch=10)
    assert counts == {"added": 10, "replaced": 0, "unchanged": 20}
    assert [len(call) for call in embedder.calls] == [10]


def test_a_cancelled_import_stops_between_batches(service, kb, handle):
    stream = ndjson(*(doc(i) for i in range(30)))
    handle.stop.set()
    with pytest.raises(JobCancelledError):
        run(service, kb, stream, handle, batch=10)
    assert service.get_knowledge_base(kb).stats.document_count == 0


def test_a_job_keeps_the_first_refusals_and_counts_them_all(handle):
    for line in range(1, MAX_REFUSALS + 6):
        handle.refuse(Refusal(line, None, "bad"))
    saved = handle.save()
    assert len(saved.refused) == MAX_REFUSALS and saved.refused_count == MAX_REFUSALS + 5
    assert saved.refused[-1].line == MAX_REFUSALS
    assert report_fields(report_json(saved))["refused_count"] == MAX_REFUSALS + 5


def test_lines_are_numbered_and_an_over_long_one_is_skipped_whole():
    stream = io.BytesIO(b"abc\r\n" + b"x" * 50 + b"\n" + b"1234\nlast")
    assert list(ndjson_lines(stream, 4)) == [(1, b"abc"), (2, None), (3, b"1234"), (4, b"last")]
