"""SQL for share links."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.db.tables import MessageRow, ShareRow


async def get_by_session(db: AsyncSession, session_id: str) -> ShareRow | None:
    return await db.scalar(select(ShareRow).where(ShareRow.session_id == session_id))


async def get(db: AsyncSession, share_id: str) -> ShareRow | None:
    return await db.get(ShareRow, share_id)


async def insert(db: AsyncSession, row: ShareRow) -> ShareRow:
    db.add(row)
    await db.flush()
    return row


async def delete_for_session(db: AsyncSession, session_id: str) -> int:
    result = await db.execute(delete(ShareRow).where(ShareRow.session_id == session_id))
    return result.rowcount or 0


async def count_upto(db: AsyncSession, session_id: str, until_seq: int) -> int:
    """Chat and tool messages up to the boundary."""
    query = select(func.count()).where(
        MessageRow.session_id == session_id, MessageRow.seq <= until_seq, MessageRow.kind.in_(("chat", "tool"))
    )
    return await db.scalar(query) or 0
