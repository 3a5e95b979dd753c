"""The list envelope every collection endpoint returns, and opaque keyset cursors."""

from __future__ import annotations

import base64
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel

from chatkeep.errors import InvalidInput

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """`{"data": [...], "has_more": bool, "next_cursor": str | null}`."""

    data: list[T]
    has_more: bool
    next_cursor: str | None = None


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The values of a cursor we issued; anything else is a 422, never a 500."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidInput("cursor is not valid", code="invalid_cursor", field="cursor") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidInput("cursor is not valid", code="invalid_cursor", field="cursor")
    return values
