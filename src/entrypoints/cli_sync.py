"""`kb sync PATH --kb NAME [--prune] [--dry-run]`: a knowledge base made equal to a folder or
a JSONL file, sending only what changed (kb_client's sync_knowledge_base does the work)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from entrypoints.cli_commands import client_of, ensure_knowledge_base
from entrypoints.cli_files import batches, upload_batch
from entrypoints.cli_sources import InputError
from kb_client import (
    FileSender,
    KBClient,
    NotFound,
    Skipped,
    SourceError,
    SourceFile,
    SyncReport,
    plan_sync,
    read_source,
    sync_knowledge_base,
)
from kb_client.sync import planned

MAX_SKIPPED_LINES = 20  # skipped entries listed one per line; the rest are counted

AddCommand = Callable[..., argparse.ArgumentParser]


def add_sync_command(add: AddCommand) -> None:
    syncing = add(
        "sync",
        "make a knowledge base equal to a folder of .txt/.md files or a JSONL file",
        "Ids are as `kb import` gives them (a file's path relative to the folder; a JSONL "
        "line's id). New documents are added, changed ones replaced, unchanged ones left alone "
        "(nothing is embedded for them). Changed: the text differs, or for JSONL the metadata "
        "(a metadata-only change is not re-embedded). A folder states no metadata: the stored "
        "metadata is kept. .pdf/.html/.docx files are compared by the SHA-256 of their bytes.",
    )
    syncing.add_argument("path", type=Path, help="a folder, or a .jsonl file")
    syncing.add_argument("--kb", required=True, help="knowledge base to sync")
    syncing.add_argument("--create", action="store_true", help="create the knowledge base")
    syncing.add_argument(
        "--prune", action="store_true", help="delete documents the source no longer has"
    )
    syncing.add_argument(
        "--dry-run", action="store_true", help="only print the counts; change nothing"
    )
    syncing.add_argument("--batch-size", type=int, default=64, help="documents per request")
    syncing.set_defaults(handler=sync)


def sync(args: argparse.Namespace) -> int:
    try:
        source = list(read_source(args.path))  # read whole first: a bad line sends nothing
    except SourceError as error:
        raise InputError(str(error)) from None
    with client_of(args) as client:
        try:
            if args.dry_run and args.create and not exists(client, args.kb):
                # What creating it and syncing would do: everything is added.
                report = planned(plan_sync([], source, files=file_sender(client) is not None), True)
            else:
                ensure_knowledge_base(client, args.kb, args.create and not args.dry_run)
                report = sync_knowledge_base(
                    client,
                    args.kb,
                    source,
                    prune=args.prune,
                    dry_run=args.dry_run,
                    send_files=file_sender(client),
                    batch_size=args.batch_size,
                )
        except ValueError as error:  # an id twice in the source
            raise InputError(str(error)) from None
    print_report(args.kb, args.path, report)
    return 0


def exists(client: KBClient, kb: str) -> bool:
    try:
        client.get_knowledge_base(kb)
    except NotFound:
        return False
    return True


def file_sender(client: KBClient) -> FileSender | None:
    """How .pdf/.html/.docx files reach the service: its files endpoint, as `kb import` sends
    them (a few per request); a file it cannot read is skipped with a warning."""

    def send(kb: str, files: Sequence[SourceFile]) -> list[Skipped]:
        refused: list[Skipped] = []
        for batch in batches([(file.id, file.path) for file in files]):
            upload_batch(client, kb, batch, lambda id, reason: refused.append(Skipped(id, reason)))
        return refused

    return send


def print_report(kb: str, path: Path, report: SyncReport) -> None:
    mode = " (dry run: nothing changed)" if report.dry_run else ""
    print(f"sync {path} -> {kb}{mode}: {report.summary()} in {report.seconds:.1f} s")
    for skipped in report.skipped[:MAX_SKIPPED_LINES]:
        print(f"  skipped {skipped.id}: {skipped.reason}", file=sys.stderr)
    if len(report.skipped) > MAX_SKIPPED_LINES:
        print(f"  ... and {len(report.skipped) - MAX_SKIPPED_LINES} more", file=sys.stderr)
