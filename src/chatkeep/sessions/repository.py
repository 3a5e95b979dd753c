"""SQL for sessions and messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Connection, String, bindparam, case, cast, delete, func, insert, literal, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
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
    if filters.busy is not None:
        query = query.where(S.active_run_id.is_not(None) if filters.busy else S.active_run_id.is_(None))
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


SESSIONS = S.__table__
MESSAGES = M.__table__

# A hard delete: the session's messages, then the session (shared by the async service and the
# LangGraph saver's sync Connection).
DELETE_SESSION = (
    delete(MESSAGES).where(MESSAGES.c.session_id == bindparam("sid")),
    delete(SESSIONS).where(SESSIONS.c.id == bindparam("sid")),
)


async def delete_session(db: AsyncSession, session_id: str) -> None:
    """Remove a session and its messages (LangGraph checkpoint rows: chatkeep.checkpoint)."""
    for statement in DELETE_SESSION:
        await db.execute(statement, {"sid": session_id})


def delete_session_sync(conn: Connection, session_id: str) -> None:
    for statement in DELETE_SESSION:
        conn.execute(statement, {"sid": session_id})


# Sessions created by the LangGraph saver: a concurrent first checkpoint of the same thread
# (another process) must not fail, so an existing row wins.
INSERT_SESSION_IF_ABSENT = {
    "sqlite": sqlite.insert(SESSIONS).on_conflict_do_nothing(index_elements=[SESSIONS.c.id]).returning(SESSIONS.c.id),
    "postgresql": postgresql.insert(SESSIONS)
    .on_conflict_do_nothing(index_elements=[SESSIONS.c.id])
    .returning(SESSIONS.c.id),
}
SESSION_OWNER = select(SESSIONS.c.owner_id, SESSIONS.c.deleted_at).where(SESSIONS.c.id == bindparam("sid"))


def insert_session_if_absent(conn: Connection, values: dict[str, Any]) -> bool:
    """Insert a session row (keyed by column name) unless its id exists; True if inserted."""
    return conn.execute(INSERT_SESSION_IF_ABSENT[conn.dialect.name], values).first() is not None


def session_owner(conn: Connection, session_id: str) -> tuple[str, datetime | None] | None:
    row = conn.execute(SESSION_OWNER, {"sid": session_id}).one_or_none()
    return None if row is None else (row[0], row[1])


def session_row(conn: Connection, session_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(SESSIONS).where(SESSIONS.c.id == session_id)).mappings().one_or_none()
    return None if row is None else dict(row)

# The append hot path as prebuilt statements with bound parameters: built and compiled once.
_STAMP = case(
    (SESSIONS.c.last_message_at > bindparam("now", type_=UTCDateTime()), SESSIONS.c.last_message_at),
    else_=bindparam("now", type_=UTCDateTime()),
)
ADVANCE_SESSION = (
    update(SESSIONS)
    .where(SESSIONS.c.id == bindparam("sid"), SESSIONS.c.owner_id == bindparam("owner"), SESSIONS.c.deleted_at.is_(None))
    .values(
        message_count=SESSIONS.c.message_count + bindparam("count"),
        prompt_tokens=SESSIONS.c.prompt_tokens + bindparam("prompt_tokens"),
        completion_tokens=SESSIONS.c.completion_tokens + bindparam("completion_tokens"),
        total_cost=SESSIONS.c.total_cost + bindparam("cost"),
        # Only a session that never had a title takes one: an explicit title always wins.
        title=func.coalesce(SESSIONS.c.title, bindparam("title", type_=String())),
        last_message_at=_STAMP,
        updated_at=_STAMP,
    )
    .returning(SESSIONS.c.message_count, SESSIONS.c.last_message_at)
)
# A message without a parent follows the session's previous message (looked up in-statement).
_PREVIOUS = (
    select(MESSAGES.c.id)
    .where(MESSAGES.c.session_id == bindparam("previous_session"), MESSAGES.c.seq == bindparam("previous_seq"))
    .scalar_subquery()
)
INSERT_MESSAGE = (
    insert(MESSAGES)
    .values(parent_id=func.coalesce(bindparam("given_parent", type_=String()), _PREVIOUS))
    .returning(MESSAGES.c.parent_id, sort_by_parameter_order=True)
)


async def advance_session(
    db: AsyncSession,
    session_id: str,
    owner_id: str,
    count: int,
    *,
    now: datetime,
    prompt_tokens: int,
    completion_tokens: int,
    cost: float,
    title_if_unset: str | None,
) -> tuple[int, datetime] | None:
    """Take `count` consecutive seqs of the owner's live session and update its counters, in one
    statement; None if there is no such session.

    The UPDATE row-locks the session (PostgreSQL) or runs under the write lock (SQLite), so
    concurrent appends get consecutive, gap-free ranges. The time it stamps never goes backwards
    (a writer that waited for the lock may hold an older `now`). Returns (last seq, time).
    """
    params = _advance_params(session_id, owner_id, count, now, prompt_tokens, completion_tokens, cost, title_if_unset)
    row = (await db.execute(ADVANCE_SESSION, params)).one_or_none()
    return None if row is None else (row[0], row[1])


def _advance_params(
    session_id: str,
    owner_id: str,
    count: int,
    now: datetime,
    prompt_tokens: int,
    completion_tokens: int,
    cost: float,
    title_if_unset: str | None,
) -> dict[str, Any]:
    return {
        "sid": session_id,
        "owner": owner_id,
        "count": count,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost": cost,
        "title": title_if_unset,
        "now": now,
    }


def advance_session_sync(conn: Connection, session_id: str, owner_id: str, count: int, *, now: datetime,
                         prompt_tokens: int, completion_tokens: int, cost: float,
                         title_if_unset: str | None) -> tuple[int, datetime] | None:
    """`advance_session` on a sync Connection (the LangGraph saver)."""
    params = _advance_params(session_id, owner_id, count, now, prompt_tokens, completion_tokens, cost, title_if_unset)
    row = conn.execute(ADVANCE_SESSION, params).one_or_none()
    return None if row is None else (row[0], row[1])


def _insert_params(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**{k: v for k, v in row.items() if k != "parent_id"}, "given_parent": row["parent_id"],
         "previous_session": row["session_id"], "previous_seq": row["seq"] - 1}
        for row in rows
    ]


async def insert_messages(db: AsyncSession, rows: list[dict[str, Any]]) -> list[str | None]:
    """Insert rows (keyed by column name) in one round trip; returns their parent ids."""
    return list((await db.execute(INSERT_MESSAGE, _insert_params(rows))).scalars())


def insert_messages_sync(conn: Connection, rows: list[dict[str, Any]]) -> list[str | None]:
    return list(conn.execute(INSERT_MESSAGE, _insert_params(rows)).scalars())


async def message_in_session(db: AsyncSession, session_id: str, message_id: str) -> bool:
    query = select(M.id).where(M.id == message_id, M.session_id == session_id)
    return await db.scalar(query) is not None


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


async def clear_active_run(db: AsyncSession, session_id: str, run_id: str) -> None:
    await db.execute(update(S).where(S.id == session_id, S.active_run_id == run_id).values(active_run_id=None))


async def last_assistant_reply(db: AsyncSession, session_id: str, max_seq: int | None) -> MessageRow | None:
    """The last assistant reply (kind "chat": not a tool call) with seq <= max_seq (any, if None)."""
    stmt = select(M).where(M.session_id == session_id, M.role == "assistant", M.kind == "chat")
    if max_seq is not None:
        stmt = stmt.where(M.seq <= max_seq)
    return await db.scalar(stmt.order_by(M.seq.desc()).limit(1))


async def messages_upto(db: AsyncSession, session_id: str, until_seq: int) -> list[MessageRow]:
    """Chat and tool messages with seq <= until_seq, oldest first (what a fork copies)."""
    stmt = select(M).where(M.session_id == session_id, M.kind.in_(VISIBLE_TO_MODEL), M.seq <= until_seq)
    return list(await db.scalars(stmt.order_by(M.seq.asc())))


async def stale_sessions_of_owners(db: AsyncSession, owner_prefix: str, before: datetime, limit: int) -> list[str]:
    """Ids of sessions whose owner id starts with `owner_prefix`, untouched since `before`."""
    pattern = _escape_like(owner_prefix) + "%"
    query = select(S.id).where(S.owner_id.like(pattern, escape="\\"), S.updated_at < before).limit(limit)
    return list(await db.scalars(query))


async def change_owner(db: AsyncSession, from_owner: str, to_owner: str) -> int:
    result = await db.execute(update(S).where(S.owner_id == from_owner).values(owner_id=to_owner))
    return result.rowcount or 0
