"""`kb sync` and kb_client's sync_knowledge_base against a live server: only what changed is
sent and embedded (the fake embedder counts every text it is given)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from entrypoints.cli import main
from entrypoints.cli_sources import read_documents
from file_samples import pdf
from kb_client import (
    KBClient,
    Skipped,
    SourceText,
    content_hash,
    folder_source,
    jsonl_source,
    sync_knowledge_base,
)
from live_server import serving


@pytest.fixture
def url(make_app: Callable[..., Flask]) -> Iterator[str]:
    with serving(make_app()) as base:
        yield base


@pytest.fixture
def client(url: str) -> Iterator[KBClient]:
    with KBClient(url, retries=0) as kb_client:
        kb_client.create_knowledge_base("kb")
        yield kb_client


@pytest.fixture
def kb(url: str, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--url", url, "--retries", "0"])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def embedded(embedder) -> list[str]:
    return [text for batch in embedder.calls for text in batch]


def stored(client: KBClient) -> dict[str, tuple[str, dict]]:
    """id -> (text, metadata) of every document of `kb`."""
    return {d["id"]: (d["text"], d["metadata"]) for d in client.iter_documents("kb")}


def write_folder(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


@pytest.mark.both_backends
def test_a_second_run_embeds_nothing_and_a_change_embeds_only_that_document(
    client, fake_embedder, tmp_path
):
    records = [
        {"id": f"doc-{n}", "text": f"text number {n}", "metadata": {"n": n}} for n in range(30)
    ]
    source = write_jsonl(tmp_path / "docs.jsonl", records)
    first = sync_knowledge_base(client, "kb", jsonl_source(source))
    assert (first.added, first.unchanged) == (30, 0) and len(embedded(fake_embedder)) == 30
    fake_embedder.calls.clear()
    second = sync_knowledge_base(client, "kb", jsonl_source(source))
    assert (second.added, second.updated, second.unchanged) == (0, 0, 30)
    assert fake_embedder.calls == []
    records[3]["text"] = "a changed text"
    records[4]["metadata"] = {"n": 4, "extra": True}
    third = sync_knowledge_base(client, "kb", jsonl_source(write_jsonl(source, records)))
    assert (third.updated, third.metadata_only, third.unchanged) == (2, 1, 28)
    assert embedded(fake_embedder) == ["a changed text"]
    documents = stored(client)
    assert documents["doc-3"] == ("a changed text", {"n": 3})
    assert documents["doc-4"] == ("text number 4", {"n": 4, "extra": True})


def test_a_dry_run_counts_and_changes_nothing(client, fake_embedder, tmp_path):
    client.add_documents("kb", [{"id": "old", "text": "old text"}, {"id": "a.md", "text": "x"}])
    before, calls = stored(client), len(fake_embedder.calls)
    folder = write_folder(tmp_path / "docs", {"a.md": "changed", "new.txt": "new text"})
    report = sync_knowledge_base(client, "kb", folder_source(folder), prune=True, dry_run=True)
    assert (report.added, report.updated, report.deleted, report.dry_run) == (1, 1, 1, True)
    assert stored(client) == before and len(fake_embedder.calls) == calls


def test_prune_deletes_what_the_folder_no_longer_has_and_keeps_skipped_files(client, tmp_path):
    folder = write_folder(
        tmp_path / "docs",
        {"keep.md": "kept", "gone.txt": "to go", "bad.txt": "fine at first", "sub/x.txt": "x"},
    )
    sync_knowledge_base(client, "kb", folder_source(folder))
    (folder / "gone.txt").unlink()
    (folder / "bad.txt").write_bytes(b"\xff\xfe not utf-8")
    without = sync_knowledge_base(client, "kb", folder_source(folder))
    assert without.deleted == 0 and "gone.txt" in stored(client)
    report = sync_knowledge_base(client, "kb", folder_source(folder), prune=True)
    assert report.deleted == 1 and report.skipped == [Skipped("bad.txt", "not UTF-8 text")]
    assert sorted(stored(client)) == ["bad.txt", "keep.md", "sub/x.txt"]


def test_a_folder_syncs_under_the_ids_kb_import_gives(client, tmp_path):
    folder = write_folder(
        tmp_path / "docs",
        {"a.md": "one\r\ntwo", "ü dir/naïve file.txt": "three", ".hidden.md": "no", "b.png": b"x"},
    )
    imported = {d["id"]: d["text"] for d in read_documents(folder, lambda message: None)}
    synced = {i.id: i.text for i in folder_source(folder) if isinstance(i, SourceText)}
    assert synced == imported and set(synced) == {"a.md", "ü dir/naïve file.txt"}
    client.add_documents("kb", [{"id": i, "text": t} for i, t in imported.items()])
    report = sync_knowledge_base(client, "kb", folder_source(folder))
    assert (report.unchanged, report.added, report.updated) == (2, 0, 0)


def test_a_folder_sync_keeps_the_stored_metadata_of_a_changed_file(client, tmp_path):
    client.add_documents("kb", [{"id": "a.md", "text": "old", "metadata": {"tag": "mine"}}])
    folder = write_folder(tmp_path / "docs", {"a.md": "new"})
    assert sync_knowledge_base(client, "kb", folder_source(folder)).updated == 1
    assert stored(client)["a.md"] == ("new", {"tag": "mine"})


def test_odd_ids_sync_and_an_id_the_service_refuses_is_skipped_with_its_reason(client, tmp_path):
    ids = ["naïve café", "日本語/ファイル", "with inner spaces", "#?%&", "/leading-slash"]
    records = [{"id": doc_id, "text": f"text of {doc_id}"} for doc_id in ids]
    source = write_jsonl(tmp_path / "odd.jsonl", records)
    report = sync_knowledge_base(client, "kb", jsonl_source(source))
    assert report.added == 4 and [s.id for s in report.skipped] == ["/leading-slash"]
    assert "refused by the service" in report.skipped[0].reason
    assert sorted(stored(client)) == sorted(ids[:4])
    again = sync_knowledge_base(client, "kb", jsonl_source(source), prune=True)
    assert (again.unchanged, again.added, again.deleted) == (4, 0, 0)


def test_an_empty_folder_changes_nothing_and_with_prune_empties_the_knowledge_base(
    client, tmp_path
):
    client.add_documents("kb", [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}])
    empty = tmp_path / "empty"
    empty.mkdir()
    assert sync_knowledge_base(client, "kb", folder_source(empty)).summary().startswith("added 0")
    assert sorted(stored(client)) == ["a", "b"]
    assert sync_knowledge_base(client, "kb", folder_source(empty), prune=True).deleted == 2
    assert stored(client) == {}


def test_an_emptied_knowledge_base_gets_everything_back(client, fake_embedder, tmp_path):
    folder = write_folder(tmp_path / "docs", {"a.md": "alpha", "b.md": "beta"})
    sync_knowledge_base(client, "kb", folder_source(folder))
    client.delete_documents("kb", ["a.md", "b.md"])
    fake_embedder.calls.clear()
    report = sync_knowledge_base(client, "kb", folder_source(folder))
    assert report.added == 2 and sorted(embedded(fake_embedder)) == ["alpha", "beta"]


def test_binary_files_are_skipped_until_the_files_endpoint_or_unchanged_by_their_bytes(
    client, tmp_path
):
    folder = write_folder(tmp_path / "docs", {"a.pdf": b"%PDF-1.4 one", "b.docx": b"PK two"})
    sha = folder_source(folder)
    digests = {item.id: item.sha256 for item in sha}  # type: ignore[union-attr]
    # As the files endpoint stores an ingested file: its bytes' SHA-256 in the metadata.
    client.add_documents(
        "kb",
        [{"id": "a.pdf", "text": "extracted", "metadata": {"source_sha256": digests["a.pdf"]}}],
    )
    report = sync_knowledge_base(client, "kb", folder_source(folder), prune=True)
    assert report.unchanged == 1 and report.deleted == 0
    assert [(s.id, s.reason.split(" (")[0]) for s in report.skipped] == [
        ("b.docx", "needs the files endpoint")
    ]
    sent: list[list[str]] = []
    (folder / "a.pdf").write_bytes(b"%PDF-1.4 changed")
    report = sync_knowledge_base(
        client,
        "kb",
        folder_source(folder),
        send_files=lambda kb, files: sent.append([f.id for f in files]) or [],
    )
    assert sent == [["a.pdf", "b.docx"]] and (report.added, report.updated) == (1, 1)
    assert "a.pdf" not in stored(client)  # deleted first: the files endpoint adds new ids only


def test_the_listing_hash_matches_the_clients(client):
    client.add_document("kb", "ünïcödé ☃\r\n text", id="a")
    (item,) = client.iter_document_hashes("kb")
    assert item == {"id": "a", "content_hash": content_hash("ünïcödé ☃\r\n text"), "metadata": {}}


def test_kb_sync_prints_the_counts_and_a_dry_run_changes_nothing(kb, client, tmp_path):
    folder = write_folder(tmp_path / "docs", {"a.md": "alpha", "b.pdf": pdf(["beta"])})
    code, out, _ = kb("sync", str(folder), "--kb", "kb", "--dry-run")
    assert code == 0 and "dry run" in out and "added 2," in out and stored(client) == {}
    code, out, _ = kb("sync", str(folder), "--kb", "kb")
    assert code == 0 and "added 2, updated 0 (0 metadata only), unchanged 0" in out
    assert client.get_document("kb", "b.pdf")["text"] == "beta"
    code, out, _ = kb("sync", str(folder), "--kb", "kb", "--prune")
    assert code == 0 and "added 0, updated 0 (0 metadata only), unchanged 2, deleted 0" in out
    (folder / "b.pdf").write_bytes(pdf(["gamma"]))
    code, out, _ = kb("sync", str(folder), "--kb", "kb")
    assert code == 0 and "updated 1" in out
    assert client.get_document("kb", "b.pdf")["text"] == "gamma"


def test_kb_sync_skips_a_file_the_service_cannot_read_with_a_warning(kb, client, tmp_path):
    folder = write_folder(tmp_path / "docs", {"a.md": "alpha", "scan.pdf": pdf([""])})
    code, _, err = kb("sync", str(folder), "--kb", "kb")
    assert code == 0 and "skipped scan.pdf" in err and "OCR" in err
    assert set(stored(client)) == {"a.md"}


def test_kb_sync_refuses_a_bad_source_with_exit_2_and_sends_nothing(kb, client, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\n{"id": "b"}\n')
    code, _, err = kb("sync", str(bad), "--kb", "kb")
    assert code == 2 and "bad.jsonl:2" in err and stored(client) == {}
    twice = write_jsonl(tmp_path / "twice.jsonl", [{"id": "a", "text": "x"}] * 2)
    code, _, err = kb("sync", str(twice), "--kb", "kb")
    assert code == 2 and "appears twice" in err and stored(client) == {}
    code, _, err = kb("sync", str(tmp_path / "missing"), "--kb", "kb")
    assert code == 2 and "does not exist" in err
    code, _, err = kb("sync", str(twice), "--kb", "nope")
    assert code == 1 and "--create" in err


def test_a_dry_run_with_create_counts_everything_as_added_and_creates_nothing(kb, client, tmp_path):
    folder = write_folder(tmp_path / "docs", {"a.md": "alpha", "b.md": "beta"})
    code, out, _ = kb("sync", str(folder), "--kb", "fresh", "--create", "--dry-run")
    assert code == 0 and "dry run" in out and "added 2," in out
    assert [k["name"] for k in client.iter_knowledge_bases()] == ["kb"]
    code, out, _ = kb("sync", str(folder), "--kb", "fresh", "--create")
    assert code == 0 and "added 2," in out
    assert len(list(client.iter_document_hashes("fresh"))) == 2


def test_a_file_the_service_refuses_is_reported_skipped_not_added(kb, client, tmp_path):
    folder = write_folder(
        tmp_path / "docs", {"good.pdf": pdf(["Readable text."]), "scan.pdf": pdf([""])}
    )
    code, out, err = kb("sync", str(folder), "--kb", "kb")
    assert code == 0, err
    assert "added 1," in out and "skipped 1" in out
    assert "scan.pdf" in out + err and "OCR" in out + err
    assert set(stored(client)) == {"good.pdf"}
