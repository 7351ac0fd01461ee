"""Coalescer: texts from concurrent callers share length-sorted, token-budgeted model batches."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from domain.ports import Vectors

Encode = Callable[[list[str]], Vectors]
# Told after each model call: how many texts it encoded and how long it took, in seconds.
BatchObserver = Callable[[int, float], None]


def estimated_tokens(text: str) -> int:
    """About four characters per word piece, plus [CLS] and [SEP]; only used to sort and budget."""
    return len(text) // 4 + 2


@dataclass(eq=False)
class _Job:
    texts: list[str]
    result: Vectors
    taken: int = 0
    remaining: int = 0
    error: BaseException | None = None
    done: bool = False
    rows: list[int] = field(default_factory=list)


class Coalescer:
    """Runs one model batch at a time; whoever finds the model idle runs the next batch for all.

    A caller alone finds the model idle and runs its own texts at once: no timer, no hand-off
    to another thread. Texts that arrive while a batch runs are gathered and go together in the
    next one, at most `max_texts` texts, sorted by length and split so that no model call pads
    past `token_budget` word pieces (texts x longest text). Callers get their own rows, in order.
    """

    def __init__(
        self,
        encode: Encode,
        dimension: int,
        max_texts: int = 64,
        token_budget: int = 32 * 256,
        max_tokens: int = 256,
        size: Callable[[str], int] = estimated_tokens,
        observer: BatchObserver | None = None,
    ) -> None:
        self._encode = encode
        self._observer = observer
        self._dimension = dimension
        self._max_texts = max_texts
        self._token_budget = token_budget
        self._max_tokens = max_tokens
        self._size = size
        self._pending: list[_Job] = []
        self._busy = False
        self._condition = threading.Condition(threading.Lock())
        self.batches_run = 0

    def __call__(self, texts: Sequence[str]) -> Vectors:
        job = _Job(list(texts), np.empty((len(texts), self._dimension), np.float32))
        job.remaining = len(texts)
        if not texts:
            return job.result
        with self._condition:
            self._pending.append(job)
            while not job.done:
                if self._busy:
                    self._condition.wait()
                else:
                    self._lead()
        if job.error is not None:
            raise job.error
        return job.result

    def _lead(self) -> None:
        """Run one batch for everyone; called and returns with the condition held."""
        self._busy = True
        batch = self._take()
        self._condition.release()
        try:
            vectors, error = self._run([text for _, _, text in batch]), None
        except BaseException as failure:  # handed to every caller whose texts were in it
            vectors, error = None, failure
        finally:
            self._condition.acquire()
            self._busy = False
        self.batches_run += 1
        for row, (job, index, _) in enumerate(batch):
            if error is not None:
                job.error, job.done = error, True
            elif vectors is not None:
                job.result[index] = vectors[row]
                job.remaining -= 1
                job.done = job.remaining == 0
        self._pending = [job for job in self._pending if not job.done]
        self._condition.notify_all()

    def _take(self) -> list[tuple[_Job, int, str]]:
        batch: list[tuple[_Job, int, str]] = []
        for job in self._pending:
            while job.taken < len(job.texts) and len(batch) < self._max_texts:
                batch.append((job, job.taken, job.texts[job.taken]))
                job.taken += 1
            if len(batch) == self._max_texts:
                break
        return batch

    def _run(self, texts: list[str]) -> Vectors:
        order = sorted(range(len(texts)), key=lambda i: self._size(texts[i]))
        out = np.empty((len(texts), self._dimension), np.float32)
        for group in self._groups(order, texts):
            started = time.perf_counter()
            out[group] = self._encode([texts[i] for i in group])
            if self._observer is not None:
                self._observer(len(group), time.perf_counter() - started)
        return out

    def _groups(self, order: list[int], texts: list[str]) -> list[list[int]]:
        groups: list[list[int]] = [[]]
        for i in order:
            longest = min(
                self._size(texts[i]), self._max_tokens
            )  # ascending: the newest is longest
            if groups[-1] and (len(groups[-1]) + 1) * longest > self._token_budget:
                groups.append([])
            groups[-1].append(i)
        return groups
