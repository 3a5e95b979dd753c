"""Server-generated identifiers: UUIDv7 strings (time-ordered, so new rows cluster in indexes)."""

from __future__ import annotations

import os
import re
import secrets
import time
import uuid

CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_id() -> str:
    """A UUIDv7 (RFC 9562): 48-bit unix ms timestamp, version, 74 random bits."""
    value = (time.time_ns() // 1_000_000) << 80
    value |= int.from_bytes(os.urandom(10), "big") & ((1 << 80) - 1)
    value &= ~(0xF << 76)
    value |= 0x7 << 76  # version 7
    value &= ~(0x3 << 62)
    value |= 0x2 << 62  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def new_token(nbytes: int = 32) -> str:
    """An unguessable URL-safe token (256 bits by default)."""
    return secrets.token_urlsafe(nbytes)
