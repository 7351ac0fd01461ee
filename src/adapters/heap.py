"""Handing freed heap pages back to the operating system after a burst of large allocations."""

from __future__ import annotations

import contextlib
import ctypes
import sys


def release_free_memory() -> None:
    """Return free heap pages to the OS (glibc's malloc_trim; elsewhere nothing to do).

    Loading a million rows or rebuilding an index frees gigabytes in pieces that glibc keeps
    mapped for reuse, so without this the resident size stays at its peak.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # musl and others have no malloc_trim
        ctypes.CDLL(None).malloc_trim(0)
