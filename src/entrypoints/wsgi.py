"""The WSGI object gunicorn serves: `entrypoints.wsgi:app`."""

import os

from entrypoints.app import create_app

# WORKER_BOOT_ERROR: gunicorn's master stops instead of restarting a worker that cannot load.
WORKER_BOOT_ERROR = 3

app = create_app(background=True, on_load_failure=lambda: os._exit(WORKER_BOOT_ERROR))
