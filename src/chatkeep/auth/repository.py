"""SQL for users and API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.db.tables import ApiKeyRow, UserRow, VisitorClaimRow


async def insert_user(db: AsyncSession, row: UserRow) -> UserRow:
    db.add(row)
    await db.flush()
    return row


async def get_user(db: AsyncSession, user_id: str) -> UserRow | None:
    return await db.get(UserRow, user_id)


async def get_user_by_name(db: AsyncSession, name: str) -> UserRow | None:
    return await db.scalar(select(UserRow).where(UserRow.name == name))


async def count_users(db: AsyncSession) -> int:
    return await db.scalar(select(func.count()).select_from(UserRow)) or 0


async def list_users(
    db: AsyncSession, *, limit: int, offset: int = 0, after_id: str | None = None
) -> list[UserRow]:
    query = select(UserRow).order_by(UserRow.id)
    if after_id is not None:
        query = query.where(UserRow.id > after_id)
    return list(await db.scalars(query.offset(offset).limit(limit)))


async def insert_key(db: AsyncSession, row: ApiKeyRow) -> ApiKeyRow:
    db.add(row)
    await db.flush()
    return row


async def find_active_key(db: AsyncSession, key_hash: str) -> ApiKeyRow | None:
    return await db.scalar(
        select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash, ApiKeyRow.revoked_at.is_(None))
    )


async def get_key(db: AsyncSession, key_id: str) -> ApiKeyRow | None:
    return await db.get(ApiKeyRow, key_id)


async def list_keys(db: AsyncSession, user_id: str) -> list[ApiKeyRow]:
    query = select(ApiKeyRow).where(ApiKeyRow.user_id == user_id).order_by(ApiKeyRow.created_at)
    return list(await db.scalars(query))


async def set_key_last_used(db: AsyncSession, key_id: str, when: datetime) -> None:
    await db.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=when))


async def revoke_key(db: AsyncSession, key_id: str, when: datetime) -> None:
    await db.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(revoked_at=when))


async def get_user_by_subject(db: AsyncSession, subject: str) -> UserRow | None:
    return await db.scalar(select(UserRow).where(UserRow.external_subject == subject))


async def visitor_claimed_by(db: AsyncSession, visitor_id: str) -> str | None:
    return await db.scalar(select(VisitorClaimRow.user_id).where(VisitorClaimRow.visitor_id == visitor_id))


async def insert_claim(db: AsyncSession, visitor_id: str, user_id: str, when: datetime) -> bool:
    """Record that the user claimed the visitor; False when someone already had (first wins)."""
    dialect = postgresql if db.bind.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(VisitorClaimRow)
        .values(visitor_id=visitor_id, user_id=user_id, claimed_at=when)
        .on_conflict_do_nothing(index_elements=[VisitorClaimRow.visitor_id])
        .returning(VisitorClaimRow.visitor_id)
    )
    return (await db.execute(statement)).first() is not None

