"""The served app with the fake embedder: `gunicorn fake_wsgi:app` for tests that restart it.

What `entrypoints.wsgi` builds, except that the model is `tests/fakes.FakeEmbedder`: a start
takes a second instead of loading weights, so a test can stop, kill and restart the real
gunicorn process many times. Test-only; `server.Server(..., app=FAKE_APP)` serves it.
"""

import logging
import os

from entrypoints.app import create_app
from entrypoints.settings import Settings
from fakes import FakeEmbedder

# As in entrypoints.wsgi: gunicorn's master stops instead of restarting a worker that cannot load.
WORKER_BOOT_ERROR = 3

settings = Settings.from_env()
logging.basicConfig(
    level=settings.log_level.upper(),
    format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
)
app = create_app(
    settings,
    embedder=FakeEmbedder(dimension=32, window=16),
    background=True,
    on_load_failure=lambda: os._exit(WORKER_BOOT_ERROR),
)
