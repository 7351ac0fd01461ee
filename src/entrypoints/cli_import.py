"""`kb import`: add documents in batches, skipping ids already there, with a progress bar."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from kb_client import Conflict, KBClient, NewDocument, NotFound


class RateColumn(ProgressColumn):
    """Documents per second, averaged by rich over the recent updates."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- docs/s" if speed is None else f"{speed:,.1f} docs/s")


@dataclass
class ImportReport:
    added: int = 0
    skipped: int = 0
    seconds: float = 0.0

    def plus(self, other: ImportReport) -> ImportReport:
        """Both imports' counts and time, as one."""
        total = self.added + other.added, self.skipped + other.skipped
        return ImportReport(*total, self.seconds + other.seconds)


def existing_ids(client: KBClient, kb: str) -> set[str]:
    """Ids the knowledge base already holds: these are skipped, which makes imports resumable."""
    return {document["id"] for document in client.iter_documents(kb, page_size=1000)}


def add_batch(client: KBClient, kb: str, batch: list[NewDocument]) -> tuple[int, int]:
    """Add a batch; on 409 (someone added an id meanwhile) add one by one. (added, skipped)."""
    try:
        return len(client.add_documents(kb, batch)), 0
    except Conflict:
        pass
    added = skipped = 0
    for document in batch:
        try:
            client.add_documents(kb, [document])
            added += 1
        except Conflict:
            if not document_exists(client, kb, document["id"]):
                raise  # a conflict other than a taken id, e.g. a model mismatch
            skipped += 1
    return added, skipped


def document_exists(client: KBClient, kb: str, id: str) -> bool:
    try:
        client.get_document(kb, id)
    except NotFound:
        return False
    return True


def import_documents(
    client: KBClient,
    kb: str,
    documents: list[NewDocument],
    batch_size: int,
    console: Console,
    show_progress: bool = True,
) -> ImportReport:
    """Send what the knowledge base lacks, `batch_size` documents per request."""
    started = time.monotonic()
    have = existing_ids(client, kb)
    todo = [document for document in documents if document["id"] not in have]
    report = ImportReport(skipped=len(documents) - len(todo))
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not show_progress) as progress:
        task = progress.add_task(f"importing into {kb}", total=len(todo))
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            added, skipped = add_batch(client, kb, batch)
            report.added += added
            report.skipped += skipped
            progress.advance(task, len(batch))
    report.seconds = time.monotonic() - started
    return report
