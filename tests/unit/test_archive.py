"""The kb-archive format: round trips, plain tools can open it, every kind of damage is named."""

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import tarfile
import threading
import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from domain.archive import MEMBERS, ArchiveHeader
from domain.archive_reader import read_archive
from domain.archive_writer import spool_archive, write_archive
from domain.errors import ArchiveInvalidError
from domain.model import Chunk, Document, KnowledgeBase, Layout, Span
from entrypoints.errors import STATUS_OF

CREATED = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
DIMENSION = 4


def knowledge_base(dimension=DIMENSION, fingerprint="sha256:abc"):
    return KnowledgeBase(
        "notes",
        "all-MiniLM-L6-v2",
        dimension,
        CREATED,
        description="Meeting notes ✓",
        metadata={"team": "search", "tags": ["a", 1, 2.5, True]},
        chunking="truncate",
        chunk_overlap=3,
        fingerprint=fingerprint,
    )


def entry(doc_id, chunks, seed=0, dimension=DIMENSION):
    text = f"text of {doc_id} " * (4 + chunks)
    step = len(text) // chunks  # overlapping windows, as the service's chunker makes
    spans = tuple(
        Chunk(100 + i, Span(i * step, min((i + 2) * step, len(text)))) for i in range(chunks)
    )
    document = Document(
        doc_id,
        text,
        {"n": seed, "score": 0.1 * seed, "tags": ["x", seed]},
        CREATED + timedelta(microseconds=seed),
        CREATED + timedelta(days=1, microseconds=seed),
        spans,
        truncated=seed % 2 == 1,
    )
    rng = np.random.default_rng(seed)
    return document, rng.standard_normal((chunks, dimension)).astype(np.float32)


ENTRIES = [entry("a", 2, 1), entry("b/c", 1, 2), entry("d", 3, 3)]


def archive(entries=ENTRIES, kb=None, exported_at=None):
    out = io.BytesIO()
    exported_at = exported_at or CREATED + timedelta(days=9)
    header = ArchiveHeader(kb or knowledge_base(), exported_at)
    write_archive(header, iter(entries), out)
    return out.getvalue()


def read_all(raw):
    manifest, entries = read_archive(io.BytesIO(raw))
    return manifest, list(entries)


def members(raw):
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def tar_of(parts):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for name, data in parts:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def resealed(raw, manifest=None, lines=None, vectors=None):
    """The archive with its parts edited and every checksum made to match again, so that the
    reader's other checks are what meet the edit."""
    parts = members(raw)
    body = json.loads(parts["manifest.json"])
    (manifest or (lambda m: None))(body)
    docs = [json.loads(line) for line in parts["documents.jsonl"].splitlines()]
    (lines or (lambda d: None))(docs)
    array = np.load(io.BytesIO(parts["vectors.npy"]))
    data = {
        "documents.jsonl": b"".join(json.dumps(d).encode() + b"\n" for d in docs),
        "vectors.npy": vectors(array) if vectors else parts["vectors.npy"],
    }
    body["sha256"] = {name: hashlib.sha256(value).hexdigest() for name, value in data.items()}
    data = {"manifest.json": json.dumps(body).encode(), **data}
    sums = "".join(f"{hashlib.sha256(v).hexdigest()}  {k}\n" for k, v in data.items()).encode()
    return tar_of([*data.items(), ("SHA256SUMS", sums)])


def refusal(raw):
    with pytest.raises(ArchiveInvalidError) as caught:
        read_all(raw)
    return caught.value.message


# Round trips


def test_a_round_trip_keeps_documents_metadata_timestamps_spans_and_vectors_bit_exact():
    manifest, entries = read_all(archive())
    assert manifest.knowledge_base == knowledge_base()
    assert manifest.knowledge_base.fingerprint == "sha256:abc"
    assert manifest.header.exported_at == CREATED + timedelta(days=9)
    assert (manifest.document_count, manifest.chunk_count) == (3, 6)
    assert len(entries) == len(ENTRIES)
    row = 0
    for (document, vectors), (original, original_vectors) in zip(entries, ENTRIES):
        assert document.id == original.id
        assert document.text == original.text
        assert document.metadata == original.metadata
        assert document.created_at == original.created_at
        assert document.updated_at == original.updated_at
        assert document.truncated == original.truncated
        assert [c.span for c in document.chunks] == [c.span for c in original.chunks]
        # A chunk's label in an archive is its row of vectors.npy.
        assert [c.id for c in document.chunks] == list(range(row, row + len(original.chunks)))
        row += len(original.chunks)
        assert vectors.dtype == np.float32
        assert vectors.tobytes() == original_vectors.tobytes()


def test_an_empty_knowledge_base_round_trips():
    raw = archive([])
    manifest, entries = read_all(raw)
    assert (manifest.document_count, manifest.chunk_count, entries) == (0, 0, [])
    assert np.load(io.BytesIO(members(raw)["vectors.npy"])).shape == (0, DIMENSION)


def test_unicode_ids_and_texts_round_trip():
    ids = sorted(["a", "café", "日本/語", "😀 smile", "Ω"])
    raw = archive([entry(doc_id, 1, seed) for seed, doc_id in enumerate(ids)])
    assert [d.id for d, _ in read_all(raw)[1]] == ids


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_a_compressed_archive_reads_like_the_plain_one(compress):
    raw = archive()
    manifest, entries = read_all(compress(raw))
    assert manifest == read_all(raw)[0]
    assert [d for d, _ in entries] == [d for d, _ in read_all(raw)[1]]
    assert np.vstack([v for _, v in entries]).tobytes() == members(raw)["vectors.npy"][-96:]


def test_a_user_opens_it_with_tarfile_json_numpy_and_sha256sum():
    raw = archive()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        assert tar.getnames() == list(MEMBERS)
        parts = {name: tar.extractfile(name).read() for name in MEMBERS}
    manifest = json.loads(parts["manifest.json"])
    assert (manifest["format"], manifest["version"]) == ("kb-archive", 1)
    assert manifest["model"] == {
        "name": "all-MiniLM-L6-v2",
        "fingerprint": "sha256:abc",
        "dimension": 4,
    }
    lines = [json.loads(line) for line in parts["documents.jsonl"].decode().splitlines()]
    spans = [[c.span.start, c.span.end] for c in ENTRIES[0][0].chunks]
    assert lines[0]["chunks"] == spans
    vectors = np.load(io.BytesIO(parts["vectors.npy"]))
    assert vectors.tobytes() == np.vstack([v for _, v in ENTRIES]).tobytes()
    for line in parts["SHA256SUMS"].decode().splitlines():  # what `sha256sum -c` checks
        digest, name = line.split("  ")
        assert hashlib.sha256(parts[name]).hexdigest() == digest
    assert manifest["sha256"]["vectors.npy"] == hashlib.sha256(parts["vectors.npy"]).hexdigest()


def test_an_archive_unpacked_and_packed_again_by_hand_reads_the_same(tmp_path):
    raw = archive()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        tar.extractall(tmp_path, filter="data")
    repacked = io.BytesIO()
    with tarfile.open(fileobj=repacked, mode="w:gz") as tar:  # `tar -czf x.kbar ./manifest.json …`
        for name in MEMBERS:
            tar.add(tmp_path / name, arcname=f"./{name}")
    manifest, entries = read_all(repacked.getvalue())
    original, original_entries = read_all(raw)
    assert manifest == original
    assert [d for d, _ in entries] == [d for d, _ in original_entries]


def test_a_spooled_archive_knows_its_size_before_it_streams():
    header = ArchiveHeader(knowledge_base(), CREATED)
    with spool_archive(header, iter(ENTRIES)) as spooled:
        size = spooled.size
        assert spooled.manifest.chunk_count == 6
        data = b"".join(spooled.blocks())
    assert len(data) == size
    assert data == archive(exported_at=CREATED)


def test_fifty_thousand_chunks_stream_through_a_pipe_in_bounded_memory(tmp_path):
    dimension, documents, per_document = 192, 2_000, 25  # 38 MB of vectors
    kb = knowledge_base(dimension)
    rng = np.random.default_rng(7)
    block = rng.standard_normal((per_document, dimension)).astype(np.float32)

    def source():
        for number in range(documents):
            document, _ = entry(f"doc-{number:06d}", per_document, 0, dimension)
            yield document, block + number

    read_end, write_end = os.pipe()
    tracemalloc.start()
    try:
        failures = []

        def produce():
            with os.fdopen(write_end, "wb") as out:
                try:
                    write_archive(ArchiveHeader(kb), source(), out, spool_dir=str(tmp_path))
                except Exception as error:
                    failures.append(error)

        writer = threading.Thread(target=produce)
        writer.start()
        with os.fdopen(read_end, "rb") as stream:
            assert not stream.seekable()
            manifest, entries = read_archive(stream, spool_dir=str(tmp_path))
            count = total = 0
            for number, (document, vectors) in enumerate(entries):
                assert document.id == f"doc-{number:06d}"
                assert vectors[0, 0] == block[0, 0] + number
                count, total = count + 1, total + len(vectors)
        writer.join()
        assert failures == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (count, total, manifest.chunk_count) == (documents, 50_000, 50_000)
    assert peak < 4 << 20, f"peak {peak / 2**20:.1f} MiB"


# Refusals: each says what is wrong


def data_offset(raw, name):
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        member = tar.getmember(name)
        return member.offset_data, member.size


@pytest.mark.parametrize(
    ("member", "where"),
    [
        ("documents.jsonl", 0.5),
        ("vectors.npy", 0.9),  # in the rows
        ("manifest.json", 0.2),  # in the description: only SHA256SUMS covers the manifest
    ],
)
def test_a_flipped_byte_is_a_checksum_mismatch_naming_the_member(member, where):
    raw = bytearray(archive())
    offset, size = data_offset(bytes(raw), member)
    position = offset + int(size * where)
    if member == "manifest.json":
        position = raw.index(b"Meeting notes")
    raw[position] ^= 0x01
    message = refusal(bytes(raw))
    assert f"{member} does not match its sha256" in message
    assert "the archive is corrupt" in message


@pytest.mark.parametrize(
    "cut",
    [
        "in manifest.json",
        "in documents.jsonl",
        "in vectors.npy",
        "before vectors.npy",
        "before SHA256SUMS",
    ],
)
def test_a_truncated_archive_is_cut_short(cut):
    raw = archive()
    where, name = cut.split(" ")
    offset, size = data_offset(raw, name)
    end = offset + size // 2 if where == "in" else offset - 512  # before: without its header
    assert "cut short" in refusal(raw[:end])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "the archive is not a readable tar stream (empty file)"),
        (b'{"format": "kb-archive"}' * 40, "the archive is not a readable tar stream"),
        (tar_of([("notes.txt", b"hi")]), "expected member 'manifest.json' but found 'notes.txt'"),
    ],
)
def test_a_foreign_file_is_not_an_archive(data, expected):
    assert expected in refusal(data)


def test_a_manifest_that_is_not_json_is_refused():
    parts = members(archive())
    parts["manifest.json"] = parts["manifest.json"][:-30]
    assert refusal(tar_of(parts.items())).startswith("manifest.json is not valid JSON: ")


def test_another_format_name_is_refused():
    raw = resealed(archive(), manifest=lambda m: m.update(format="zip-of-things"))
    assert "format is 'zip-of-things', not 'kb-archive'" in refusal(raw)


def test_an_unknown_format_version_is_refused():
    raw = resealed(archive(), manifest=lambda m: m.update(version=2))
    assert "archive format version 2 is not supported; this service reads version 1" in refusal(raw)


def test_vectors_of_another_dimension_than_the_manifest_are_refused():
    raw = resealed(archive(), vectors=lambda a: npy(np.hstack([a, a])))
    assert refusal(raw) == (
        "vectors.npy has 8 columns but manifest.json says the model's dimension is 4"
    )


def test_a_manifest_with_an_invalid_dimension_is_refused():
    raw = resealed(archive(), manifest=lambda m: m["model"].update(dimension="4"))
    assert refusal(raw) == "manifest.json: 'model.dimension' must be an integer, not '4'"


def test_duplicate_document_ids_are_refused():
    def repeat_first(lines):
        lines[1] = dict(lines[0])

    raw = resealed(
        archive(),
        manifest=lambda m: m["counts"].update(chunks=7),
        lines=repeat_first,
        vectors=lambda a: npy(np.vstack([a[:2], a[:2], a[3:]])),
    )
    assert refusal(raw).startswith(
        "documents.jsonl line 2: document id 'a' appears twice; ids must be unique"
    )


def test_documents_out_of_order_are_refused():
    raw = resealed(archive(), lines=lambda lines: lines.reverse())
    assert "line 2: document id 'b/c' comes after 'd'" in refusal(raw)


def test_a_document_count_other_than_the_manifest_is_refused():
    raw = resealed(archive(), manifest=lambda m: m["counts"].update(documents=4))
    assert refusal(raw) == "documents.jsonl holds 3 documents but manifest.json counts 4"
    raw = resealed(archive(), manifest=lambda m: m["counts"].update(documents=2))
    assert refusal(raw) == "documents.jsonl holds more than the 2 documents manifest.json counts"


def test_a_chunk_count_other_than_the_vector_rows_is_refused():
    raw = resealed(archive(), manifest=lambda m: m["counts"].update(chunks=7))
    assert refusal(raw) == "vectors.npy has 6 rows but manifest.json counts 7 chunks"


def test_more_spans_than_vector_rows_are_refused():
    raw = resealed(archive(), lines=lambda lines: lines[2]["chunks"].append([0, 1]))
    assert refusal(raw) == (
        "documents.jsonl line 3: document 'd' has chunks beyond the 6 rows of vectors.npy"
    )


def test_fewer_spans_than_vector_rows_are_refused():
    raw = resealed(archive(), lines=lambda lines: lines[2]["chunks"].pop())
    assert refusal(raw) == "vectors.npy has 6 rows but documents.jsonl has 5 chunks"


@pytest.mark.parametrize("span", [[5, 5], [0, 10_000], [-1, 3], [0, 1.5], [1]])
def test_a_span_outside_the_text_is_refused(span):
    raw = resealed(archive(), lines=lambda lines: lines[0]["chunks"].__setitem__(1, span))
    assert refusal(raw).startswith("documents.jsonl line 1: chunk 1 span ")


def test_a_document_without_chunks_is_refused():
    raw = resealed(archive(), lines=lambda lines: lines[1].update(chunks=[]))
    assert refusal(raw) == "documents.jsonl line 2: the document has no chunks"


def test_an_invalid_document_is_refused_with_its_line():
    raw = resealed(archive(), lines=lambda lines: lines[1].update(id="../x"))
    assert refusal(raw).startswith("documents.jsonl line 2: invalid document id '../x'")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_vectors_are_refused(bad):
    def poison(array):
        array[3, 2] = bad
        return npy(array)

    raw = resealed(archive(), vectors=poison)
    assert refusal(raw) == (
        "vectors.npy row 3 (document 'd', chunk 0) holds a value that is not a finite number"
    )


def test_vectors_of_another_type_are_refused():
    raw = resealed(archive(), vectors=lambda a: npy(a.astype(np.float64)))
    assert refusal(raw).startswith("vectors.npy holds a 6x4 array of float64")


def test_a_member_after_the_checksums_is_refused():
    raw = tar_of([*members(archive()).items(), ("extra.txt", b"x")])
    assert refusal(raw) == "unexpected member 'extra.txt' after SHA256SUMS"


def test_an_invalid_archive_is_a_422():
    error = ArchiveInvalidError("vectors.npy is short", member="vectors.npy")
    assert next(code for kind, code in STATUS_OF if isinstance(error, kind)) == 422
    assert error.errors == {"vectors.npy": ["vectors.npy is short"]}


# The writer refuses to make an archive the reader would refuse


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([ENTRIES[1], ENTRIES[0]], "document 'a' comes after 'b/c': ids must ascend"),
        ([(ENTRIES[0][0], ENTRIES[0][1][:1])], "vectors of shape (1, 4), expected (2, 4)"),
        ([(ENTRIES[0][0], ENTRIES[0][1] * np.inf)], "its vectors are not all finite"),
    ],
)
def test_the_writer_refuses_what_the_format_forbids(entries, expected):
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        archive(entries)


# Layouts (sections and pages of documents made from files)


def test_a_layout_round_trips_and_a_document_without_one_writes_none():
    plain, plain_vectors = entry("a", 1, 1)
    paged = replace(plain, id="b", layout=Layout(sections=(0, 9), pages=(12, 12, 30)))
    raw = archive([(plain, plain_vectors), (paged, plain_vectors)])
    lines = [json.loads(line) for line in members(raw)["documents.jsonl"].splitlines()]
    assert "layout" not in lines[0]
    assert lines[1]["layout"] == {"sections": [0, 9], "pages": [12, 12, 30]}
    _, entries = read_all(raw)
    assert [document.layout for document, _ in entries] == [Layout(), paged.layout]


def test_an_archive_from_before_layouts_reads_with_empty_layouts():
    # version-1 archives written before layouts existed have no "layout" key at all
    _, entries = read_all(archive())
    assert all(document.layout == Layout() for document, _ in entries)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ([0, 1], "'layout' must be an object"),
        ({"sections": [0]}, "'layout.pages' must be a list"),
        ({"sections": [3, 2], "pages": []}, "layout sections must be strictly increasing"),
        ({"sections": [], "pages": [10_000]}, "layout pages offset 10000 is beyond the text"),
    ],
)
def test_a_bad_layout_is_refused_naming_the_line(layout, message):
    def edit(docs):
        docs[1]["layout"] = layout

    text = refusal(resealed(archive(), lines=edit))
    assert text.startswith("documents.jsonl line 2: ")
    assert message in text
