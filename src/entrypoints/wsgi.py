"""The WSGI object gunicorn serves: `entrypoints.wsgi:app`."""

import logging
import os

from entrypoints.app import create_app
from entrypoints.settings import Settings

# WORKER_BOOT_ERROR: gunicorn's master stops instead of restarting a worker that cannot load.
WORKER_BOOT_ERROR = 3

settings = Settings.from_env()
logging.basicConfig(
    level=settings.log_level.upper(),
    format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
)
app = create_app(settings, background=True, on_load_failure=lambda: os._exit(WORKER_BOOT_ERROR))
