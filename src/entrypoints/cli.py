"""The `kb` command: `kb serve` runs the service under gunicorn; `kb download-model` fetches it."""

from __future__ import annotations

import argparse
import os
import sys


def serve(args: argparse.Namespace) -> int:
    if args.host:
        os.environ["KB_HOST"] = args.host
    if args.port:
        os.environ["KB_PORT"] = str(args.port)
    command = [sys.executable, "-m", "gunicorn", "--config", "python:entrypoints.gunicorn_config"]
    os.execv(sys.executable, command)
    return 0  # not reached: execv replaces this process


def download_model(args: argparse.Namespace) -> int:
    """Fetch KB_EMBEDDING_MODEL into the local cache (the Docker build runs this)."""
    from domain.errors import ModelUnavailableError
    from entrypoints.container import Container
    from entrypoints.settings import Settings, SettingsError

    try:
        container = Container()
        container.config.from_dict(Settings.from_env().as_dict())
        embedder = container.embedder()
    except (ModelUnavailableError, SettingsError) as error:
        print(f"kb: {getattr(error, 'message', error)}", file=sys.stderr)
        return 1
    (vector,) = embedder.embed(["This is an example sentence"])
    print(
        f"{embedder.model_name}: {embedder.dimension} dimensions, "
        f"max_seq_length {embedder.max_seq_length}, "
        f"first values {', '.join(f'{value:.7f}' for value in vector[:3])}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kb", description="kb-service command line")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve", help="run the HTTP service under gunicorn (settings from KB_* variables)"
    )
    serve_parser.add_argument("--host", help="address to bind (default KB_HOST or 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port (default KB_PORT or 8000)")
    serve_parser.set_defaults(handler=serve)
    download = commands.add_parser(
        "download-model", help="fetch KB_EMBEDDING_MODEL into the local cache and check it"
    )
    download.set_defaults(handler=download_model)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
