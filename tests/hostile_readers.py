"""Readers that misbehave as a hostile file can make a parser misbehave; SandboxedTextExtractor
runs them in its worker processes (importable there: tests/ is on the worker's path)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any


def hang(content_type: str, data: bytes, limits: Any) -> Any:
    while True:
        time.sleep(1)


def spin(content_type: str, data: bytes, limits: Any) -> Any:
    while True:  # pure CPU, never yielding: what a pathological parse looks like
        pass


def hog(content_type: str, data: bytes, limits: Any) -> Any:
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))


def crash(content_type: str, data: bytes, limits: Any) -> Any:
    os.kill(os.getpid(), signal.SIGSEGV)


def pid_or_crash(content_type: str, data: bytes, limits: Any) -> Any:
    """The worker's process id as the text; a crash for the bytes b"crash"."""
    from domain.extraction import ExtractedText

    if data == b"crash":
        crash(content_type, data, limits)
    return ExtractedText(str(os.getpid()), None, "text/plain")
