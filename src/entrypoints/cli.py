"""The `kb` command: `kb serve` runs the service under gunicorn with kb-service's settings."""

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kb", description="kb-service command line")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve", help="run the HTTP service under gunicorn (settings from KB_* variables)"
    )
    serve_parser.add_argument("--host", help="address to bind (default KB_HOST or 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port (default KB_PORT or 8000)")
    serve_parser.set_defaults(handler=serve)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
