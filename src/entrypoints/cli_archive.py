"""`kb backup`, `kb restore` and `kb copy`: knowledge base archives, only through kb_client."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.filesize import decimal

from entrypoints.cli_commands import client_of, stderr
from entrypoints.cli_progress import bytes_bar, follow_job
from entrypoints.cli_sources import InputError
from kb_client import Job, KBClient, KBError

SUFFIX = ".kbar"
MAX_MANIFEST_BYTES = 1 << 20


def backup(args: argparse.Namespace) -> int:
    """One knowledge base to --out (a file, or - for standard output), or --all into a folder."""
    console = stderr()
    with client_of(args) as client:
        if args.all:
            if str(args.out) == "-":
                raise InputError("--all writes one file per knowledge base: --out is a folder")
            return backup_all(client, args.out or Path("."), console, not args.no_progress)
        out = args.out or Path(args.kb + SUFFIX)
        if out.is_dir():
            out = out / (args.kb + SUFFIX)
        target = sys.stdout.buffer if str(out) == "-" else out
        size = download(client, args.kb, target, console, not args.no_progress)
    where = "standard output" if str(out) == "-" else str(out)
    say(f"backed up {args.kb} to {where} ({decimal(size)})")
    return 0


def backup_all(client: KBClient, folder: Path, console: Console, progress: bool) -> int:
    """`<name>.kbar` per knowledge base; one that fails is reported and the rest go on."""
    folder.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    names = [kb["name"] for kb in client.iter_knowledge_bases()]
    for name in names:
        path = folder / (name + SUFFIX)
        try:
            size = download(client, name, path, console, progress)
        except KBError as error:
            if error.status == 0:
                raise  # the service is gone: the rest would fail the same way
            say(f"kb: {name}: {error}")
            failed.append(name)
            continue
        say(f"backed up {name} to {path} ({decimal(size)})")
    done = len(names) - len(failed)
    say(f"backed up {done} of {len(names)} knowledge bases into {folder}")
    return 1 if failed else 0


def say(message: str) -> None:
    """A result line on standard error, unwrapped (rich's console would fold long paths)."""
    print(message, file=sys.stderr)


def download(client: KBClient, kb: str, target: Any, console: Console, progress: bool) -> int:
    with bytes_bar(console, f"backing up {kb}", progress) as on_progress:
        return client.download_archive(kb, target, on_progress)


def restore(args: argparse.Namespace) -> int:
    """Upload an archive, then follow the restore job to its end."""
    path: Path = args.file
    name = args.as_name or archive_name(path)
    console = stderr()
    progress = not args.no_progress
    with client_of(args) as client:
        with bytes_bar(console, f"uploading {path.name}", progress) as on_progress:
            job = client.restore_archive(name, path, args.reembed, on_progress=on_progress)
        job = follow_job(client, job, console, f"restoring {name}", progress)
        return finish(client, job, name, f"restored {name} from {path}")


def copy(args: argparse.Namespace) -> int:
    """Pipe one service's archive of --kb into another's restore, then follow that job."""
    name = args.as_name or args.kb
    console = stderr()
    progress = not args.no_progress
    target = KBClient(args.to, args.to_api_key, retries=args.retries, timeout=args.timeout)
    with client_of(args) as source, target:
        with bytes_bar(console, f"copying {args.kb}", progress) as on_progress:
            job = source.copy_knowledge_base(args.kb, target, name, args.reembed, on_progress)
        job = follow_job(target, job, console, f"restoring {name} at {target.url}", progress)
        done = f"copied {args.kb} from {source.url} to {target.url} as {name}"
        return finish(target, job, name, done)


def finish(client: KBClient, job: Job, name: str, done: str) -> int:
    """Say how the job ended: 0 when it succeeded, 1 when it failed or was cancelled."""
    if job["status"] != "succeeded":
        reason = f": {job['error']}" if job.get("error") else ""
        say(f"kb: restoring {name} {job['status']}{reason}")
        return 1
    kb = client.get_knowledge_base(name)
    counts = f"{kb['document_count']} documents, {kb['chunk_count']} chunks"
    say(f"{done} ({counts})")
    return 0


def archive_name(path: Path) -> str:
    """The knowledge base's name in the archive's manifest, its first tar member, read here.

    The service checks the whole archive; this reads only enough to name what to restore, and
    refuses (exit 2) a file that is no archive at all before anything is sent.
    """
    manifest = read_manifest(path)
    name = manifest.get("knowledge_base", {}).get("name") if isinstance(manifest, dict) else None
    if not isinstance(name, str) or not name:
        raise InputError(f"{path}: manifest.json names no knowledge base; pass --as NAME")
    return name


def read_manifest(path: Path) -> Any:
    try:
        with tarfile.open(path, "r|*") as tar:  # "r|*": a stream, gzip/bzip2/xz taken too
            member = tar.next()
            if member is None or member.name != "manifest.json" or not member.isfile():
                found = "nothing" if member is None else repr(member.name)
                raise InputError(
                    f"{path}: not a knowledge base archive (its first member is {found}, "
                    "not manifest.json)"
                )
            if member.size > MAX_MANIFEST_BYTES:
                raise InputError(f"{path}: manifest.json is over {MAX_MANIFEST_BYTES} bytes")
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
        return json.loads(data)
    except (tarfile.TarError, EOFError) as error:
        raise InputError(f"{path}: not a knowledge base archive ({error})") from None
    except ValueError as error:
        raise InputError(f"{path}: manifest.json is not JSON ({error})") from None


AddCommand = Callable[..., argparse.ArgumentParser]


def add_archive_commands(add: AddCommand) -> None:
    backing_up = add(
        "backup",
        "write knowledge bases to archives, vectors included",
        "An archive (docs/archive.md) holds a knowledge base's settings, documents and "
        "vectors, a consistent snapshot taken while writes go on; `kb restore` reads it back "
        "without re-embedding.",
    )
    which = backing_up.add_mutually_exclusive_group(required=True)
    which.add_argument("--kb", metavar="NAME", help="the knowledge base to back up")
    which.add_argument("--all", action="store_true", help=f"every one, as <name>{SUFFIX}")
    backing_up.add_argument(
        "--out",
        type=Path,
        help=f"--kb: the file (default <name>{SUFFIX}; - for standard output); "
        "--all: the folder (default: the current one)",
    )
    backing_up.add_argument("--no-progress", action="store_true", help="no progress bar")
    backing_up.set_defaults(handler=backup)
    _restore(add)
    _copy(add)


def _restore(add: AddCommand) -> None:
    restoring = add(
        "restore",
        "create a knowledge base from an archive",
        "The service checks the whole archive and makes the knowledge base all at once, or "
        "not at all. With the model that made the archive the vectors are used as they are; "
        "with another model it needs --reembed. Ctrl-C cancels the restore.",
    )
    restoring.add_argument("file", type=Path, help=f"an archive from `kb backup` ({SUFFIX})")
    restoring.add_argument(
        "--as",
        dest="as_name",
        metavar="NAME",
        help="name to restore it as (default: the name it was saved as)",
    )
    _reembed_and_progress(restoring)
    restoring.set_defaults(handler=restore)


def _copy(add: AddCommand) -> None:
    copying = add(
        "copy",
        "copy a knowledge base to another running service, vectors included",
        "Pipes --url's archive of --kb into --to's restore, e.g. from the embedded default "
        "to a PostgreSQL deployment; nothing is stored on the way. Ctrl-C cancels the restore.",
    )
    copying.add_argument("--kb", required=True, metavar="NAME", help="the knowledge base to copy")
    copying.add_argument(
        "--to", required=True, metavar="URL", help="the base URL of the service to copy to"
    )
    copying.add_argument(
        "--to-api-key",
        metavar="KEY",
        default=os.environ.get("KB_TO_API_KEY") or None,
        help="API key of the service copied to (default: KB_TO_API_KEY)",
    )
    copying.add_argument(
        "--as", dest="as_name", metavar="NAME", help="name to give it there (default: --kb)"
    )
    _reembed_and_progress(copying)
    copying.set_defaults(handler=copy)


def _reembed_and_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reembed",
        action="store_true",
        help="re-embed the texts with the service's model if another model made the archive",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
