"""SQL for idempotency keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.db.tables import IdempotencyKeyRow


async def get(db: AsyncSession, owner_id: str, key: str) -> IdempotencyKeyRow | None:
    return await db.get(IdempotencyKeyRow, (owner_id, key), populate_existing=True)


async def insert(db: AsyncSession, row: IdempotencyKeyRow) -> None:
    db.add(row)
    await db.flush()


async def set_response(db: AsyncSession, owner_id: str, key: str, status_code: int, response: Any) -> None:
    await db.execute(
        update(IdempotencyKeyRow)
        .where(IdempotencyKeyRow.owner_id == owner_id, IdempotencyKeyRow.key == key)
        .values(status_code=status_code, response=response)
    )
