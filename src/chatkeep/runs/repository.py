"""SQL for runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.db.tables import RunRow

R = RunRow


async def insert_run(db: AsyncSession, row: RunRow) -> RunRow:
    db.add(row)
    await db.flush()
    return row


async def get_run(db: AsyncSession, session_id: str, run_id: str) -> RunRow | None:
    return await db.scalar(select(R).where(R.id == run_id, R.session_id == session_id))


async def list_runs(db: AsyncSession, session_id: str, *, limit: int, offset: int) -> list[RunRow]:
    query = select(R).where(R.session_id == session_id).order_by(R.created_at.desc(), R.id.desc())
    return list(await db.scalars(query.offset(offset).limit(limit)))


async def latest_run(db: AsyncSession, session_id: str) -> RunRow | None:
    query = select(R).where(R.session_id == session_id).order_by(R.created_at.desc(), R.id.desc()).limit(1)
    return await db.scalar(query)


async def update_run(db: AsyncSession, run_id: str, values: dict[str, Any], *, only_if_status: tuple[str, ...] | None = None) -> bool:
    """Update a run; with `only_if_status`, only while it is in one of those states."""
    stmt = update(R).where(R.id == run_id)
    if only_if_status:
        stmt = stmt.where(R.status.in_(only_if_status))
    result = await db.execute(stmt.values(**values))
    return result.rowcount > 0


async def claim_expired(db: AsyncSession, now: datetime, error: str) -> list[tuple[str, str]]:
    """Mark running runs whose lease ran out as errors; returns their (run id, session id)."""
    stmt = (
        update(R)
        .where(R.status.in_(("pending", "running")), R.lease_until < now)
        .values(status="error", error=error, finished_at=now, last_activity_at=now)
        .returning(R.id, R.session_id)
    )
    return [(row[0], row[1]) for row in (await db.execute(stmt)).all()]


async def oldest_pending(db: AsyncSession, session_id: str) -> str | None:
    query = select(R.id).where(R.session_id == session_id, R.status == "pending").order_by(R.created_at, R.id).limit(1)
    return await db.scalar(query)
