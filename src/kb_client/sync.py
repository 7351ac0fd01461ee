"""Sync: make a knowledge base equal to a source, sending only what changed.

The knowledge base is read as ids, content hashes and metadata (`iter_document_hashes`: the
service reads no text), the source is hashed here, and only the differences travel: new
documents are added, changed ones replaced, unchanged ones skipped (nothing is embedded for
them), and with `prune` documents the source no longer has are deleted.

What counts as changed:
- a text document (`SourceText`): its text's content hash differs from the stored one; or,
  when the source states metadata (`metadata` not None, as a JSONL line does), that metadata
  differs from the stored one, compared as JSON (key order aside; 1 and 1.0 and true differ).
  A metadata-only change is a PATCH: the text is not sent and not re-embedded. A source
  without metadata (a folder of files) neither compares nor overwrites the stored metadata.
- a file the service's files endpoint ingests (`SourceFile`: .pdf, .html, .docx): the hex
  SHA-256 of its bytes differs from the stored document's `source_sha256` metadata.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb_client.errors import Conflict, Invalid, PayloadTooLarge
from kb_client.models import DocumentHash, Metadata, NewDocument

if TYPE_CHECKING:
    from kb_client.client import KBClient

SOURCE_SHA256 = "source_sha256"  # the files endpoint's metadata: hex SHA-256 of the raw bytes
MAX_IDS_PER_DELETE = 10_000  # the service's bound on one bulk delete
NEEDS_FILES_ENDPOINT = "needs the files endpoint (POST /v1/knowledge-bases/{kb}/files)"


def content_hash(text: str) -> str:
    """The service's `content_hash` of a text: "sha256:" + hex SHA-256 of its UTF-8 bytes
    (lone surrogates, which a JSON string may carry, encoded as they are)."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class SourceText:
    """A text document of the source; `metadata` None: the source states none (a folder)."""

    id: str
    text: str
    metadata: Metadata | None = None


@dataclass(frozen=True)
class SourceFile:
    """A file the service's files endpoint turns into a document; `sha256` is the hex SHA-256
    of its bytes, compared with the stored document's `source_sha256` metadata."""

    id: str
    path: Path
    sha256: str


@dataclass(frozen=True)
class Skipped:
    """A source entry (or a stored document) sync left alone, and why."""

    id: str
    reason: str


SourceItem = SourceText | SourceFile | Skipped

FileSender = Callable[[str, Sequence[SourceFile]], Sequence[Skipped]]
"""`send_files(kb, files)`: add each file as the new document `file.id` through the files
endpoint (none of those ids exists then: sync deleted a changed file's document first); return
the files the service refused (e.g. a scanned PDF), each with its reason."""


@dataclass
class SyncPlan:
    """What a sync does: computed from the listing and the source, before anything is sent."""

    add: list[SourceText] = field(default_factory=list)
    update: list[SourceText] = field(default_factory=list)  # text changed: upsert
    patch: list[SourceText] = field(default_factory=list)  # only the metadata changed
    files: list[SourceFile] = field(default_factory=list)  # new or changed files to send
    replaced_files: list[str] = field(default_factory=list)  # their documents, deleted first
    delete: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class SyncReport:
    """Counts of a sync (with `dry_run`, what it would do); `updated` includes the
    `metadata_only` updates and changed files, `added` new files."""

    added: int = 0
    updated: int = 0
    metadata_only: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"added {self.added}, updated {self.updated} ({self.metadata_only} metadata only), "
            f"unchanged {self.unchanged}, deleted {self.deleted}, skipped {len(self.skipped)}"
        )


def sync_knowledge_base(
    client: KBClient,
    kb: str,
    source: Iterable[SourceItem],
    *,
    prune: bool = False,
    dry_run: bool = False,
    send_files: FileSender | None = None,
    batch_size: int = 64,
) -> SyncReport:
    """Make knowledge base `kb` equal to `source` (see the module docstring); with `dry_run`
    only count. Files are sent by `send_files`; without it they are skipped, unless unchanged.

    ValueError (nothing sent) if an id appears twice in the source. A document the service
    refuses (422, 413: an invalid id, a text too long) is reported as skipped; the rest go on.
    """
    started = time.monotonic()
    plan = plan_sync(
        client.iter_document_hashes(kb), source, prune=prune, files=send_files is not None
    )
    report = planned(plan, dry_run)
    if not dry_run:
        report = apply_plan(client, kb, plan, send_files, batch_size)
    report.seconds = time.monotonic() - started
    return report


def plan_sync(
    stored: Iterable[DocumentHash],
    source: Iterable[SourceItem],
    *,
    prune: bool = False,
    files: bool = False,
) -> SyncPlan:
    """Compare the stored documents with the source; `files`: whether files can be sent."""
    known = {document["id"]: document for document in stored}
    plan = SyncPlan()
    seen: set[str] = set()
    for item in source:
        if item.id in seen:
            raise ValueError(f"the id {item.id!r} appears twice in the source")
        seen.add(item.id)
        current = known.get(item.id)
        if isinstance(item, Skipped):
            plan.skipped.append(item)  # kept, even by a prune: it is in the source
        elif isinstance(item, SourceFile):
            _plan_file(plan, item, current, files)
        else:
            _plan_text(plan, item, current)
    if prune:
        plan.delete = [doc_id for doc_id in known if doc_id not in seen]
    return plan


def _plan_text(plan: SyncPlan, item: SourceText, current: DocumentHash | None) -> None:
    if current is None:
        plan.add.append(item)
    elif content_hash(item.text) != current["content_hash"]:
        kept = item.metadata if item.metadata is not None else current["metadata"]
        plan.update.append(replace(item, metadata=kept))
    elif item.metadata is not None and not _same_json(item.metadata, current["metadata"]):
        plan.patch.append(item)
    else:
        plan.unchanged += 1


def _plan_file(plan: SyncPlan, item: SourceFile, current: DocumentHash | None, files: bool) -> None:
    if current is not None and current["metadata"].get(SOURCE_SHA256) == item.sha256:
        plan.unchanged += 1
    elif not files:
        plan.skipped.append(Skipped(item.id, NEEDS_FILES_ENDPOINT))
    else:
        plan.files.append(item)
        if current is not None:
            plan.replaced_files.append(item.id)


def _same_json(left: Any, right: Any) -> bool:
    """Equal as JSON values: Python's == with types too, since 1 == 1.0 == True in Python
    but not in JSON (and not in a metadata filter). Key order does not matter."""
    if type(left) is not type(right) or left != right:
        return False
    if isinstance(left, dict):
        return all(_same_json(value, right[key]) for key, value in left.items())
    if isinstance(left, list):
        return all(_same_json(a, b) for a, b in zip(left, right, strict=True))
    return True


def planned(plan: SyncPlan, dry_run: bool) -> SyncReport:
    """The report of `plan` as computed: what a dry run prints."""
    new_files = len(plan.files) - len(plan.replaced_files)
    return SyncReport(
        added=len(plan.add) + new_files,
        updated=len(plan.update) + len(plan.patch) + len(plan.replaced_files),
        metadata_only=len(plan.patch),
        unchanged=plan.unchanged,
        deleted=len(plan.delete),
        skipped=list(plan.skipped),
        dry_run=dry_run,
    )


def apply_plan(
    client: KBClient, kb: str, plan: SyncPlan, send_files: FileSender | None, batch_size: int
) -> SyncReport:
    """Carry `plan` out: adds and replacements first, deletions last; the report counts what
    the service took."""
    report = SyncReport(unchanged=plan.unchanged, skipped=list(plan.skipped))
    report.added = _add(client, kb, plan.add, batch_size, report.skipped)
    for item in plan.update:
        report.updated += _upsert(client, kb, item, report.skipped)
    for item in plan.patch:
        assert item.metadata is not None
        client.update_document_metadata(kb, item.id, item.metadata)
        report.updated += 1
        report.metadata_only += 1
    if plan.files and send_files is not None:
        _delete(client, kb, plan.replaced_files, [])
        refused = {skip.id: skip.reason for skip in send_files(kb, plan.files)}
        replaced = set(plan.replaced_files)
        for id, reason in refused.items():
            gone = " (its previous version was removed)" if id in replaced else ""
            report.skipped.append(Skipped(id, reason + gone))
        report.updated += len(replaced - refused.keys())
        report.added += len({file.id for file in plan.files} - replaced - refused.keys())
    report.deleted = _delete(client, kb, plan.delete, report.skipped)
    return report


def _new(item: SourceText) -> NewDocument:
    return {"id": item.id, "text": item.text, "metadata": item.metadata or {}}


def _add(
    client: KBClient, kb: str, items: list[SourceText], batch_size: int, skipped: list[Skipped]
) -> int:
    """Batches, all or nothing each; a batch the service refuses goes one document at a time,
    so one bad document (or one another writer added meanwhile) does not stop the rest."""
    done = 0
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        try:
            client.add_documents(kb, [_new(item) for item in batch])
            done += len(batch)
        except (Conflict, Invalid, PayloadTooLarge):
            done += sum(_upsert(client, kb, item, skipped) for item in batch)
    return done


def _upsert(client: KBClient, kb: str, item: SourceText, skipped: list[Skipped]) -> int:
    try:
        client.upsert_document(kb, item.id, item.text, item.metadata or {})
    except (Invalid, PayloadTooLarge) as error:
        skipped.append(Skipped(item.id, f"refused by the service: {error.message}"))
        return 0
    return 1


def _delete(client: KBClient, kb: str, ids: list[str], skipped: list[Skipped]) -> int:
    """Bulk deletes; ids the service refuses (stored under an older id rule) one by one."""
    done = 0
    for start in range(0, len(ids), MAX_IDS_PER_DELETE):
        part = ids[start : start + MAX_IDS_PER_DELETE]
        try:
            done += client.delete_documents(kb, part)["count"]
        except Invalid:
            for doc_id in part:
                try:
                    done += client.delete_documents(kb, [doc_id])["count"]
                except Invalid as error:
                    skipped.append(Skipped(doc_id, f"not deleted: {error.message}"))
    return done
