"""Which pending texts go in the next model call: the coalescer's planning (no port of its own).

Pure bookkeeping over the callers' jobs; `coalescer` runs the calls it plans.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field

from domain.ports import Vectors

# A job left out of this many model calls in a row anchors the next one: no caller starves.
MAX_PASSED_OVER = 4


def estimated_tokens(text: str) -> int:
    """About four characters per word piece, plus [CLS] and [SEP]; only used to sort and budget."""
    return len(text) // 4 + 2


@dataclass(eq=False)
class Job:
    """One caller's texts, their estimated sizes and its result, filled row by row."""

    texts: list[str]
    sizes: list[int]
    result: Vectors
    arrival: int
    queue: list[int] = field(default_factory=list)  # untaken rows, shortest first
    remaining: int = 0
    passed_over: int = 0
    error: BaseException | None = None
    finished: threading.Event = field(default_factory=threading.Event)  # wakes only its caller


# (size, arrival, row, job): a text of the pool; arrival and row make the key unique.
Entry = tuple[int, int, int, Job]


@dataclass(frozen=True)
class Budget:
    """What one call may hold, and what it costs beyond its texts (None: fill calls instead)."""

    max_texts: int
    token_budget: int
    window: int  # planning looks at each job's shortest `window` untaken texts
    call_overhead: int | None


def take(jobs: list[Job], budget: Budget) -> list[Entry]:
    """Plan the next call over `jobs` (each with untaken texts) and take its texts from them."""
    anchor = min(jobs, key=_priority)
    pool: list[Entry] = sorted(
        (job.sizes[row], job.arrival, row, job)
        for job in jobs
        for row in job.queue[: budget.window]
    )
    first = anchor.queue[0]
    start = pool.index((anchor.sizes[first], anchor.arrival, first, anchor))
    if budget.call_overhead is None:
        low, high = _neighbours(pool, start, budget)
    else:
        low, high = _cheapest_group(pool, start, budget, budget.call_overhead)
    group = pool[low:high]
    taken = {(entry[3].arrival, entry[2]) for entry in group}
    for job in jobs:
        head = job.queue[: budget.window]
        kept = [row for row in head if (job.arrival, row) not in taken]
        job.passed_over = 0 if len(kept) < len(head) else job.passed_over + 1
        job.queue = kept + job.queue[budget.window :]
    return group


def _neighbours(pool: list[Entry], start: int, budget: Budget) -> tuple[int, int]:
    """Grow pool[start] into the slice of like-sized texts that pads the least."""
    low, high, longest = start, start + 1, pool[start][0]
    while high - low < budget.max_texts:
        # A shorter text adds its own padding; a longer one pads every text taken so far.
        below = longest - pool[low - 1][0] if low > 0 else None
        above = (pool[high][0] - longest) * (high - low) if high < len(pool) else None
        if below is not None and (above is None or below <= above):
            if (high - low + 1) * longest > budget.token_budget:
                break
            low -= 1
        elif above is not None:
            if (high - low + 1) * pool[high][0] > budget.token_budget:
                break
            longest = pool[high][0]
            high += 1
        else:
            break
    return low, high


def _cheapest_group(
    pool: list[Entry], start: int, budget: Budget, overhead: int
) -> tuple[int, int]:
    """The group holding pool[start] in the cheapest split of its neighbourhood into calls.

    A call costs `overhead` plus texts x longest word pieces. Splitting the length-sorted
    texts around pool[start] into contiguous groups (dynamic programming) keeps a few long
    texts from padding many short ones when a second call is cheaper than that padding,
    and still fills whole batches where lengths are alike, as in a large add.
    """
    max_texts = budget.max_texts
    low = max(0, start - 2 * max_texts)
    sizes = [entry[0] for entry in pool[low : start + 2 * max_texts + 1]]
    count = len(sizes)
    best = [0] + [sys.maxsize] * count  # best[j]: cheapest split of sizes[:j]
    cut = [0] * (count + 1)  # where the last group of that split begins
    for end in range(1, count + 1):
        longest = sizes[end - 1]  # sorted: the group's last text is its longest
        for begin in range(end - 1, max(-1, end - 1 - max_texts), -1):
            texts = end - begin
            if texts > 1 and texts * longest > budget.token_budget:
                break
            cost = best[begin] + overhead + texts * longest
            if cost < best[end]:
                best[end], cut[end] = cost, begin
    end, target = count, start - low
    while not cut[end] <= target < end:
        end = cut[end]
    return low + cut[end], low + end


def _priority(job: Job) -> tuple[int, int]:
    """Fewest untaken texts first, then the oldest; a job passed over too often jumps ahead."""
    return (0 if job.passed_over >= MAX_PASSED_OVER else len(job.queue), job.arrival)
