"""Use cases of runs and every access check on them. The executor (executor.py) does the work."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.auth.principal import Principal
from chatkeep.config import Settings
from chatkeep.db.base import utcnow
from chatkeep.db.tables import ChatSessionRow, RunRow
from chatkeep.errors import Conflict, NotFound
from chatkeep.ids import new_id
from chatkeep.pagination import Page
from chatkeep.runs import repository
from chatkeep.runs.schemas import ACTIVE_STATUSES, ActiveSession, Run, RunCreate, TaskStatus
from chatkeep.sessions import service as sessions

INTERRUPTED = "interrupted: the process running it stopped"


def to_run(row: RunRow) -> Run:
    return Run.model_validate(row)


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


async def get_row(db: AsyncSession, principal: Principal, session_id: str, run_id: str) -> RunRow:
    await sessions.get_row(db, principal, session_id)
    row = await repository.get_run(db, session_id, run_id)
    if row is None:
        raise NotFound("run not found", code="run_not_found")
    return row


async def create(
    db: AsyncSession, principal: Principal, session_id: str, data: RunCreate, model: str, settings: Settings, worker: str
) -> RunRow:
    """Record a new run: running, or — while another runs in the session — refused with 409
    naming the active one (multitask "reject") or queued as pending (multitask "enqueue")."""
    session = await sessions.get_row(db, principal, session_id, sessions.Access.WRITE, lock=True)
    busy = await _running(db, session)
    if busy is not None and settings.run_multitask == "reject":
        raise Conflict("this session already has a run in progress", code="run_in_progress", active_run_id=busy.id)
    now = utcnow()
    row = await repository.insert_run(
        db,
        RunRow(
            id=new_id(),
            session_id=session_id,
            owner_id=principal.owner_id,
            agent=data.agent,
            model=model,
            status="pending" if busy else "running",
            max_tokens=data.max_tokens,
            tokens=0,
            message_ids=[],
            worker=worker,
            created_at=now,
            started_at=None if busy else now,
            last_activity_at=now,
            lease_until=now + timedelta(seconds=settings.run_lease_seconds),
        ),
    )
    if busy is None:
        await sessions.set_active_run(db, session_id, row.id)
    return row


async def _running(db: AsyncSession, session: ChatSessionRow) -> RunRow | None:
    if session.active_run_id is None:
        return None
    active = await repository.get_run(db, session.id, session.active_run_id)
    return active if active is not None and active.status in ACTIVE_STATUSES else None


async def try_start_queued(
    db: AsyncSession, principal: Principal, session_id: str, run_id: str, settings: Settings
) -> bool:
    """Start a pending run if the session is free and it is the oldest one waiting."""
    session = await sessions.get_row(db, principal, session_id, sessions.Access.WRITE, lock=True)
    if await _running(db, session) is not None or await repository.oldest_pending(db, session_id) != run_id:
        return False
    now = utcnow()
    values = {"status": "running", "started_at": now, "last_activity_at": now, "lease_until": now + timedelta(seconds=settings.run_lease_seconds)}
    await repository.update_run(db, run_id, values, only_if_status=("pending",))
    await sessions.set_active_run(db, session_id, run_id)
    return True


async def get(db: AsyncSession, principal: Principal, session_id: str, run_id: str) -> Run:
    return to_run(await get_row(db, principal, session_id, run_id))


async def list_runs(db: AsyncSession, principal: Principal, session_id: str, *, limit: int, offset: int) -> Page[Run]:
    await sessions.get_row(db, principal, session_id)
    rows = await repository.list_runs(db, session_id, limit=limit + 1, offset=offset)
    return Page[Run](data=[to_run(r) for r in rows[:limit]], has_more=len(rows) > limit)


async def heartbeat(db: AsyncSession, run_id: str, *, cursor: str | None, tokens: int, settings: Settings) -> None:
    now = utcnow()
    values = {"last_activity_at": now, "tokens": tokens, "lease_until": now + timedelta(seconds=settings.run_lease_seconds)}
    if cursor is not None:
        values["cursor"] = cursor
    await repository.update_run(db, run_id, values, only_if_status=ACTIVE_STATUSES)


async def finish(
    db: AsyncSession,
    run_id: str,
    session_id: str,
    status: str,
    *,
    cursor: str | None,
    tokens: int,
    error: str | None = None,
    message_ids: list[str] | None = None,
) -> bool:
    """End a run (once: a run already ended, e.g. reaped, stays as it is)."""
    now = utcnow()
    values = {"status": status, "finished_at": now, "last_activity_at": now, "tokens": tokens, "error": error}
    if cursor is not None:
        values["cursor"] = cursor
    if message_ids is not None:
        values["message_ids"] = message_ids
    ended = await repository.update_run(db, run_id, values, only_if_status=ACTIVE_STATUSES)
    await sessions.clear_active_run(db, session_id, run_id)
    return ended


async def record_cursor(db: AsyncSession, run_id: str, cursor: str) -> None:
    await repository.update_run(db, run_id, {"cursor": cursor})


async def reap_expired(db: AsyncSession) -> list[tuple[str, str]]:
    """Runs whose process stopped heart-beating become errors ("interrupted")."""
    expired = await repository.claim_expired(db, utcnow(), INTERRUPTED)
    for run_id, session_id in expired:
        await sessions.clear_active_run(db, session_id, run_id)
    return expired


async def _current_run(db: AsyncSession, principal: Principal, session_id: str, settings: Settings) -> RunRow | None:
    """The running run, else the most recent one still within the event retention."""
    await sessions.get_row(db, principal, session_id)
    row = await repository.latest_run(db, session_id)
    if row is None:
        return None
    if row.status in ACTIVE_STATUSES:
        return row
    retention = timedelta(seconds=settings.run_event_retention_seconds)
    return row if row.finished_at is not None and row.finished_at + retention > utcnow() else None


async def active_session(db: AsyncSession, principal: Principal, session_id: str, settings: Settings) -> ActiveSession:
    row = await _current_run(db, principal, session_id, settings)
    if row is None:
        raise NotFound("No active session found", code="no_active_session", conversationId=session_id)
    status = "active" if row.status in ACTIVE_STATUSES else "completed" if row.status == "completed" else "idle"
    return ActiveSession(
        sessionId=row.id,
        status=status,
        cursor=row.cursor,
        conversationId=session_id,
        startedAt=_ms(row.started_at),
        lastActivity=_ms(row.last_activity_at),
    )


def estimated_completion(row: RunRow, settings: Settings, now: datetime) -> int | None:
    """Finished: the finish time. Running: start + elapsed × max_tokens / tokens so far (the
    observed token rate extrapolated to the run's max_tokens, or the default reply reserve);
    before the first token: now + run_first_token_estimate_seconds."""
    if row.finished_at is not None:
        return _ms(row.finished_at)
    started = row.started_at or row.created_at
    if not row.tokens:
        return _ms(now + timedelta(seconds=settings.run_first_token_estimate_seconds))
    budget = max(row.max_tokens or settings.default_reply_reserve_tokens, row.tokens)
    elapsed = (now - started).total_seconds()
    return _ms(started + timedelta(seconds=elapsed * budget / row.tokens))


async def task_status(db: AsyncSession, principal: Principal, session_id: str, settings: Settings) -> TaskStatus:
    row = await _current_run(db, principal, session_id, settings)
    if row is None:
        raise NotFound("No background task found", code="no_background_task", conversationId=session_id)
    return TaskStatus(
        isActive=row.status in ACTIVE_STATUSES,
        sessionId=row.id,
        estimatedCompletion=estimated_completion(row, settings, utcnow()),
        conversationId=session_id,
    )
