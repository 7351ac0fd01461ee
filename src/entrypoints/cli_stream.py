"""`kb import` of a large JSONL file: streamed to the service as one import job.

The file is sent as it is read (never held in memory) and the service imports it as a job,
a batch at a time; the bar follows the job's lines. The service checks every line and
reports the ones it refused by line number, which are this file's line numbers.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from entrypoints.cli_import import RateColumn
from entrypoints.cli_progress import JOB_POLL_SECONDS, bytes_bar
from entrypoints.cli_sources import InputError
from kb_client import Job, KBClient

STREAM_BYTES = 64 * 1024 * 1024  # a JSONL file larger than this is streamed
SHOWN_REFUSALS = 20


def wants_stream(path: Path, forced: bool) -> bool:
    """Whether to stream `path`: asked for (--stream), or a JSONL file over STREAM_BYTES."""
    if forced and not path.is_file():
        raise InputError(f"--stream sends a JSONL file; {path} is not one")
    return forced or (path.is_file() and path.stat().st_size > STREAM_BYTES)


def stream_import(
    client: KBClient, kb: str, path: Path, console: Console, show_progress: bool
) -> int:
    """Import `path` as a job; print what it did and the lines refused; the exit code."""
    started = time.monotonic()
    with bytes_bar(console, f"sending {path.name}", show_progress) as on_upload:
        job = client.import_documents(kb, path, wait=False, on_upload=on_upload)
    job = _follow(client, job, kb, console, show_progress)
    seconds = time.monotonic() - started
    counts = job.get("counts") or {}
    added, replaced = counts.get("added", 0), counts.get("replaced", 0)
    rate = (added + replaced) / seconds if seconds else 0.0
    print(
        f"imported {added} documents into {kb} ({replaced} replaced, {counts.get('unchanged', 0)} "
        f"unchanged, {job.get('refused_count', 0)} lines refused) in {seconds:.1f} s, "
        f"{rate:.1f} docs/s",
        file=sys.stderr,
    )
    for refusal in (job.get("refused") or [])[:SHOWN_REFUSALS]:
        name = f" ({refusal['id']})" if refusal["id"] is not None else ""
        console.print(f"kb: {path}:{refusal['line']}{name}: {refusal['reason']}", soft_wrap=True)
    if job.get("refused_count", 0) > SHOWN_REFUSALS:
        console.print(f"kb: ... GET /v1/jobs/{job['id']} lists up to 1000 refused lines")
    if job["status"] != "succeeded":
        console.print(f"kb: the import {job['status']} after {job['done']} lines: {job['error']}")
        return 1
    return 1 if job.get("refused_count", 0) else 0


def _follow(client: KBClient, job: Job, kb: str, console: Console, enabled: bool) -> Job:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not enabled) as progress:
        task = progress.add_task(f"importing into {kb} (lines)", total=job["total"])

        def show(state: Job) -> None:
            progress.update(task, completed=state["done"], total=state["total"])

        try:
            return client.wait_for_job(job["id"], JOB_POLL_SECONDS, on_progress=show)
        except KeyboardInterrupt:
            client.cancel_job(job["id"])
            console.print(
                f"kb: cancelled job {job['id']}; what it committed stays: run the same import "
                "again to resume",
                soft_wrap=True,
            )
            raise
