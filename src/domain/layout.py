"""A text's own structure (sections, pages) as character offsets, and the page of an offset."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from domain.errors import InvalidInputError


@dataclass(frozen=True)
class Layout:
    """Where a text's own structure lies, as character offsets into it (from a file's extractor).

    `sections`: where a heading (or another section) begins, strictly increasing; a chunk
    window does not straddle one when it is near the window's end (domain.chunking). `pages`:
    where page 2, 3, ... begin (page 1 begins at 0), never decreasing (a blank page begins
    where the next one does); empty for a text without pages. A search hit's passage says
    its page (`page_of`).
    """

    sections: tuple[int, ...] = ()
    pages: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "sections", _offsets(self.sections, "sections"))
        object.__setattr__(self, "pages", _offsets(self.pages, "pages"))
        _ordered(self.sections, "sections", strictly=True)
        _ordered(self.pages, "pages", strictly=False)
        if self.pages and self.pages[0] == 0:
            raise InvalidInputError(
                "layout pages list where page 2, 3, ... begin; page 1 begins at 0",
                errors={"layout": {"pages": ["must be > 0"]}},
            )

    def __bool__(self) -> bool:
        return bool(self.sections or self.pages)

    def fits(self, length: int) -> Layout:
        """This layout if every offset lies within a text of `length` characters, else raise."""
        for name, values in (("sections", self.sections), ("pages", self.pages)):
            if values and values[-1] > length:
                raise InvalidInputError(
                    f"layout {name} offset {values[-1]} is beyond the text ({length} characters)",
                    errors={"layout": {name: [f"at most {length}"]}},
                )
        return self

    def boundaries(self) -> list[int]:
        """Every section and page start, ascending: where chunk windows prefer to end."""
        return sorted({*self.sections, *self.pages})

    def page_of(self, offset: int) -> int | None:
        """The 1-based page holding character `offset`; None for a text without pages."""
        if not self.pages:
            return None
        return bisect.bisect_right(self.pages, offset) + 1


def _offsets(values: Sequence[int], name: str) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not all(
        isinstance(value, int) and not isinstance(value, bool) and value >= 0 for value in values
    ):
        raise InvalidInputError(
            f"layout {name} must be character offsets (integers >= 0)",
            errors={"layout": {name: ["integers >= 0"]}},
        )
    return tuple(values)


def _ordered(values: tuple[int, ...], name: str, strictly: bool) -> None:
    if any(b < a or (strictly and b == a) for a, b in itertools.pairwise(values)):
        rule = "strictly increasing" if strictly else "never decreasing"
        raise InvalidInputError(f"layout {name} must be {rule}", errors={"layout": {name: [rule]}})


NO_LAYOUT = Layout()  # a text without sections or pages: the default everywhere
