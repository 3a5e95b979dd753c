"""One chat turn: build the context, call the model outside any transaction, store the turn.

A turn is prepared in a short read transaction, the model is called with no transaction open
(a slow model never holds a database lock), and the new messages and the reply are stored in
one write transaction afterwards. A failed call stores nothing, so a client can just retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.auth.principal import Principal
from chatkeep.background import BackgroundTasks
from chatkeep.config import Settings
from chatkeep.db import Database, session_scope
from chatkeep.db.tables import ChatSessionRow, MessageRow
from chatkeep.errors import ChatkeepError, InvalidInput
from chatkeep.gateway.context import BuiltContext, budget_for, build_context, to_openai
from chatkeep.gateway.schemas import ChatCompletionRequest, ContextView
from chatkeep.gateway.streaming import DONE, ReplyAccumulator, completion_as_chunks, sse
from chatkeep.idempotency import service as idempotency
from chatkeep.ids import new_id
from chatkeep.llm.models import LLM, ModelSpec
from chatkeep.llm.tokens import TOKENS_PER_MESSAGE
from chatkeep.sessions import service as sessions
from chatkeep.sessions.schemas import MessageIn, SessionCreate
from chatkeep.text import content_text

log = logging.getLogger("chatkeep.gateway")

SUMMARY_INSTRUCTIONS = (
    "You condense conversations. Write a concise summary of the conversation below that keeps "
    "every fact, decision, name, number and open question an assistant would need to continue it. "
    "Write only the summary."
)


@dataclass
class Turn:
    """Everything decided before the model is called."""

    principal: Principal
    spec: ModelSpec
    payload: dict[str, Any]
    # None for a plain proxy call: nothing is stored.
    session_id: str | None = None
    create_session: bool = False
    new_messages: list[MessageIn] = field(default_factory=list)
    summary: MessageIn | None = None
    # Refresh the session's summary after storing (summarization is on).
    refresh_summary: bool = False
    message_ids: list[str] = field(default_factory=list)
    idempotency_key: str | None = None
    fingerprint: str | None = None

    @property
    def stored(self) -> bool:
        return self.session_id is not None

    def annotate(self, body: dict[str, Any]) -> dict[str, Any]:
        """The response plus chatkeep's extra top-level fields."""
        if self.stored:
            body["session_id"] = self.session_id
            body["message_ids"] = self.message_ids
        return body


@dataclass(frozen=True, slots=True)
class Window:
    context: BuiltContext
    history: list[MessageRow]
    summary: str | None
    # Messages outside the context and not yet in the summary (only when summarization is on).
    dropped: list[dict[str, Any]]
    budget: int


@dataclass
class Replay:
    """A stored response for a retried Idempotency-Key."""

    body: dict[str, Any]


def _to_stored_message(message: dict[str, Any], index: int) -> MessageIn:
    role = "system" if message["role"] == "developer" else message["role"]
    try:
        return MessageIn(
            role=role,
            content=message.get("content"),
            name=message.get("name"),
            tool_calls=message.get("tool_calls"),
            tool_call_id=message.get("tool_call_id"),
        )
    except ValidationError as exc:
        detail = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise InvalidInput(f"messages[{index}]: {detail}", code="invalid_message", field=f"messages[{index}]") from None


def _summary_request(previous: str | None, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    transcript = "\n".join(f"{m['role']}: {content_text(m.get('content'))}" for m in rows)
    prompt = (f"Summary so far:\n{previous}\n\n" if previous else "") + f"New messages:\n{transcript}"
    return [{"role": "system", "content": SUMMARY_INSTRUCTIONS}, {"role": "user", "content": prompt}]


def _usage(spec: ModelSpec, llm: LLM, usage: dict[str, Any] | None, context: list[dict[str, Any]], reply: dict[str, Any]) -> tuple[int, int, float]:
    """Tokens and cost of a call: the upstream's reported usage, else our own count."""
    if usage and isinstance(usage.get("prompt_tokens"), int) and isinstance(usage.get("completion_tokens"), int):
        prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
    else:
        prompt = llm.tokens.count_messages(context)
        completion = llm.tokens.count_message(reply) - TOKENS_PER_MESSAGE
    return prompt, completion, spec.cost(prompt, completion)


class Gateway:
    """The chat-turn use cases; built per request from the app's long-lived parts."""

    def __init__(self, database: Database, llm: LLM, background: BackgroundTasks, settings: Settings) -> None:
        self.database = database
        self.llm = llm
        self.background = background
        self.settings = settings

    # --- preparing ---------------------------------------------------------------------------

    async def prepare(
        self, principal: Principal, request: ChatCompletionRequest, *, session_id: str | None, idempotency_key: str | None
    ) -> Turn | Replay:
        raw_messages = [m.model_dump(exclude_none=True) for m in request.messages]
        session_id = request.session_id or session_id
        store = session_id is not None or bool(request.store)
        if store and request.n not in (None, 1):
            raise InvalidInput("n must be 1 when the turn is stored (session_id or store)", field="n")
        new_messages = [_to_stored_message(m, i) for i, m in enumerate(raw_messages)] if store else []
        fingerprint = None
        if store and idempotency_key is not None:
            fingerprint = idempotency.fingerprint("chat", session_id or "", request.model_dump(mode="json", exclude_none=True))

        async with session_scope(self.database, write=False) as db:
            if fingerprint is not None:
                stored = await idempotency.lookup(db, principal.owner_id, idempotency_key, fingerprint)
                if stored is not None:
                    return Replay(stored)
            if session_id is None:
                model = request.model
                if model is None and store:
                    model = (await sessions.defaults_for(db, principal, self.settings))["model"]
                spec = self.llm.resolve(model or self.settings.default_model)
                turn = Turn(principal, spec, self._payload(request, spec, raw_messages, None))
                if store:
                    turn.session_id, turn.create_session = new_id(), True
            else:
                session = await sessions.get_row(db, principal, session_id, sessions.Access.WRITE)
                spec = self.llm.resolve(request.model or session.model)
                context, summary = await self._context(db, session, spec, request, raw_messages)
                turn = Turn(principal, spec, self._payload(request, spec, context.messages, session), session_id=session.id)
                turn.summary = summary
                turn.refresh_summary = session.summarization
        turn.new_messages = new_messages
        turn.message_ids = [new_id() for _ in range(len(new_messages) + 1)] if store else []
        turn.idempotency_key, turn.fingerprint = idempotency_key, fingerprint
        return turn

    async def _window(
        self,
        db: AsyncSession,
        session: ChatSessionRow,
        spec: ModelSpec,
        *,
        limit: int,
        reply_tokens: int | None,
        new_messages: list[dict[str, Any]],
    ) -> Window:
        """The context for a call, and the messages that fell out of it since the last summary."""
        budget = budget_for(
            spec, reply_tokens, reserve=self.settings.default_reply_reserve_tokens, margin=self.settings.context_margin_tokens
        )
        summary_row = await sessions.current_summary(db, session)
        summary = summary_row.content if summary_row else None
        covered = int((summary_row.metadata_ or {}).get("through_seq", 0)) if summary_row else 0
        history = await sessions.history_for_model(db, session, limit)
        context = build_context(
            self.llm.tokens, session=session, summary=summary, history=history, new_messages=new_messages, budget=budget,
            note=self._note(session),
        )
        dropped: list[dict[str, Any]] = []
        if session.summarization and context.first_kept_seq - 1 > covered:
            rows = await sessions.messages_between(
                db, session.id, covered, context.first_kept_seq, self.settings.summary_max_input_messages
            )
            dropped = [to_openai(r) for r in rows]
        return Window(context, history, summary, dropped, budget)

    async def _context(
        self,
        db: AsyncSession,
        session: ChatSessionRow,
        spec: ModelSpec,
        request: ChatCompletionRequest,
        new_messages: list[dict[str, Any]],
    ) -> tuple[BuiltContext, MessageIn | None]:
        """The context of this call; messages that fell out unsummarised are summarised first.
        (Usually the summary was already refreshed after the previous turn.)"""
        limit = request.max_history_messages if request.max_history_messages is not None else session.max_history_messages
        window = await self._window(
            db, session, spec, limit=limit, reply_tokens=request.reply_tokens or session.max_tokens, new_messages=new_messages
        )
        if not window.dropped:
            return window.context, None
        summary = await self._summarize(spec, window.summary, window.dropped, through_seq=window.context.first_kept_seq - 1)
        context = build_context(
            self.llm.tokens,
            session=session,
            summary=summary.content,
            history=window.history,
            new_messages=new_messages,
            budget=window.budget,
            note=self._note(session),
        )
        return context, summary

    def _note(self, session: ChatSessionRow) -> str | None:
        """The system note of a fork of another user's conversation (None: no note)."""
        return self.settings.fork_note or None if session.forked_from_other_user else None

    async def _refresh_summary(self, principal: Principal, session_id: str) -> None:
        """After a stored turn: summarise what the next call will no longer see, so the next call
        need not wait for it and GET …/context shows exactly what it will send."""
        async with session_scope(self.database, write=False) as db:
            session = await sessions.get_row(db, principal, session_id)
            spec = self.llm.resolve(session.model)
            window = await self._window(
                db, session, spec, limit=session.max_history_messages, reply_tokens=session.max_tokens, new_messages=[]
            )
        if not window.dropped:
            return
        try:
            summary = await self._summarize(spec, window.summary, window.dropped, through_seq=window.context.first_kept_seq - 1)
        except ChatkeepError as exc:  # the turn is stored; the next call will try again
            log.warning("summary refresh failed: %s", exc.code)
            return
        async with session_scope(self.database) as db:
            await sessions.store_summary(db, principal.owner_id, session_id, summary)

    async def _summarize(
        self, spec: ModelSpec, previous: str | None, rows: list[dict[str, Any]], *, through_seq: int
    ) -> MessageIn:
        """Condense messages that fell out of the window (plus the old summary) into a new summary,
        with `summary_model` if configured, else the conversation's own model."""
        if self.settings.summary_model:
            spec = self.llm.resolve(self.settings.summary_model)
        messages = _summary_request(previous, rows)
        started = time.perf_counter()
        response = await self.llm.client(spec).complete(spec, {"messages": messages})
        reply = response["choices"][0].get("message") or {}
        prompt, completion, cost = _usage(spec, self.llm, response.get("usage"), messages, reply)
        return MessageIn(
            role="system",
            content=content_text(reply.get("content")) or "(empty summary)",
            model=spec.name,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=cost,
            response_time_ms=round((time.perf_counter() - started) * 1000),
            metadata={"through_seq": through_seq},
        )

    def _payload(
        self,
        request: ChatCompletionRequest,
        spec: ModelSpec,
        messages: list[dict[str, Any]],
        session: ChatSessionRow | None,
    ) -> dict[str, Any]:
        payload = {**request.upstream_fields(), "model": spec.upstream_model, "messages": messages}
        if session is not None:
            if "temperature" not in payload and session.temperature is not None:
                payload["temperature"] = session.temperature
            if request.reply_tokens is None and session.max_tokens is not None:
                payload["max_tokens"] = session.max_tokens
        return payload

    # --- storing -----------------------------------------------------------------------------

    async def _store(self, turn: Turn, reply: dict[str, Any], usage: tuple[int, int, float], timing: dict[str, int], finish_reason: str | None, response: dict[str, Any]) -> dict[str, Any]:
        """Store the turn; returns the response body to send (the first one, on a lost race)."""
        prompt, completion, cost = usage
        metadata: dict[str, Any] = {"finish_reason": finish_reason}
        if "time_to_first_token_ms" in timing:
            metadata["time_to_first_token_ms"] = timing["time_to_first_token_ms"]
        # Built without validation: a model may legitimately return an empty reply.
        stored_reply = MessageIn.model_construct(
            role="assistant",
            content=reply.get("content") or "",
            tool_calls=reply.get("tool_calls") or None,
            model=turn.spec.name,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=cost,
            response_time_ms=timing["response_time_ms"],
            metadata=metadata,
        )
        body = turn.annotate(response)
        async with session_scope(self.database) as db:
            if turn.fingerprint is not None:
                first = await idempotency.claim(db, turn.principal.owner_id, turn.idempotency_key, turn.fingerprint)
                if first is not None:
                    return first
            owner = turn.principal.owner_id
            if turn.create_session:
                await sessions.create(db, turn.principal, SessionCreate(id=turn.session_id, model=turn.spec.name), self.settings)
            if turn.summary is not None:
                await sessions.store_summary(db, owner, turn.session_id, turn.summary)
            await sessions.append_messages(db, owner, turn.session_id, [*turn.new_messages, stored_reply], ids=turn.message_ids)
            if turn.fingerprint is not None:
                await idempotency.record(db, turn.principal.owner_id, turn.idempotency_key, 200, body)
        return body

    # --- calling -----------------------------------------------------------------------------

    async def complete(self, turn: Turn) -> dict[str, Any]:
        started = time.perf_counter()
        response = await self.llm.client(turn.spec).complete(turn.spec, {**turn.payload, "stream": False})
        elapsed = round((time.perf_counter() - started) * 1000)
        if not turn.stored:
            return response
        choice = response["choices"][0]
        reply = choice.get("message") or {}
        usage = _usage(turn.spec, self.llm, response.get("usage"), turn.payload["messages"], reply)
        body = await self._store(turn, reply, usage, {"response_time_ms": elapsed}, choice.get("finish_reason"), response)
        if turn.refresh_summary:
            await self._refresh_summary(turn.principal, turn.session_id)
        return body

    async def start_stream(self, turn: Turn) -> tuple[AsyncIterator[dict[str, Any]], ReplyAccumulator]:
        """Open the model's stream (HTTP errors surface now) and an accumulator for its reply."""
        payload = {**turn.payload, "stream": True, "stream_options": {**(turn.payload.get("stream_options") or {}), "include_usage": True}}
        accumulator = ReplyAccumulator()
        chunks = await self.llm.client(turn.spec).open_stream(turn.spec, payload)
        return chunks, accumulator

    async def finish_stream(
        self, turn: Turn, accumulator: ReplyAccumulator, *, finish_reason: str | None = None
    ) -> dict[str, Any]:
        """Store a streamed turn: after its stream ended, or with what arrived before a cancel."""
        finish_reason = finish_reason or accumulator.finish_reason
        timing = {"response_time_ms": round((time.perf_counter() - accumulator.started) * 1000)}
        if accumulator.first_token_ms is not None:
            timing["time_to_first_token_ms"] = accumulator.first_token_ms
        reply = accumulator.message()
        usage = _usage(turn.spec, self.llm, accumulator.usage, turn.payload["messages"], reply)
        response = {"object": "chat.completion", "model": turn.spec.name, "choices": [{"index": 0, "message": reply, "finish_reason": finish_reason}]}
        body = await self._store(turn, reply, usage, timing, finish_reason, response)
        if turn.refresh_summary:
            await self._refresh_summary(turn.principal, turn.session_id)
        return body

    async def open_stream(self, turn: Turn, *, client_wants_usage: bool) -> AsyncIterator[bytes]:
        """Start the model's stream now (errors surface as HTTP statuses); relay it from a
        background task that stores the turn even if the client goes away."""
        chunks, accumulator = await self.start_stream(turn)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.background.spawn(self._pump(turn, chunks, accumulator, queue, client_wants_usage))
        return self._drain(queue)

    async def _pump(
        self,
        turn: Turn,
        chunks: AsyncIterator[dict[str, Any]],
        accumulator: ReplyAccumulator,
        queue: asyncio.Queue[bytes | None],
        client_wants_usage: bool,
    ) -> None:
        first = True
        try:
            async for chunk in chunks:
                accumulator.add(chunk)
                usage_only = not chunk.get("choices") and "usage" in chunk
                if usage_only and not client_wants_usage:
                    continue
                if not client_wants_usage:
                    chunk.pop("usage", None)
                finishing = any(c.get("finish_reason") for c in chunk.get("choices") or [])
                if first or finishing:
                    turn.annotate(chunk)
                first = False
                queue.put_nowait(sse(chunk))
            if turn.stored:
                await self.finish_stream(turn, accumulator)
            queue.put_nowait(DONE)
        except ChatkeepError as exc:
            queue.put_nowait(sse({"error": {"message": exc.message, "type": "api_error", "param": None, "code": exc.code}}))
        except Exception:
            log.exception("streamed turn failed")
            queue.put_nowait(sse({"error": {"message": "internal server error", "type": "api_error", "param": None, "code": "internal_error"}}))
        finally:
            queue.put_nowait(None)

    @staticmethod
    async def _drain(queue: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
        while (item := await queue.get()) is not None:
            yield item

    @staticmethod
    async def replay_stream(body: dict[str, Any]) -> AsyncIterator[bytes]:
        for chunk in completion_as_chunks(body):
            yield sse(chunk)
        yield DONE

    # --- inspecting --------------------------------------------------------------------------

    async def context_view(self, db: AsyncSession, principal: Principal, session_id: str, model: str | None) -> ContextView:
        """Exactly what the next call would send, before its new messages."""
        session = await sessions.get_row(db, principal, session_id)
        spec = self.llm.resolve(model or session.model)
        window = await self._window(
            db, session, spec, limit=session.max_history_messages, reply_tokens=session.max_tokens, new_messages=[]
        )
        context = window.context
        return ContextView(
            session_id=session.id,
            model=spec.name,
            context_window=spec.context_window,
            budget=window.budget,
            token_count=context.token_count,
            history_messages=context.history_count,
            # Older messages the call will not send and no summary covers.
            dropped_messages=len(window.dropped) if session.summarization else context.first_kept_seq - 1,
            summary_included=context.summary_included,
            messages=context.messages,
        )
