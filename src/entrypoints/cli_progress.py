"""Progress bars of the archive commands: bytes moving, then a job running on the service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from kb_client import Job, KBClient

JOB_POLL_SECONDS = 0.25
ByteProgress = Callable[[int, int | None], None]


@contextmanager
def bytes_bar(console: Console, label: str, enabled: bool) -> Iterator[ByteProgress]:
    """A bar of bytes moved; yields the `on_progress(done, total)` the client calls."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not enabled) as progress:
        task = progress.add_task(label, total=None)

        def advance(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


def follow_job(client: KBClient, job: Job, console: Console, label: str, enabled: bool) -> Job:
    """Wait for `job` with a bar of its `done` of `total`; return it finished.

    Interrupted (Ctrl-C), it asks the service to cancel the job, which then removes what it
    had made, and says so before the interruption goes on.
    """
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not enabled) as progress:
        task = progress.add_task(label, total=job["total"])

        def show(state: Job) -> None:
            progress.update(task, completed=state["done"], total=state["total"])

        try:
            return client.wait_for_job(job["id"], JOB_POLL_SECONDS, on_progress=show)
        except KeyboardInterrupt:
            client.cancel_job(job["id"])
            console.print(
                f"kb: cancelled job {job['id']}; the service removes what it made", soft_wrap=True
            )
            raise
