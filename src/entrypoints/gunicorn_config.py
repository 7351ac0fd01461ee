"""gunicorn settings from KB_* variables: gthread workers, and the one-worker rule of `memory`."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from entrypoints.settings import Settings, SettingsError

try:
    _settings = Settings.from_env()
except SettingsError as error:
    sys.exit(f"kb-service: {error}")

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "gthread"
threads = _settings.threads
timeout = _settings.timeout
# SIGTERM: workers stop accepting, finish in-flight requests for up to this long, then exit.
graceful_timeout = 30
loglevel = _settings.log_level
# No gunicorn access log: the app writes one JSON line per request (entrypoints/request_log.py).
accesslog = None
errorlog = "-"
wsgi_app = "entrypoints.wsgi:app"


def on_starting(server: Any) -> None:
    """Refuse to start when the setup cannot work, with a message instead of a traceback."""
    if _settings.backend == "memory" and server.cfg.workers != 1:
        sys.exit(
            f"kb-service: {server.cfg.workers} workers requested, but the memory backend keeps "
            "every knowledge base in one process's RAM: each worker would hold a different copy "
            "and answer differently. Run one worker (KB_WORKERS=1) with more threads (KB_THREADS)."
        )
    # Resolve the model in the master, before any worker starts: a model that cannot be found
    # stops the server within seconds with a readable message instead of a crash loop.
    _reset_metrics_folder()
    from domain.errors import ModelUnavailableError, StorageError
    from entrypoints.container import Container, resolve_model

    try:
        resolve_model(_settings.embedding_model)
        # A foreign or newer store stops start-up here; PostgreSQL's schema is migrated once.
        Container(settings=_settings).check_storage()
    except (ModelUnavailableError, StorageError) as error:
        sys.exit(f"kb-service: {error.message}")


def post_worker_init(worker: Any) -> None:
    """Ctrl-C (SIGINT) and SIGQUIT end the worker at once without gthread's own quit handler.

    That handler shuts the request thread pool down from inside the signal handler; when the
    signal lands while the main thread is in `tpool.submit()`, which holds the pool's lock, the
    shutdown waits for that lock for ever (CPython issue 121649) and gunicorn kills the worker
    after `graceful_timeout`. Exiting is enough: at exit Python joins the pool's threads itself.
    """
    from gunicorn.workers.base import Worker

    def quit_at_once(sig: int, frame: Any) -> None:
        Worker.handle_quit(worker, sig, frame)  # alive = False, worker_int hook, sys.exit(0)

    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, quit_at_once)


def _reset_metrics_folder() -> None:
    """Several workers share metrics through files in PROMETHEUS_MULTIPROC_DIR: start it empty."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):
            stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """A stopped worker's live gauges must not linger in the shared metrics files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def worker_exit(server: Any, worker: Any) -> None:
    """Close the store cleanly when a worker stops (SIGTERM, max requests, shutdown)."""
    app = getattr(worker, "wsgi", None)
    if app is not None and hasattr(app, "extensions"):
        from entrypoints.app import close_app

        close_app(app)
