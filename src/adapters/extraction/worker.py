"""The extraction worker process: reads files sent to it, one at a time, under a memory limit.

Started by SandboxedTextExtractor as `python -m adapters.extraction.worker REQUESTS RESULTS
MEMORY` (two pipe descriptors and a byte count); it ends when its requests pipe closes.
"""

from __future__ import annotations

import resource
import signal
import sys
import warnings
from multiprocessing.connection import Connection
from typing import Any

from adapters.extraction.formats import read_as  # noqa: F401 (imported once, before any file)
from adapters.extraction.sandbox import READY
from adapters.extraction.text_builder import Unreadable
from domain.extraction import FileLimits

Outcome = tuple[str, Any]  # ("text", ExtractedText) or ("error", why)


def read_safely(reader: Any, content_type: str, data: bytes, limits: FileLimits) -> Outcome:
    """Read one file; whatever goes wrong becomes a reason for the client."""
    try:
        return "text", reader(content_type, data, limits)
    except Unreadable as reason:
        return "error", str(reason)
    except MemoryError:
        return (
            "error",
            f"reading it needed more memory than allowed: {limits.extraction_memory_bytes}",
        )
    except RecursionError:
        return "error", "the file is nested too deeply to read"
    except Exception as error:  # every parser fails in its own ways on a damaged file
        text = str(error).strip()[:200]
        what = f"{type(error).__name__}: {text}" if text else type(error).__name__
        return "error", f"the file is damaged or not what its name says ({what})"


def serve(requests: Connection, results: Connection, memory: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # The service decides when a worker stops (it closes the pipe): not a terminal's Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.simplefilter("ignore")  # a damaged file's parser warnings are not the log's news
    results.send(READY)  # imports done: from now on the parent's clock is the file's
    while True:
        try:
            reader, content_type, data, limits = requests.recv()
        except EOFError:
            return
        outcome = read_safely(reader, content_type, data, limits)
        del data
        results.send(outcome)


if __name__ == "__main__":
    serve(
        Connection(int(sys.argv[1]), writable=False),
        Connection(int(sys.argv[2]), readable=False),
        int(sys.argv[3]),
    )
