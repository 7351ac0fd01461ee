"""The served app with the fake embedder: `gunicorn fake_wsgi:app` for tests that restart it.

What `entrypoints.wsgi` builds, except that the model is `tests/fakes.FakeEmbedder`: a start
takes a second instead of loading weights, so a test can stop, kill and restart the real
gunicorn process many times. Test-only; `server.Server(..., app=FAKE_APP)` serves it.
FAKE_EMBED_SECONDS=s makes each model batch take s seconds more (a long job to kill mid-way).
"""

import logging
import os
import time
from collections.abc import Sequence

from domain.ports import Vectors
from entrypoints.app import create_app
from entrypoints.settings import Settings
from fakes import FakeEmbedder


class SlowFakeEmbedder(FakeEmbedder):
    """The fake model, `delay` seconds slower per batch; it keeps no record of its calls."""

    def __init__(self, delay: float) -> None:
        super().__init__(dimension=32, window=16)
        self._delay = delay

    def embed(self, texts: Sequence[str]) -> Vectors:
        time.sleep(self._delay)
        rows = super().embed(texts)
        self.calls.clear()  # a long-running server must not keep every text it embedded
        return rows


# As in entrypoints.wsgi: gunicorn's master stops instead of restarting a worker that cannot load.
WORKER_BOOT_ERROR = 3

settings = Settings.from_env()
logging.basicConfig(
    level=settings.log_level.upper(),
    format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
)
app = create_app(
    settings,
    embedder=SlowFakeEmbedder(float(os.environ.get("FAKE_EMBED_SECONDS", "0"))),
    background=True,
    on_load_failure=lambda: os._exit(WORKER_BOOT_ERROR),
)
