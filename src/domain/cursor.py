"""Opaque pagination cursors: the last key of a page, base64url-encoded."""

from __future__ import annotations

import base64
import binascii

from domain.errors import InvalidInputError

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_CURSOR_LENGTH = 1024  # a cursor encodes one id or name; both are far shorter


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInputError(
            "invalid cursor: pass back the next_cursor of a previous page",
            errors={"cursor": ["invalid cursor"]},
        ) from None
