"""SQL for sessions and messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, String, cast, delete, func, insert, literal, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.db.base import UTCDateTime
from chatkeep.db.tables import ChatSessionRow, MessageRow
from chatkeep.sessions.schemas import MessageQuery, SessionFilters

S = ChatSessionRow
M = MessageRow

LIST_ORDER = (S.pinned.desc(), S.updated_at.desc(), S.id.desc())


async def insert_session(db: AsyncSession, row: ChatSessionRow) -> ChatSessionRow:
    db.add(row)
    await db.flush()
    return row


async def get_session(db: AsyncSession, session_id: str, *, for_update: bool = False) -> ChatSessionRow | None:
    return await db.get(S, session_id, with_for_update=for_update or None, populate_existing=for_update)


async def session_exists(db: AsyncSession, session_id: str) -> bool:
    return await db.scalar(select(S.id).where(S.id == session_id)) is not None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_sessions(
    db: AsyncSession,
    owner_id: str,
    filters: SessionFilters,
    *,
    limit: int,
    offset: int = 0,
    after: tuple[bool, datetime, str] | None = None,
) -> list[ChatSessionRow]:
    """The owner's sessions, pinned first then most recently updated, keyset after `after`."""
    query = select(S).where(S.owner_id == owner_id)
    if filters.deleted:
        query = query.where(S.deleted_at.is_not(None))
    else:
        query = query.where(S.deleted_at.is_(None), S.archived == filters.archived)
    if filters.pinned is not None:
        query = query.where(S.pinned == filters.pinned)
    if filters.agent is not None:
        query = query.where(S.agent == filters.agent)
    if filters.q:
        pattern = f"%{_escape_like(filters.q)}%"
        query = query.where(
            or_(S.title.ilike(pattern, escape="\\"), cast(S.metadata_, String).ilike(pattern, escape="\\"))
        )
    for key, value in filters.metadata.items():
        query = query.where(S.metadata_[key].as_string() == value)
    if after is not None:
        pinned, updated_at, session_id = after
        query = query.where(
            tuple_(S.pinned, S.updated_at, S.id)
            < tuple_(literal(pinned, Boolean()), literal(updated_at, UTCDateTime()), literal(session_id, String()))
        )
    query = query.order_by(*LIST_ORDER).offset(offset).limit(limit)
    return list(await db.scalars(query))


async def update_session(db: AsyncSession, session_id: str, values: dict[str, Any]) -> None:
    await db.execute(update(S).where(S.id == session_id).values(**values))


async def delete_session(db: AsyncSession, session_id: str) -> None:
    """Remove a session and everything that belongs to it."""
    await db.execute(delete(M).where(M.session_id == session_id))
    await db.execute(delete(S).where(S.id == session_id))


async def reserve_seqs(
    db: AsyncSession,
    session_id: str,
    count: int,
    *,
    now: datetime,
    prompt_tokens: int,
    completion_tokens: int,
    cost: float,
    title_if_unset: str | None,
) -> int:
    """Take `count` consecutive seqs and update the session's counters in one statement.

    The UPDATE row-locks the session (PostgreSQL) or runs under the write lock (SQLite), so
    concurrent appends get consecutive, gap-free ranges. Returns the last seq taken.
    """
    values: dict[str, Any] = {
        "message_count": S.message_count + count,
        "prompt_tokens": S.prompt_tokens + prompt_tokens,
        "completion_tokens": S.completion_tokens + completion_tokens,
        "total_cost": S.total_cost + cost,
        "last_message_at": now,
        "updated_at": now,
    }
    if title_if_unset is not None:
        # Only a session that never had a title takes one: an explicit title always wins.
        values["title"] = func.coalesce(S.title, title_if_unset)
    result = await db.execute(
        update(S).where(S.id == session_id).values(**values).returning(S.message_count)
    )
    return result.scalar_one()


async def message_id_at(db: AsyncSession, session_id: str, seq: int) -> str | None:
    return await db.scalar(select(M.id).where(M.session_id == session_id, M.seq == seq))


async def message_in_session(db: AsyncSession, session_id: str, message_id: str) -> bool:
    query = select(M.id).where(M.id == message_id, M.session_id == session_id)
    return await db.scalar(query) is not None


async def insert_messages(db: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await db.execute(insert(M), list(rows))


async def list_messages(db: AsyncSession, session_id: str, query: MessageQuery) -> list[MessageRow]:
    stmt = select(M).where(M.session_id == session_id)
    stmt = stmt.where(M.kind.in_(("chat", "tool")) if query.include_tools else M.kind == "chat")
    if query.after is not None:
        stmt = stmt.where(M.seq > query.after)
    if query.before is not None:
        stmt = stmt.where(M.seq < query.before)
    stmt = stmt.order_by(M.seq.asc() if query.order == "asc" else M.seq.desc())
    stmt = stmt.offset(query.offset).limit(query.limit)
    return list(await db.scalars(stmt))


async def get_message(db: AsyncSession, session_id: str, message_id: str) -> MessageRow | None:
    return await db.scalar(select(M).where(M.id == message_id, M.session_id == session_id))


VISIBLE_TO_MODEL = ("chat", "tool")


async def last_messages(db: AsyncSession, session_id: str, limit: int) -> list[MessageRow]:
    """The last `limit` chat and tool messages, oldest first (one backward index scan)."""
    stmt = (
        select(M)
        .where(M.session_id == session_id, M.kind.in_(VISIBLE_TO_MODEL))
        .order_by(M.seq.desc())
        .limit(limit)
    )
    return list(reversed(list(await db.scalars(stmt))))


async def messages_between(
    db: AsyncSession, session_id: str, after_seq: int, before_seq: int, limit: int
) -> list[MessageRow]:
    """The newest `limit` chat and tool messages with after_seq < seq < before_seq, oldest first."""
    stmt = (
        select(M)
        .where(M.session_id == session_id, M.kind.in_(VISIBLE_TO_MODEL), M.seq > after_seq, M.seq < before_seq)
        .order_by(M.seq.desc())
        .limit(limit)
    )
    return list(reversed(list(await db.scalars(stmt))))


async def get_message_by_id(db: AsyncSession, message_id: str) -> MessageRow | None:
    return await db.get(M, message_id)
