"""Handing freed heap pages back to the operating system after a burst of large allocations.

No port of its own: the FAISS index, the SQLite repository and the ONNX encoder call it.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h


def release_free_memory() -> None:
    """Return free heap pages to the OS (glibc's malloc_trim; elsewhere nothing to do).

    Loading a million rows or rebuilding an index frees gigabytes in pieces that glibc keeps
    mapped for reuse, so without this the resident size stays at its peak.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # musl and others have no malloc_trim
        ctypes.CDLL(None).malloc_trim(0)


def map_large_allocations(threshold: int = 1 << 20) -> None:
    """Serve every allocation of `threshold` bytes or more from its own mapping (glibc only).

    glibc raises its mmap threshold (up to 32 MiB) each time a mapped block is freed, so the
    large regions a memory arena (ONNX Runtime's) gives back and later takes again are then
    carved out of the heap, between small long-lived objects, where they stay resident and
    the heap grows with every round. A fixed threshold (mallopt M_MMAP_THRESHOLD) keeps them
    mapped, and unmapped when freed. Smaller blocks still come from the heap.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, threshold)
