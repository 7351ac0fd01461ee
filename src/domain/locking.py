"""A phase-fair readers-writer lock: searches share a knowledge base, writes have it alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadWriteLock:
    """Many readers or one writer, in alternating phases so that neither side starves.

    A waiting writer holds new readers back, so writes never wait for an endless stream of
    searches. When a writer releases, every reader that was waiting then gets in before the
    next writer does, so back-to-back writers cannot hold searches (or an export) off either:
    a reader waits at most for the writers ahead of it in one phase.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._readers_waiting = 0
        self._releases = 0  # how many times a writer released: the phase number
        self._admitted = 0  # readers let in by the last release that have not entered yet

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._condition:
            arrived = self._releases
            self._readers_waiting += 1
            try:
                # Admitted once a writer released after this reader came, writers waiting or not.
                while self._writer or (self._writers_waiting and self._releases == arrived):
                    self._condition.wait()
            finally:
                self._readers_waiting -= 1
                if self._releases != arrived and self._admitted:
                    self._admitted -= 1
                    if not self._admitted:
                        self._condition.notify_all()
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                if self._readers == 0:
                    self._condition.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._condition:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers or self._admitted:
                    self._condition.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._condition:
                self._writer = False
                self._releases += 1
                # The readers waiting now form the next phase: writers wait until they are in.
                self._admitted = self._readers_waiting
                self._condition.notify_all()
