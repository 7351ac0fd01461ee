"""The WSGI object gunicorn serves: `entrypoints.wsgi:app`."""

from entrypoints.app import create_app

app = create_app()
