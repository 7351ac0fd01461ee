"""Entrypoints: the HTTP app, its DI container, settings, gunicorn config and the `kb` CLI."""
