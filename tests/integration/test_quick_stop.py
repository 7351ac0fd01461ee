"""Ctrl-C (SIGINT) and SIGQUIT stop a gunicorn worker at once, wherever its main thread is."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from gunicorn.workers.gthread import ThreadWorker

from entrypoints import gunicorn_config


@pytest.fixture
def restored_signals() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGQUIT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def quit_while_the_pool_lock_is_held(handler, worker) -> list[object]:
    """Run `handler` as if the signal landed inside `tpool.submit()` (which holds that lock)."""
    outcome: list[object] = []

    def deliver() -> None:
        try:
            handler(signal.SIGINT, None)
        except SystemExit as stop:
            outcome.append(stop.code)
        except Exception as error:  # a stand-in worker is no real ThreadWorker: once unblocked
            outcome.append(error)

    with worker.tpool._shutdown_lock:
        thread = threading.Thread(target=deliver, daemon=True)
        thread.start()
        thread.join(timeout=5)
    return outcome


def gthread_worker() -> SimpleNamespace:
    return SimpleNamespace(
        alive=True, tpool=ThreadPoolExecutor(1), cfg=SimpleNamespace(worker_int=lambda w: None)
    )


def test_gunicorns_own_quick_stop_waits_for_the_lock_the_interrupted_code_holds():
    """The bug (CPython #121649 via gthread's handle_quit): the stop never finishes."""
    worker = gthread_worker()
    handler = lambda sig, frame: ThreadWorker.handle_quit(worker, sig, frame)  # noqa: E731
    assert quit_while_the_pool_lock_is_held(handler, worker) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT])
def test_a_quick_stop_ends_the_worker_even_inside_the_thread_pool(sig, restored_signals):
    worker = gthread_worker()
    gunicorn_config.post_worker_init(worker)
    assert quit_while_the_pool_lock_is_held(signal.getsignal(sig), worker) == [0]
    assert worker.alive is False
