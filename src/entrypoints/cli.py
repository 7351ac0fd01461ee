"""The `kb` command: serve the API, fetch the model, and use a running service via kb_client."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from entrypoints import cli_commands as commands
from entrypoints.cli_archive import add_archive_commands
from entrypoints.cli_sources import InputError
from entrypoints.cli_sync import add_sync_command
from kb_client import KBConnectionError, KBError

EXIT_CODES = """exit codes:
  0  done
  1  the service refused (unknown knowledge base, taken name, invalid input, ...)
  2  bad command line or unreadable input file
  3  the service could not be reached
  130  interrupted (`kb import` resumes where it stopped when run again;
       `kb restore` and `kb copy` cancel their restore)
  141  the reader of the output went away (`kb export | head`)"""


def serve(args: argparse.Namespace) -> int:
    if args.host:
        os.environ["KB_HOST"] = args.host
    if args.port:
        os.environ["KB_PORT"] = str(args.port)
    command = [sys.executable, "-m", "gunicorn", "--config", "python:entrypoints.gunicorn_config"]
    os.execv(sys.executable, command)
    return 0  # not reached: execv replaces this process


def download_model(args: argparse.Namespace) -> int:
    """Fetch KB_EMBEDDING_MODEL into the local cache, and export it for ONNX Runtime when that is
    the runtime (the Docker build runs this, so the container starts at once)."""
    from domain.errors import ModelUnavailableError
    from entrypoints.container import Container
    from entrypoints.settings import Settings, SettingsError

    try:
        embedder = Container(settings=Settings.from_env()).embedder()
    except (ModelUnavailableError, SettingsError) as error:
        print(f"kb: {getattr(error, 'message', error)}", file=sys.stderr)
        return 1
    (vector,) = embedder.embed(["This is an example sentence"])
    print(
        f"{embedder.model_name} (fingerprint {embedder.fingerprint[:12]}): "
        f"{embedder.dimension} dimensions, "
        f"max_seq_length {embedder.max_seq_length}, "
        f"first values {', '.join(f'{value:.7f}' for value in vector[:3])}"
    )
    return 0


def add_service_commands(commands_: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve_parser = commands_.add_parser(
        "serve",
        help="run the HTTP service under gunicorn (settings from KB_* variables)",
        description="Run the HTTP service under gunicorn; settings come from KB_* variables.",
    )
    serve_parser.add_argument("--host", help="address to bind (default KB_HOST or 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port (default KB_PORT or 8000)")
    serve_parser.set_defaults(handler=serve)
    download = commands_.add_parser(
        "download-model",
        help="fetch KB_EMBEDDING_MODEL into the local cache (and its ONNX export) and check it",
        description="Fetch KB_EMBEDDING_MODEL into the local cache, make its ONNX export when "
        "KB_EMBEDDING_RUNTIME is auto or onnx, and embed one sentence.",
    )
    download.set_defaults(handler=download_model)


AddCommand = Callable[..., argparse.ArgumentParser]


def add_client_commands(commands_: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    connection = [commands.connection_options()]

    def add(name: str, summary: str, details: str = "") -> argparse.ArgumentParser:
        return commands_.add_parser(
            name,
            parents=connection,
            help=summary,
            description=f"{summary[0].upper()}{summary[1:]}. {details}".strip(),
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    for adding in (
        _create_and_list,
        _import,
        _search,
        _export,
        add_archive_commands,
        add_sync_command,
    ):
        adding(add)


def _create_and_list(add: AddCommand) -> None:
    create = add("create", "create a knowledge base")
    create.add_argument("name", help="1-64 of a-z 0-9 . _ -, starting with a letter or digit")
    create.add_argument("--description", help="what the knowledge base holds")
    create.add_argument("--metadata", type=commands.json_object, help="JSON object")
    create.add_argument(
        "--chunking",
        choices=["window", "truncate"],
        help="long texts: overlapping windows (default) or the first window only",
    )
    create.add_argument("--chunk-overlap", type=int, help="tokens shared by adjacent windows")
    create.set_defaults(handler=commands.create)

    listing = add("list", "list knowledge bases with their document and chunk counts")
    listing.set_defaults(handler=commands.list_knowledge_bases)

    info = add("info", "show the service's model and fingerprint, or a knowledge base's")
    info.add_argument("--kb", help="the knowledge base to describe instead of the service")
    info.set_defaults(handler=commands.info)


def _import(add: AddCommand) -> None:
    importing = add(
        "import",
        "add a folder of .txt/.md/.pdf/.html/.docx files or a JSONL file, resumably",
        "In a folder, every .txt/.md file is a document whose id is its relative path; .pdf, "
        ".html/.htm and .docx files go through the service's file upload, which extracts their "
        "text (same ids; unreadable ones are skipped with a warning). A JSONL "
        'file has one {"id", "text", "metadata"?} object per line, as `kb export` writes. Ids '
        "the knowledge base already holds are skipped, so an interrupted import resumes when "
        "run again.",
    )
    importing.add_argument("path", type=Path, help="a folder, or a .jsonl file")
    importing.add_argument("--kb", required=True, help="knowledge base to add to")
    importing.add_argument("--create", action="store_true", help="create the knowledge base")
    importing.add_argument("--batch-size", type=int, default=64, help="documents per request")
    importing.add_argument("--no-progress", action="store_true", help="no progress bar")
    importing.add_argument(
        "--stream",
        action="store_true",
        help="send a .jsonl file as one streamed import job (automatic above 64 MiB): ids "
        "that exist are replaced if changed; refused lines are listed with their numbers",
    )
    importing.set_defaults(handler=commands.import_)


def _search(add: AddCommand) -> None:
    searching = add("search", "find the documents most similar to a text")
    searching.add_argument("text", help="the query text")
    searching.add_argument("--kb", required=True, help="knowledge base to search")
    searching.add_argument("--top-k", type=int, default=10, help="hits to return (default 10)")
    searching.add_argument("--min-score", type=float, help="drop hits scoring below this")
    searching.add_argument(
        "--filter", type=commands.json_object, help='metadata filter, e.g. \'{"lang": "en"}\''
    )
    searching.add_argument("--hybrid", action="store_true", help="fuse with keyword (BM25) rank")
    searching.add_argument(
        "--explain", action="store_true", help="show each hit's dense and keyword score and rank"
    )
    searching.add_argument("--diversity", type=float, help="0..1, skip near-duplicates (MMR)")
    searching.add_argument(
        "--exact", action="store_true", help="compare with every vector, even on a large KB"
    )
    searching.add_argument("--json", action="store_true", help="print the hits as JSON")
    searching.set_defaults(handler=commands.search)


def _export(add: AddCommand) -> None:
    exporting = add(
        "export",
        "write a knowledge base's documents as JSONL",
        'One {"id", "text", "metadata"} object per line, in id order; `kb import` reads it back '
        "exactly. Vectors are not exported: the HTTP API does not serve them, and an import "
        "re-embeds the texts with the service's model.",
    )
    exporting.add_argument("--kb", required=True, help="knowledge base to export")
    exporting.add_argument("--out", type=Path, help="file to write (default: standard output)")
    exporting.set_defaults(handler=commands.export)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="kb",
        description="kb-service: run it, and create, import, search, export, back up, restore and "
        "copy knowledge bases.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subcommands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_service_commands(subcommands)
    add_client_commands(subcommands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KBConnectionError as error:
        print(
            f"kb: {error.message}\nkb: is `kb serve` running? Set --url or KB_URL.", file=sys.stderr
        )
        return 3
    except KBError as error:
        print(f"kb: {error}{field_errors(error)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return broken_pipe()
    except (InputError, OSError) as error:
        print(f"kb: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kb: interrupted", file=sys.stderr)
        return 130


def broken_pipe() -> int:
    """The reader of our output went away (`kb export | head`): stop quietly, as `seq` does.

    Python would otherwise complain again when it flushes stdout at exit, so stdout is pointed
    at /dev/null first (the recipe in Python's signal module documentation).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + signal.SIGPIPE


def field_errors(error: KBError) -> str:
    return f"\nkb: {json.dumps(error.errors)}" if error.errors else ""


if __name__ == "__main__":
    raise SystemExit(main())
