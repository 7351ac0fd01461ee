"""Coalescer: texts from concurrent callers share length-sorted, token-budgeted model batches."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from domain.ports import Vectors

Encode = Callable[[list[str]], Vectors]
# Told after each model call: how many texts it encoded and how long it took, in seconds.
BatchObserver = Callable[[int, float], None]
# A job left out of this many model calls in a row anchors the next one: no caller starves.
MAX_PASSED_OVER = 4


def estimated_tokens(text: str) -> int:
    """About four characters per word piece, plus [CLS] and [SEP]; only used to sort and budget."""
    return len(text) // 4 + 2


@dataclass(eq=False)
class _Job:
    texts: list[str]
    sizes: list[int]
    result: Vectors
    arrival: int
    queue: list[int] = field(default_factory=list)  # untaken rows, shortest first
    remaining: int = 0
    passed_over: int = 0
    error: BaseException | None = None
    done: bool = False


# (size, arrival, row, job): a text of the pool; arrival and row make the key unique.
_Entry = tuple[int, int, int, _Job]


class Coalescer:
    """Runs one model call at a time; whoever finds the model idle runs the next call for all.

    A caller alone finds the model idle and runs its own texts at once: no timer, no hand-off
    to another thread, so its wait budget is zero. Texts that arrive while a call runs wait for
    that call only. Each call is planned over ALL pending texts sorted by length: it is anchored
    on the job with the fewest texts left (a search goes in the very next call, even behind a
    large add; a job passed over `MAX_PASSED_OVER` times goes first), and filled with that
    text's length neighbours up to `max_texts` texts and `token_budget` padded word pieces
    (texts x longest). A large add thus runs shortest-first in full, evenly padded batches,
    as `SentenceTransformer.encode` does. Callers get their own rows, in order.
    """

    def __init__(
        self,
        encode: Encode,
        dimension: int,
        max_texts: int = 32,
        token_budget: int = 32 * 256,
        max_tokens: int = 256,
        size: Callable[[str], int] = estimated_tokens,
        observer: BatchObserver | None = None,
        window: int = 1024,
        max_wait: float = 0.005,
    ) -> None:
        self._encode = encode
        self._observer = observer
        self._dimension = dimension
        self._max_texts = max_texts
        self._token_budget = token_budget
        self._max_tokens = max_tokens
        self._size = size
        self._window = window  # planning looks at each job's shortest `window` untaken texts
        self._max_wait = max_wait
        self._expected = 1  # callers known when the last call ended: who will be back soon
        self._gather_until = 0.0
        self._arrivals = itertools.count()
        self._pending: list[_Job] = []
        self._busy = False
        lock = threading.Lock()
        self._condition = threading.Condition(lock)  # the model is free, or a job is done
        self._arrived = threading.Condition(lock)  # texts arrived for a gathering leader
        self.batches_run = 0

    def __call__(self, texts: Sequence[str]) -> Vectors:
        result = np.empty((len(texts), self._dimension), np.float32)
        if not texts:
            return result
        sizes = [min(self._size(text), self._max_tokens) for text in texts]
        job = _Job(list(texts), sizes, result, next(self._arrivals))
        job.queue = sorted(range(len(texts)), key=sizes.__getitem__)
        job.remaining = len(texts)
        with self._condition:
            self._pending.append(job)
            self._arrived.notify()
            while not job.done:
                if self._busy:
                    self._condition.wait()
                elif (wait := self._wait_left()) > 0:
                    self._arrived.wait(wait)
                else:
                    self._lead()
        if job.error is not None:
            raise job.error
        return job.result

    def _lead(self) -> None:
        """Run one model call for everyone; called and returns with the condition held."""
        self._busy = True
        group = self._take()
        self._condition.release()
        try:
            vectors, error = self._run([entry[3].texts[entry[2]] for entry in group]), None
        except BaseException as failure:  # handed to every caller whose texts were in it
            vectors, error = None, failure
        finally:
            self._condition.acquire()
            self._busy = False
        self.batches_run += 1
        for position, (_, _, row, job) in enumerate(group):
            if error is not None:
                job.error, job.done = error, True
            elif vectors is not None:
                job.result[row] = vectors[position]
                job.remaining -= 1
                job.done = job.remaining == 0
        self._expected = len(self._pending)
        self._gather_until = time.monotonic() + self._max_wait
        self._pending = [job for job in self._pending if not job.done]
        self._condition.notify_all()
        self._arrived.notify_all()

    def _wait_left(self) -> float:
        """Seconds to wait for the callers of the last call to come back, 0 to run now.

        Under concurrency, the callers a call has just served send their next texts a moment
        later: waiting up to `max_wait` after a call for as many callers as it knew of makes
        full batches instead of halves. A lone caller knew of no one else and never waits.
        """
        if self._expected <= len(self._pending):
            return 0.0
        if sum(len(job.queue) for job in self._pending) >= self._max_texts:
            return 0.0
        return self._gather_until - time.monotonic()

    def _take(self) -> list[_Entry]:
        jobs = [job for job in self._pending if job.queue]
        anchor = min(jobs, key=_priority)
        pool: list[_Entry] = sorted(
            (job.sizes[row], job.arrival, row, job)
            for job in jobs
            for row in job.queue[: self._window]
        )
        first = anchor.queue[0]
        start = pool.index((anchor.sizes[first], anchor.arrival, first, anchor))
        low, high = self._neighbours(pool, start)
        group = pool[low:high]
        taken = {(entry[3].arrival, entry[2]) for entry in group}
        for job in jobs:
            head = job.queue[: self._window]
            kept = [row for row in head if (job.arrival, row) not in taken]
            job.passed_over = 0 if len(kept) < len(head) else job.passed_over + 1
            job.queue = kept + job.queue[self._window :]
        return group

    def _neighbours(self, pool: list[_Entry], start: int) -> tuple[int, int]:
        """Grow pool[start] into the slice of like-sized texts that pads the least."""
        low, high, longest = start, start + 1, pool[start][0]
        while high - low < self._max_texts:
            # A shorter text adds its own padding; a longer one pads every text taken so far.
            below = longest - pool[low - 1][0] if low > 0 else None
            above = (pool[high][0] - longest) * (high - low) if high < len(pool) else None
            if below is not None and (above is None or below <= above):
                if (high - low + 1) * longest > self._token_budget:
                    break
                low -= 1
            elif above is not None:
                if (high - low + 1) * pool[high][0] > self._token_budget:
                    break
                longest = pool[high][0]
                high += 1
            else:
                break
        return low, high

    def _run(self, texts: list[str]) -> Vectors:
        started = time.perf_counter()
        vectors = self._encode(texts)
        if self._observer is not None:
            self._observer(len(texts), time.perf_counter() - started)
        return vectors


def _priority(job: _Job) -> tuple[int, int]:
    """Fewest untaken texts first, then the oldest; a job passed over too often jumps ahead."""
    return (0 if job.passed_over >= MAX_PASSED_OVER else len(job.queue), job.arrival)
