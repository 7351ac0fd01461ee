"""What a sync decides from the stored hashes and the source, before anything is sent."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from domain.digests import content_hash as service_hash
from kb_client import Skipped, SourceFile, SourceText, content_hash, plan_sync
from kb_client.sync import NEEDS_FILES_ENDPOINT, planned


def stored(doc_id: str, text: str, **metadata) -> dict:
    return {"id": doc_id, "content_hash": content_hash(text), "metadata": metadata}


@pytest.mark.parametrize("text", ["plain", "ünïcödé ☃ 日本", "line\r\nbreaks\n", "lone \ud800"])
def test_the_clients_hash_is_the_services(text):
    assert content_hash(text) == service_hash(text)
    if "\ud800" not in text:
        assert content_hash(text) == "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_new_changed_and_unchanged_texts_are_told_apart():
    plan = plan_sync(
        [stored("same", "a"), stored("changed", "b")],
        [SourceText("same", "a"), SourceText("changed", "b2"), SourceText("new", "c")],
    )
    assert [i.id for i in plan.add] == ["new"]
    assert [i.id for i in plan.update] == ["changed"]
    assert plan.unchanged == 1 and not plan.patch and not plan.delete


def test_a_jsonl_metadata_change_is_a_patch_compared_as_json():
    plan = plan_sync(
        [stored("a", "t", n=1), stored("b", "t", n=1), stored("c", "t", k=1, j=2)],
        [
            SourceText("a", "t", {"n": 1.0}),  # 1 and 1.0 are different JSON
            SourceText("b", "t", {"n": True}),
            SourceText("c", "t", {"j": 2, "k": 1}),  # key order does not matter
        ],
    )
    assert [i.id for i in plan.patch] == ["a", "b"]
    assert plan.unchanged == 1


def test_a_jsonl_text_change_takes_the_sources_metadata_a_folder_keeps_the_stored():
    plan = plan_sync(
        [stored("jsonl", "old", tag="old"), stored("file.md", "old", tag="mine")],
        [SourceText("jsonl", "new", {"tag": "new"}), SourceText("file.md", "new")],
    )
    assert [(i.id, i.metadata) for i in plan.update] == [
        ("jsonl", {"tag": "new"}),
        ("file.md", {"tag": "mine"}),
    ]


def test_a_folder_text_with_stored_metadata_is_unchanged():
    plan = plan_sync([stored("file.md", "same", tag="mine")], [SourceText("file.md", "same")])
    assert plan.unchanged == 1 and not plan.patch


def test_prune_deletes_only_what_the_source_lacks_and_never_a_skipped_entry():
    known = [stored("kept", "a"), stored("gone", "b"), stored("bad.txt", "c")]
    source = [SourceText("kept", "a"), Skipped("bad.txt", "not UTF-8 text")]
    assert plan_sync(known, source).delete == []
    plan = plan_sync(known, source, prune=True)
    assert plan.delete == ["gone"]
    assert plan.skipped == [Skipped("bad.txt", "not UTF-8 text")]


def test_files_compare_by_the_source_sha256_and_without_a_sender_are_skipped():
    known = [
        {"id": "same.pdf", "content_hash": "x", "metadata": {"source_sha256": "aa"}},
        {"id": "changed.pdf", "content_hash": "x", "metadata": {"source_sha256": "bb"}},
    ]
    source = [
        SourceFile("same.pdf", Path("same.pdf"), "aa"),
        SourceFile("changed.pdf", Path("changed.pdf"), "cc"),
        SourceFile("new.docx", Path("new.docx"), "dd"),
    ]
    plan = plan_sync(known, source, prune=True)
    assert plan.unchanged == 1 and plan.delete == [] and plan.files == []
    assert [(s.id, s.reason) for s in plan.skipped] == [
        ("changed.pdf", NEEDS_FILES_ENDPOINT),
        ("new.docx", NEEDS_FILES_ENDPOINT),
    ]
    sending = plan_sync(known, source, files=True)
    assert [f.id for f in sending.files] == ["changed.pdf", "new.docx"]
    assert sending.replaced_files == ["changed.pdf"]
    report = planned(sending, dry_run=True)
    assert (report.added, report.updated, report.unchanged) == (1, 1, 1)


def test_an_id_twice_in_the_source_is_refused():
    with pytest.raises(ValueError, match="'a' appears twice"):
        plan_sync([], [SourceText("a", "x"), SourceText("a", "y")])


def test_an_empty_source_adds_nothing_and_with_prune_deletes_everything():
    known = [stored("a", "x"), stored("b", "y")]
    assert planned(plan_sync(known, []), False).summary() == (
        "added 0, updated 0 (0 metadata only), unchanged 0, deleted 0, skipped 0"
    )
    assert plan_sync(known, [], prune=True).delete == ["a", "b"]
