"""Start-up state: the model and the data load in the background while /healthz already answers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Readiness:
    """Runs the loader once, remembers how long it took or why it failed."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.error: str | None = None
        self.exception: Exception | None = None
        self.load_seconds: float | None = None
        self.knowledge_bases = 0

    def run(self, loader: Callable[[], int], on_failure: Callable[[], None] | None = None) -> None:
        started = time.monotonic()
        try:
            self.knowledge_bases = loader()
        except Exception as error:
            self.exception = error
            self.error = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
            log.error("kb-service cannot start: %s", self.error)
            if on_failure is not None:
                on_failure()
            return
        self.load_seconds = round(time.monotonic() - started, 3)
        log.info(
            "kb-service ready: model and %d knowledge base(s) loaded in %.2fs",
            self.knowledge_bases, self.load_seconds,
        )  # fmt: skip
        self.ready.set()

    def start(self, loader: Callable[[], int], on_failure: Callable[[], None] | None) -> None:
        threading.Thread(target=self.run, args=(loader, on_failure), daemon=True).start()
