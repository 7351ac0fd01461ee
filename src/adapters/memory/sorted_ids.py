"""SortedIds: a knowledge base's document ids in order, in blocks the garbage collector skips.

No port of its own: the in-memory repository's (and so SQLite's) order for pages of documents.

One list of ten million ids is a container that every full collection of the garbage collector
walks, item by item, and a full collection comes every few thousand surviving objects: at a
million documents that was a quarter of the time of listing every digest, and the share grows
with the count. A tuple holding only strings is dropped from the collector's watch the first
time it looks at it, so the ids live in tuples of at most 2 * BLOCK: only the short lists of
blocks and of their last ids are walked. Adding or removing an id rebuilds one block, O(BLOCK):
10 µs at a million random ids, where a list's insort moved every id after it (120 µs).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator

BLOCK = 256  # a rebuilt tuple increfs every id in it: small blocks, cheap adds


class SortedIds:
    """Distinct strings in ascending order: add, remove, and read on from any point."""

    def __init__(self, ordered: Iterable[str] = ()) -> None:
        """Hold `ordered`, which is sorted and without repeats."""
        held = list(ordered)
        self._blocks = [tuple(held[at : at + BLOCK]) for at in range(0, len(held), BLOCK)]
        self._lasts = [block[-1] for block in self._blocks]  # for bisecting to a block
        self._size = len(held)

    def __len__(self) -> int:
        return self._size

    def add(self, item: str) -> None:
        """Insert `item`, which is not held yet."""
        at = bisect.bisect_left(self._lasts, item)
        if at == len(self._blocks):  # above every id: the last block takes it, or a new one
            if not self._blocks or len(self._blocks[-1]) >= BLOCK:
                self._blocks.append((item,))
                self._lasts.append(item)
                self._size += 1
                return
            at -= 1
        block = self._blocks[at]
        where = bisect.bisect_left(block, item)
        grown = block[:where] + (item,) + block[where:]  # noqa: RUF005  # no list built
        if len(grown) > 2 * BLOCK:  # split: no block grows past twice its size
            half = len(grown) // 2
            self._blocks[at : at + 1] = [grown[:half], grown[half:]]
            self._lasts[at : at + 1] = [grown[half - 1], grown[-1]]
        else:
            self._blocks[at], self._lasts[at] = grown, grown[-1]
        self._size += 1

    def remove(self, item: str) -> None:
        """Take `item` out; KeyError if it is not held."""
        at = bisect.bisect_left(self._lasts, item)
        block = self._blocks[at] if at < len(self._blocks) else ()
        where = bisect.bisect_left(block, item)
        if where == len(block) or block[where] != item:
            raise KeyError(item)
        shrunk = block[:where] + block[where + 1 :]
        if shrunk:
            self._blocks[at], self._lasts[at] = shrunk, shrunk[-1]
        else:
            del self._blocks[at], self._lasts[at]
        self._size -= 1

    def following(self, after: str | None = None) -> Iterator[str]:
        """The ids above `after` (every id if None), in order. Read it whole before a change."""
        at = 0 if after is None else bisect.bisect_right(self._lasts, after)
        if at == len(self._blocks):
            return iter(())
        first = self._blocks[at]
        start = 0 if after is None else bisect.bisect_right(first, after)
        rest = itertools.islice(self._blocks, at + 1, None)
        return itertools.chain(first[start:], itertools.chain.from_iterable(rest))

    def page(self, after: str | None, limit: int) -> list[str]:
        """At most `limit` ids above `after` (from the first if None), in order."""
        return list(itertools.islice(self.following(after), limit))
