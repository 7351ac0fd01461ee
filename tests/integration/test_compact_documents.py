"""The memory backend's compact storage gives back exactly what it was given."""

import bisect
import gc
import random
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from adapters.memory import document_records as records
from adapters.memory.chunk_owners import ChunkOwners
from adapters.memory.repository import InMemoryDocumentRepository
from adapters.memory.sorted_ids import BLOCK, SortedIds
from adapters.sqlite.repository import SqliteDocumentRepository
from contracts import kept_vectors_of, make_kb, unit_rows
from domain.filters import parse_filter
from domain.model import Chunk, Document, Span

EVERY_KIND = {
    "text": "plain",
    "unicode": "naïve café \u2013 東京 🚀 e\u0301",
    "empty": "",
    "int": 7,
    "negative": -3,
    "big": 2**62 + 1,
    "float": 0.1,
    "whole float": 2.0,
    "negative zero": -0.0,
    "tiny": 5e-324,
    "huge": 1.7976931348623157e308,
    "true": True,
    "false": False,
    "strings": ["a", "ü", "🙂"],
    "numbers": [1, 2.5, -0.0],
    "booleans": [True, False],
    "mixed": ["x", 1, 1.0, True],
    "nothing": [],
    "ключ 🔑": "value",
}
TEXTS = [
    "plain ascii",
    "naïve café \u2013 東京 🚀 e\u0301 \u200b\ufeff",
    "Ελληνικά, עברית, العربية, हिन्दी",
    "tabs\tand\nnewlines\r\n and a bell \x07 inside",
]
CREATED = datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
UPDATED = datetime(2024, 3, 1, 5, 30, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))


def typed(value):
    """A value with its types spelled out: True == 1 and -0.0 == 0.0 in plain comparisons."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


def assert_same(found: Document, expected: Document) -> None:
    assert found == expected
    assert typed(dict(found.metadata)) == typed(dict(expected.metadata))
    assert found.text == expected.text
    for moment, wanted in [
        (found.created_at, expected.created_at),
        (found.updated_at, expected.updated_at),
    ]:
        assert moment.utcoffset() == wanted.utcoffset()
        assert moment.isoformat() == wanted.isoformat()


def document(doc_id, text, labels, metadata=None, truncated=False) -> Document:
    step = max(1, len(text) // len(labels))
    spans = [Span(i * step, (i + 1) * step) for i in range(len(labels))]
    chunks = tuple(Chunk(label, span) for label, span in zip(labels, spans))
    return Document(doc_id, text, metadata or {}, CREATED, UPDATED, chunks, truncated)


def documents() -> list[Document]:
    return [
        document("every-kind", TEXTS[1], [1, 2, 3], EVERY_KIND, truncated=True),
        document("ascii", TEXTS[0], [4]),
        document("ü-ñ 東京", TEXTS[2], [5], {"only": ["one"]}),
        document("controls", TEXTS[3], [6, 7]),
    ]


LONE_SURROGATE = document("surrogate", "a lone \ud800, as JSON's \\ud800 escape gives", [9])


@pytest.mark.parametrize("doc", [*documents(), LONE_SURROGATE], ids=lambda doc: doc.id)
def test_a_record_unpacks_to_the_document_it_was_packed_from(doc):
    record = records.pack(doc)
    assert_same(records.unpack(doc.id, record), doc)
    assert typed(records.metadata(record)) == typed(dict(doc.metadata))
    assert records.chunk_ids(record) == [chunk.id for chunk in doc.chunks]


def test_new_metadata_keeps_text_chunks_and_creation_time():
    doc = documents()[0]
    later = UPDATED + timedelta(days=1)
    record = records.with_metadata(records.pack(doc), {"new": [1.5, "ß"]}, later)
    changed = records.unpack(doc.id, record)
    assert_same(changed, Document(doc.id, doc.text, {"new": [1.5, "ß"]}, CREATED, later,
                                  doc.chunks, doc.truncated))  # fmt: skip


@pytest.fixture(params=["memory", "sqlite", "sqlite reopened"])
def stored(request, tmp_path):
    """A repository holding `documents()`, and its way to hand them back."""
    path = tmp_path / "kb.sqlite3"
    repo = (
        InMemoryDocumentRepository()
        if request.param == "memory"
        else SqliteDocumentRepository(path)
    )
    repo.add_knowledge_base(make_kb())
    docs = documents()
    repo.add_documents("kb", docs[:2], unit_rows(4))
    repo.add_documents("kb", docs[2:], unit_rows(3))
    if request.param == "sqlite reopened":
        repo.close()
        repo = SqliteDocumentRepository(path)
    yield repo
    if isinstance(repo, SqliteDocumentRepository):
        repo.close()


def test_every_read_gives_back_the_exact_documents(stored):
    expected = {doc.id: doc for doc in documents()}
    for doc in expected.values():
        assert_same(stored.get_document("kb", doc.id), doc)
    listed = stored.list_documents("kb", 10)
    assert [doc.id for doc in listed] == sorted(expected)
    for doc in listed:
        assert_same(doc, expected[doc.id])
    owners = stored.documents_for_chunks("kb", [7, 1, 99, 5])
    assert sorted(owners) == [1, 5, 7]
    for label, doc in owners.items():
        assert_same(doc, next(d for d in expected.values() if label in [c.id for c in d.chunks]))
    for removed in stored.remove_documents("kb", ["every-kind"]):
        assert_same(removed, expected["every-kind"])


def test_filters_see_metadata_of_every_type(stored):
    where = parse_filter(
        {"unicode": "naïve café \u2013 東京 🚀 e\u0301", "true": True, "big": 2**62 + 1}
    )
    assert [doc.id for doc in stored.list_documents("kb", 10, where=where)] == ["every-kind"]
    assert stored.chunk_ids_matching("kb", where) == [1, 2, 3]
    assert stored.chunk_ids_matching("kb", parse_filter({"true": 1})) == []


def test_documents_reload_with_their_own_chunks_when_labels_interleave(tmp_path):
    path = tmp_path / "kb.sqlite3"
    repo = SqliteDocumentRepository(path)
    repo.add_knowledge_base(make_kb())
    a, b = document("a", "first text here", [1, 4]), document("b", "second text", [2, 3])
    repo.add_documents("kb", [a, b], unit_rows(4))
    repo.replace_document("kb", document("a", "first text, again", [5, 6, 7]), unit_rows(3))
    repo.close()
    repo = SqliteDocumentRepository(path)
    assert [c.id for c in repo.get_document("kb", "a").chunks] == [5, 6, 7]
    assert repo.get_document("kb", "b") == b
    assert {label: doc.id for label, doc in repo.documents_for_chunks("kb", range(9)).items()} == {
        2: "b", 3: "b", 5: "a", 6: "a", 7: "a"
    }  # fmt: skip
    labels, vectors = kept_vectors_of(repo, "kb")
    assert labels.tolist() == [2, 3, 5, 6, 7]
    assert vectors.shape == (5, make_kb().dimension) and vectors.dtype == np.float32
    repo.close()


def test_chunk_owners_agree_with_a_dict_through_random_adds_and_removes():
    owners, expected = ChunkOwners(), {}
    rng = random.Random(7)
    next_label = 1
    for step in range(3000):
        if rng.random() < 0.55 or not expected:
            count = rng.randint(1, 4)
            if rng.random() < 0.1:  # an old, smaller label: merged in, not appended
                labels = rng.sample(range(1, next_label + 10), count)
            else:
                labels = list(range(next_label, next_label + count))
            next_label = max(next_label, max(labels) + 1)
            owner = f"doc-{step}"
            owners.add(labels, [owner] * count)
            expected.update(dict.fromkeys(labels, owner))
        else:
            doomed = rng.sample(sorted(expected), min(len(expected), rng.randint(1, 6)))
            owners.remove([*doomed, next_label + 100])
            for label in doomed:
                del expected[label]
        assert len(owners) == len(expected)
    asked = list(range(next_label + 5))
    assert dict(owners.owners(asked)) == expected


def test_sorted_ids_agree_with_a_sorted_list_through_random_adds_and_removes():
    rng = random.Random(11)
    start = sorted({f"{rng.randrange(10**6):06}" for _ in range(3 * BLOCK)})
    ids, expected = SortedIds(start), list(start)
    for _ in range(6000):  # enough adds in one region to split its block
        if rng.random() < 0.6 or not expected:
            item = (
                f"{rng.randrange(10**6):06}" if rng.random() < 0.7 else f"{rng.randrange(500):06}"
            )
            if item in expected:
                continue
            ids.add(item)
            expected.insert(bisect.bisect_left(expected, item), item)
        else:
            item = rng.choice(expected)
            ids.remove(item)
            expected.remove(item)
        after = rng.choice([None, rng.choice(expected), f"{rng.randrange(10**6):06}", "zzz"])
        limit = rng.choice([1, 7, BLOCK + 3])
        above = [i for i in expected if after is None or i > after]
        assert ids.page(after, limit) == above[:limit]
    assert len(ids) == len(expected) and list(ids.following()) == expected
    with pytest.raises(KeyError):
        ids.remove("absent")


def test_sorted_ids_leave_the_garbage_collector_nothing_long_to_walk():
    ids = SortedIds(f"id-{i:06}" for i in range(5 * BLOCK))
    ids.add("id-000500x")
    gc.collect()
    holding = [
        o
        for o in gc.get_objects()
        if isinstance(o, (list, tuple)) and any(x == "id-000700" for x in o if isinstance(x, str))
    ]  # (only the str items: a list of numpy arrays elsewhere in the process cannot say "in")
    assert holding == []  # a list of every id would be walked on each full collection
