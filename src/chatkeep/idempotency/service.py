"""Claim an Idempotency-Key before doing a write; replay the stored result on a retry.

The key row is inserted first, inside the request's transaction. A concurrent duplicate blocks on
that insert (PostgreSQL) or on the write lock (SQLite) until the first request commits, then finds
the stored result. If the first request fails, its key row rolls back with everything else.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.db.base import utcnow
from chatkeep.db.tables import IdempotencyKeyRow
from chatkeep.errors import Conflict, InvalidInput
from chatkeep.idempotency import repository

MAX_KEY_LENGTH = 255


def fingerprint(operation: str, target: str, body: Any) -> str:
    payload = orjson.dumps([operation, target, body], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"Idempotency-Key must be 1–{MAX_KEY_LENGTH} characters", code="invalid_idempotency_key", field="Idempotency-Key"
        )


def _stored_response(existing: IdempotencyKeyRow, fingerprint: str) -> Any | None:
    if existing.fingerprint != fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used for a different request", code="idempotency_key_reused"
        )
    if existing.status_code == 0:
        raise Conflict("a request with this Idempotency-Key is in flight", code="idempotency_in_flight")
    return existing.response


async def lookup(db: AsyncSession, owner_id: str, key: str, fingerprint: str) -> Any | None:
    """The stored response of a finished request with this key, without claiming it."""
    _check_key(key)
    existing = await repository.get(db, owner_id, key)
    return None if existing is None or existing.status_code == 0 else _stored_response(existing, fingerprint)


async def claim(db: AsyncSession, owner_id: str, key: str, fingerprint: str) -> Any | None:
    """None if the key is new (now claimed for this request), else the stored response body."""
    _check_key(key)
    existing = await repository.get(db, owner_id, key)
    if existing is None:
        try:
            async with db.begin_nested():
                await repository.insert(
                    db,
                    IdempotencyKeyRow(
                        owner_id=owner_id, key=key, fingerprint=fingerprint, status_code=0, response=None, created_at=utcnow()
                    ),
                )
            return None
        except IntegrityError:
            existing = await repository.get(db, owner_id, key)
            if existing is None:  # the other request rolled back; let the client retry
                raise Conflict("a request with this Idempotency-Key is in flight", code="idempotency_in_flight") from None
    return _stored_response(existing, fingerprint)


async def record(db: AsyncSession, owner_id: str, key: str, status_code: int, response: Any) -> None:
    await repository.set_response(db, owner_id, key, status_code, response)
