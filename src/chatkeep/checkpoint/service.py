"""Use cases of the checkpoint capability that the server and the CLI need (no LangGraph
import): the thread config of a session, forgetting a hard-deleted session's checkpoints,
retention over a whole database."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.auth.principal import Principal
from chatkeep.checkpoint import store
from chatkeep.checkpoint.engine import create_sync_engine
from chatkeep.checkpoint.schemas import ThreadConfig
from chatkeep.config import Settings
from chatkeep.sessions import service as sessions_service


def thread_config(session: Any, *, user_id: str | None = None) -> dict[str, Any]:
    """The LangGraph config of a session: `{"configurable": {"thread_id", "user_id",
    "model_name", "temperature", "max_tokens"}}`.

    `session` is a session as the API returns it (a ChatSession or its JSON dict) or a session
    row; the API's session has no owner, so pass `user_id` with it.
    """
    if isinstance(session, Mapping):
        field = session.get
    else:
        def field(name: str) -> Any:
            return getattr(session, name, None)

    owner = user_id or field("owner_id")
    if not owner:
        raise ValueError("thread_config needs the session's owner: pass user_id=")
    return {
        "configurable": {
            "thread_id": field("id"),
            "user_id": owner,
            "model_name": field("model"),
            "temperature": field("temperature"),
            "max_tokens": field("max_tokens"),
        }
    }


async def get_thread_config(db: AsyncSession, principal: Principal, session_id: str) -> ThreadConfig:
    row = await sessions_service.get_row(db, principal, session_id)
    return ThreadConfig.model_validate(thread_config(row))


async def forget_thread(db: AsyncSession, thread_id: str) -> None:
    """A hard-deleted session's checkpoints, writes and blobs, in the caller's transaction
    (and a tombstone, if it was a LangGraph thread, so a graph still running can't revive it)."""
    await db.run_sync(lambda session: store.forget_session_thread(session.connection(), thread_id))


def prune_database(
    database_url: str,
    keep_last: int,
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
) -> store.Retained:
    """Keep the newest `keep_last` checkpoints of every thread namespace (writes of kept and of
    not-yet-saved checkpoints stay; blobs nothing kept needs go), one transaction per thread."""
    engine = create_sync_engine(database_url, settings)
    try:
        with engine.connect() as conn:
            threads = store.threads_over(conn, keep_last)
        done = store.Retained()
        writer = engine.execution_options(chatkeep_write=True)
        for index, thread_id in enumerate(threads, 1):
            with writer.begin() as conn:
                done.add(store.retain(conn, thread_id, keep_last))
            if progress is not None:
                progress(index, len(threads))
        return done
    finally:
        engine.dispose()
