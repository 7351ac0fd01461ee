"""CORS: off unless KB_CORS_ORIGINS names the browser origins that may call the API."""

from __future__ import annotations

import logging

from flask import Flask
from flask_cors import CORS

from entrypoints.settings import Settings

log = logging.getLogger(__name__)


def install_cors(app: Flask, settings: Settings) -> None:
    origins = list(settings.cors_origin_list)
    if not origins:
        return  # no Access-Control-* headers: browsers keep other origins out
    CORS(
        app,
        origins=origins,
        allow_headers=["Authorization", "X-API-Key", "X-Request-ID", "Content-Type"],
        expose_headers=["X-Request-ID", "Retry-After"],
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        max_age=600,
        # Keys travel in headers, never cookies, so the browser need not send credentials.
        supports_credentials=False,
    )
    log.info("CORS allows origins: %s", ", ".join(origins))
