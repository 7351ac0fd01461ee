"""`kb import DIR`, its files: .pdf, .html/.htm and .docx files go to the service's file
upload, which extracts their text (the .txt/.md ones go as documents, see cli_import)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from entrypoints.cli_import import ImportReport, RateColumn, document_exists, existing_ids
from kb_client import Conflict, Invalid, KBClient, PayloadTooLarge

FILE_SUFFIXES = frozenset({".pdf", ".html", ".htm", ".docx"})
BATCH_FILES = 8  # files per request: under the service's default job threshold (16 files)
BATCH_BYTES = 2 * 1024 * 1024  # and its 4 MiB, so each request is answered when done

File = tuple[str, Path]  # (id: the path relative to the folder, the file)


def find_files(root: Path) -> list[File]:
    """Every .pdf, .html, .htm and .docx file below `root` (hidden ones left out), by id."""
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.suffix.lower() not in FILE_SUFFIXES or not path.is_file():
            continue
        if not any(part.startswith(".") for part in relative.parts):
            found.append((relative.as_posix(), path))
    return found


def batches(files: list[File]) -> list[list[File]]:
    """Consecutive files, at most BATCH_FILES and (but for a single large one) BATCH_BYTES."""
    out: list[list[File]] = []
    size = 0
    for file in files:
        length = file[1].stat().st_size
        if not out or len(out[-1]) >= BATCH_FILES or size + length > BATCH_BYTES:
            out.append([])
            size = 0
        out[-1].append(file)
        size += length
    return out


def upload_batch(
    client: KBClient, kb: str, batch: list[File], refuse: Callable[[str, str], None]
) -> tuple[int, int]:
    """Upload a batch (all or nothing); if the service refuses it, send the files one by one,
    telling `refuse(id, reason)` of (and leaving out) those it cannot read. (added, already
    there)."""
    if len(batch) > 1:
        try:
            return len(client.upload_files(kb, [p for _, p in batch], [i for i, _ in batch])), 0
        except (Conflict, Invalid, PayloadTooLarge):
            pass  # someone added one meanwhile, or one cannot be read: find which
    added = skipped = 0
    for id, path in batch:
        try:
            client.upload_files(kb, [path], [id])
            added += 1
        except Conflict:
            if not document_exists(client, kb, id):
                raise
            skipped += 1
        except (Invalid, PayloadTooLarge) as error:
            refuse(id, error.message)
    return added, skipped


def import_files(
    client: KBClient,
    kb: str,
    files: list[File],
    console: Console,
    show_progress: bool = True,
) -> ImportReport:
    """Upload what the knowledge base lacks of `files`, with a progress bar of files."""
    started = time.monotonic()
    have = existing_ids(client, kb)
    todo = [file for file in files if file[0] not in have]
    report = ImportReport(skipped=len(files) - len(todo))
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    warn = lambda id, reason: console.print(f"kb: skipped {id}: {reason}")  # noqa: E731
    with Progress(*columns, console=console, disable=not show_progress) as progress:
        task = progress.add_task(f"uploading files into {kb}", total=len(todo))
        for batch in batches(todo):
            added, skipped = upload_batch(client, kb, batch, warn)
            report.added += added
            report.skipped += skipped
            progress.advance(task, len(batch))
    report.seconds = time.monotonic() - started
    return report
