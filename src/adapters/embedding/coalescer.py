"""Coalescer: texts from concurrent callers share length-sorted, token-budgeted model batches.

The engine of `CoalescingEmbedder` (no port of its own): model threads, waiting and hand-back
here; which texts go in each call in `batch_plan`.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from adapters.embedding.batch_plan import Budget, Entry, Job, estimated_tokens, take
from domain.ports import Vectors

log = logging.getLogger(__name__)

Encode = Callable[[list[str]], Vectors]
# Told after each model call: how many texts it encoded and how long it took, in seconds.
BatchObserver = Callable[[int, float], None]
# With a known call overhead, pending texts of at least this many times it run without waiting.
WORTH_A_CALL = 4


class Coalescer:
    """Runs every model call on model threads of its own, for all callers' texts at once.

    Callers queue their texts and sleep; each of the `parallel` model threads runs one call at
    a time. Always the same threads: torch's OpenMP pool belongs to the thread that calls it,
    and handing the model from one request thread to the next cost a third of its throughput
    (docs/performance.md), so torch gets one model thread; a runtime
    that can run calls side by side (ONNX Runtime) gets one per core. A caller alone wakes a
    model thread, which runs its texts at once: its wait budget is two thread wake-ups. Texts
    that arrive while every model thread is busy wait for the first call to end. Each call is
    planned (`batch_plan.take`) over ALL untaken texts sorted by length: it is anchored
    on the job with the fewest texts left (a search goes in the very next call, even behind a
    large add; a job passed over `MAX_PASSED_OVER` times goes first), and filled with that
    text's length neighbours up to `max_texts` texts and `token_budget` padded word pieces
    (texts x longest). A large add thus runs shortest-first in full, evenly padded batches,
    as `SentenceTransformer.encode` does, on every model thread at once. With `call_overhead`
    (what a call costs beyond its texts, in padded word pieces) the anchor's neighbourhood is
    split into the cheapest calls instead: sixteen single texts of mixed lengths from
    concurrent clients go as two or three evenly padded calls rather than one padded to the
    longest. Callers get their own rows, in order. When a call ends with no texts left and no
    other call running, that model thread runs `on_idle` (after its callers have their rows):
    the place to give back the working memory of the burst just served. A model thread ends
    after `idle_exit` seconds without work; callers start them again when needed.
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
        idle_exit: float = 60.0,
        call_overhead: int | None = None,
        parallel: int = 1,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self._encode = encode
        self._on_idle = on_idle
        self._running = 0  # model calls under way
        self._observer = observer
        self._dimension = dimension
        self._budget = Budget(max_texts, token_budget, window, call_overhead)
        self._max_tokens = max_tokens
        self._size = size
        self._max_wait = max_wait
        self._idle_exit = idle_exit
        self._parallel = max(1, parallel)
        self._workers: list[threading.Thread] = []
        self._expected = 1  # callers known when the last call ended: who will be back soon
        self._gather_until = 0.0
        self._arrivals = itertools.count()
        self._pending: list[Job] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # texts arrived for the model thread
        self.batches_run = 0

    def __call__(self, texts: Sequence[str]) -> Vectors:
        result = np.empty((len(texts), self._dimension), np.float32)
        if not texts:
            return result
        sizes = [min(self._size(text), self._max_tokens) for text in texts]
        job = Job(list(texts), sizes, result, next(self._arrivals))
        job.queue = sorted(range(len(texts)), key=sizes.__getitem__)
        job.remaining = len(texts)
        with self._lock:
            self._pending.append(job)
            self._arrived.notify()
            self._workers = [worker for worker in self._workers if worker.is_alive()]  # forked
            while len(self._workers) < self._parallel:
                worker = threading.Thread(target=self._serve, name="kb-model", daemon=True)
                self._workers.append(worker)
                worker.start()
        job.finished.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def _serve(self) -> None:
        """A model thread: run calls while texts are untaken; end when idle for long."""
        with self._lock:
            try:
                while True:
                    if not self._untaken():
                        if not self._arrived.wait(self._idle_exit) and not self._untaken():
                            return
                    elif (wait := self._wait_left()) > 0:
                        self._arrived.wait(wait)
                    else:
                        self._lead()
            except BaseException as failure:  # a bug here must not leave callers asleep forever
                for job in self._pending:
                    job.error = failure
                    job.finished.set()
                self._pending = []
                log.exception("the model thread failed; the next caller starts a new one")
            finally:
                current = threading.current_thread()  # the next caller starts a new thread
                self._workers = [worker for worker in self._workers if worker is not current]

    def _lead(self) -> None:
        """Run one model call for everyone; called and returns with the lock held."""
        group = self._take()
        if self._untaken():  # texts left over: an idle model thread can run them meanwhile
            self._arrived.notify()
        self._running += 1
        self._lock.release()
        try:
            vectors, error = self._run([entry[3].texts[entry[2]] for entry in group]), None
        except BaseException as failure:  # handed to every caller whose texts were in it
            vectors, error = None, failure
        finally:
            self._lock.acquire()
            self._running -= 1
        self.batches_run += 1
        served = {entry[3] for entry in group}
        for position, (_, _, row, job) in enumerate(group):
            if error is not None:
                job.error = error
                job.finished.set()
            elif vectors is not None:
                job.result[row] = vectors[position]
                job.remaining -= 1
                if not job.remaining:
                    job.finished.set()
        # Who will be back soon: the callers just served and those still waiting, not the
        # callers whose texts another model thread is running.
        self._expected = sum(1 for job in self._pending if job.queue or job in served)
        self._gather_until = time.monotonic() + self._max_wait
        self._pending = [job for job in self._pending if not job.finished.is_set()]
        if self._on_idle is not None and not self._running and not self._untaken():
            self._idle()

    def _idle(self) -> None:
        """Run `on_idle` outside the lock; its failure is logged, no caller waits for it."""
        assert self._on_idle is not None
        self._lock.release()
        try:
            self._on_idle()
        except Exception:
            log.exception("the coalescer's on_idle hook failed")
        finally:
            self._lock.acquire()

    def _wait_left(self) -> float:
        """Seconds to wait for the callers of the last call to come back, 0 to run now.

        Under concurrency, the callers a call has just served send their next texts a moment
        later: waiting up to `max_wait` after a call for as many callers as it knew of makes
        full batches instead of halves. A lone caller knew of no one else and never waits.
        With a `call_overhead`, texts that already make it a small part of a call's cost run
        at once: waiting only pays where a call's fixed cost is high.
        """
        waiting = self._untaken()
        if self._expected <= len(waiting):
            return 0.0
        if sum(len(job.queue) for job in waiting) >= self._budget.max_texts:
            return 0.0
        if self._budget.call_overhead is not None:
            tokens = sum(job.sizes[row] for job in waiting for row in job.queue)
            if tokens >= WORTH_A_CALL * self._budget.call_overhead:
                return 0.0
        return self._gather_until - time.monotonic()

    def _untaken(self) -> list[Job]:
        """Jobs with texts no model thread has taken yet."""
        return [job for job in self._pending if job.queue]

    def _take(self) -> list[Entry]:
        return take(self._untaken(), self._budget)

    def _run(self, texts: list[str]) -> Vectors:
        started = time.perf_counter()
        vectors = self._encode(texts)
        if self._observer is not None:
            self._observer(len(texts), time.perf_counter() - started)
        return vectors
