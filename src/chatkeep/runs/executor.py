"""Runs execute in the process that accepted them, as background tasks: they publish their
events to the broker, heart-beat their lease, obey cancel flags set by any process, and store
the turn exactly as the gateway does. A reaper ends runs whose process died."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from chatkeep.auth.principal import Principal
from chatkeep.background import BackgroundTasks
from chatkeep.config import Settings
from chatkeep.db import Database, session_scope
from chatkeep.errors import ChatkeepError
from chatkeep.gateway.schemas import ChatCompletionRequest
from chatkeep.gateway.service import Gateway, Turn
from chatkeep.ids import new_token
from chatkeep.llm.models import LLM
from chatkeep.runs import service
from chatkeep.runs.agents import CHAT_AGENT, GraphAgents
from chatkeep.runs.schemas import Run, RunCreate
from chatkeep.sessions import service as sessions
from chatkeep.sessions.schemas import MessageIn, MessageQuery
from chatkeep.streams import Broker
from chatkeep.streams.broker import EventIdTaken, next_event_id

log = logging.getLogger("chatkeep.runs")
CANCEL_POLL_SECONDS = 0.2
QUEUE_POLL_SECONDS = 0.25


def stream_key(run_id: str) -> str:
    return f"run:{run_id}"


def cancel_flag(run_id: str) -> str:
    return f"cancel:{run_id}"


class RunExecutor:
    """One per process, built in the app lifespan."""

    def __init__(
        self, database: Database, llm: LLM, background: BackgroundTasks, broker: Broker, settings: Settings
    ) -> None:
        self.database = database
        self.llm = llm
        self.background = background
        self.broker = broker
        self.settings = settings
        self.agents = GraphAgents(database, settings)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{new_token(4)}"
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._cancel_requested: set[str] = set()
        self._reaper: asyncio.Task[None] | None = None

    def gateway(self) -> Gateway:
        return Gateway(self.database, self.llm, self.background, self.settings)

    # --- lifecycle ---------------------------------------------------------------------------

    def start_reaper(self) -> None:
        self._reaper = asyncio.create_task(self._reap_forever())

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.run_reaper_interval_seconds)
            try:
                await self.reap_once()
            except Exception:  # a database hiccup must not kill the reaper
                log.exception("reaping expired runs failed")

    async def reap_once(self) -> list[str]:
        async with session_scope(self.database) as db:
            expired = await service.reap_expired(db)
        for run_id, _ in expired:
            await self.broker.publish(stream_key(run_id), "run.error", {"error": service.INTERRUPTED, "code": "interrupted"})
            await self.broker.expire(stream_key(run_id), self.settings.run_event_retention_seconds)
        return [run_id for run_id, _ in expired]

    # --- starting and cancelling -----------------------------------------------------------

    async def start(self, principal: Principal, session_id: str, data: RunCreate) -> Run:
        self.agents.check(data.agent)
        async with session_scope(self.database) as db:
            session = await sessions.get_row(db, principal, session_id)
            model = self.llm.resolve(data.model or session.model).name
            row = await service.create(db, principal, session_id, data, model, self.settings, self.worker)
            run = service.to_run(row)
        started = await self.broker.publish(
            stream_key(run.id), "run.started", {"run_id": run.id, "session_id": session_id, "agent": run.agent, "model": model}
        )
        run.cursor = started.id
        work = self._execute(principal, run.id, session_id, data, model, started.id, queued=run.status == "pending")
        self._tasks[run.id] = self.background.spawn(work)
        return run

    async def cancel(self, principal: Principal, session_id: str, run_id: str) -> Run:
        """Ask the run to stop, wherever it runs: a flag every process sees (and a direct cancel
        when it runs here)."""
        async with session_scope(self.database, write=False) as db:
            run = await service.get(db, principal, session_id, run_id)
        if run.status in ("pending", "running"):
            await self.broker.set_flag(cancel_flag(run_id), self.settings.run_lease_seconds * 2)
            local = self._tasks.get(run_id)
            if local is not None:
                self._cancel_requested.add(run_id)
                local.cancel()
        return run

    async def _supervise(self, run_id: str, task: asyncio.Task[Any], state: _Progress) -> None:
        """Beside the run: renew its lease on time (even while the model is silent, e.g. before
        its first token) and stop it when any process sets its cancel flag."""
        while True:
            await asyncio.sleep(CANCEL_POLL_SECONDS)
            if await self.broker.has_flag(cancel_flag(run_id)):
                self._cancel_requested.add(run_id)
                task.cancel()
                return
            if state.beat_due(self.settings.run_heartbeat_seconds):
                try:
                    await self._heartbeat(run_id, state)
                except Exception:  # a missed beat is retried next time; the lease has slack
                    log.warning("heartbeat of run %s failed", run_id)

    # --- executing ---------------------------------------------------------------------------

    async def _execute(
        self, principal: Principal, run_id: str, session_id: str, data: RunCreate, model: str, cursor: str, *, queued: bool
    ) -> None:
        stream = stream_key(run_id)
        state = _Progress(stream, cursor)
        current = asyncio.current_task()
        assert current is not None
        supervisor = asyncio.create_task(self._supervise(run_id, current, state))
        try:
            while queued:  # multitask "enqueue": wait for the session's turn (cancel works meanwhile)
                async with session_scope(self.database) as db:
                    queued = not await service.try_start_queued(db, principal, session_id, run_id, self.settings)
                if queued:
                    await asyncio.sleep(QUEUE_POLL_SECONDS)
            if data.agent == CHAT_AGENT:
                ids, content = await self._chat(principal, session_id, data, model, state)
            else:
                ids, content = await self._graph(principal, session_id, data, state)
            completed = await self.broker.publish(
                stream, "message.completed", {"message_id": ids[-1] if ids else None, "content": content}
            )
            state.cursor = completed.id  # the terminal event's id must come after this one
            await self._end(run_id, session_id, "run.completed", {"message_ids": ids}, state, "completed", message_ids=ids)
        except asyncio.CancelledError:
            if run_id not in self._cancel_requested:  # shutting down: the run cannot finish here
                await self._end(run_id, session_id, "run.error", {"error": service.INTERRUPTED, "code": "interrupted"}, state, "error", error=service.INTERRUPTED)
                raise
            ids = await state.store_partial() if state.store_partial is not None else []
            await self._end(run_id, session_id, "run.cancelled", {"message_ids": ids}, state, "cancelled", message_ids=ids)
        except ChatkeepError as exc:
            await self._end(run_id, session_id, "run.error", {"error": exc.message, "code": exc.code}, state, "error", error=exc.message)
        except Exception:
            log.exception("run %s failed", run_id)
            await self._end(run_id, session_id, "run.error", {"error": "internal error", "code": "internal_error"}, state, "error", error="internal error")
        finally:
            supervisor.cancel()
            self._tasks.pop(run_id, None)
            self._cancel_requested.discard(run_id)

    async def _delta(self, state: _Progress, text: str) -> None:
        event = await self.broker.publish(state.stream, "message.delta", {"content": text})
        state.advance(event.id, text, self.llm.tokens.count_text(text))

    async def _chat(
        self, principal: Principal, session_id: str, data: RunCreate, model: str, state: _Progress
    ) -> tuple[list[str], str | None]:
        """The built-in chat agent: the gateway's model call with the session's history."""
        gateway = self.gateway()
        request = ChatCompletionRequest(model=model, messages=data.input, session_id=session_id, max_tokens=data.max_tokens, stream=True)
        turn = await gateway.prepare(principal, request, session_id=None, idempotency_key=None)
        assert isinstance(turn, Turn)
        chunks, accumulator = await gateway.start_stream(turn)

        async def store_partial() -> list[str]:
            return (await gateway.finish_stream(turn, accumulator, finish_reason="cancelled"))["message_ids"]

        state.store_partial = store_partial
        async for chunk in chunks:
            accumulator.add(chunk)
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text and choice.get("index", 0) == 0:
                    await self._delta(state, text)
        state.store_partial = None
        body = await gateway.finish_stream(turn, accumulator)
        return body["message_ids"], accumulator.message()["content"]

    async def _graph(
        self, principal: Principal, session_id: str, data: RunCreate, state: _Progress
    ) -> tuple[list[str], str | None]:
        """A LangGraph agent: the checkpointer stores the graph's messages in the session."""
        async with session_scope(self.database, write=False) as db:
            before = (await sessions.get_row(db, principal, session_id)).message_count

        async def store_partial() -> list[str]:
            partial = "".join(state.texts)
            if not partial:
                return []
            reply = MessageIn(role="assistant", content=partial, metadata={"finish_reason": "cancelled"})
            async with session_scope(self.database) as db:
                return [m.id for m in await sessions.append_messages(db, principal.owner_id, session_id, [reply])]

        state.store_partial = store_partial
        messages = [m.model_dump(exclude_none=True) for m in data.input]
        async for text in self.agents.stream(data.agent, messages, session_id=session_id, owner_id=principal.owner_id):
            await self._delta(state, text)
        state.store_partial = None
        async with session_scope(self.database, write=False) as db:
            query = MessageQuery(limit=1000, after=before, include_tools=True)
            added = (await sessions.list_messages(db, principal, session_id, query)).data
        final = next((m.content for m in reversed(added) if m.role == "assistant" and isinstance(m.content, str) and m.content), None)
        return [m.id for m in added], final

    async def _heartbeat(self, run_id: str, state: _Progress) -> None:
        async with session_scope(self.database) as db:
            await service.heartbeat(db, run_id, cursor=state.cursor, tokens=state.tokens, settings=self.settings)

    async def _end(
        self,
        run_id: str,
        session_id: str,
        event_type: str,
        data: dict[str, Any],
        state: _Progress,
        status: str,
        *,
        error: str | None = None,
        message_ids: list[str] | None = None,
    ) -> None:
        """Record the outcome with the terminal event's id, then publish that event: a client that
        sees it finds the run ended at that cursor. Then the stream expires after the retention."""
        stream = stream_key(run_id)
        terminal_id = next_event_id(state.cursor, int(time.time() * 1000))
        async with session_scope(self.database) as db:
            ended = await service.finish(
                db, run_id, session_id, status, cursor=terminal_id, tokens=state.tokens, error=error, message_ids=message_ids
            )
        if ended:
            try:
                await self.broker.publish(stream, event_type, data, event_id=terminal_id)
            except EventIdTaken:  # another event came first (e.g. the clock stepped back)
                event = await self.broker.publish(stream, event_type, data)
                async with session_scope(self.database) as db:
                    await service.record_cursor(db, run_id, event.id)
        await self.broker.expire(stream, self.settings.run_event_retention_seconds)


class _Progress:
    """What a run has produced so far, when it last reported it, and how to keep a partial reply."""

    def __init__(self, stream: str, cursor: str) -> None:
        self.stream = stream
        self.cursor = cursor  # the last event published
        self.tokens = 0
        self.texts: list[str] = []
        self.store_partial: Callable[[], Awaitable[list[str]]] | None = None
        self._last_beat = time.monotonic()

    def advance(self, cursor: str, text: str, tokens: int) -> None:
        self.cursor = cursor
        self.texts.append(text)
        self.tokens += tokens

    def beat_due(self, interval: float) -> bool:
        now = time.monotonic()
        if now - self._last_beat < interval:
            return False
        self._last_beat = now
        return True
