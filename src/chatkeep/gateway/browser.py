"""The browser chat endpoint's use case: pick the session a turn goes to, then run it like the
gateway. The session is the caller's current one for the agent (from its cookie) unless the
caller asked for a new one or may not see it."""

from __future__ import annotations

from chatkeep.auth.principal import Principal
from chatkeep.db import session_scope
from chatkeep.errors import NotFound
from chatkeep.gateway.schemas import AgentChatRequest, ChatCompletionRequest, ChatMessage
from chatkeep.gateway.service import Gateway, Turn
from chatkeep.sessions import service as sessions
from chatkeep.sessions.schemas import SessionCreate


async def agent_turn(
    gateway: Gateway, principal: Principal, agent: str, body: AgentChatRequest, current: str | None
) -> Turn:
    session_id = None
    if current and not body.clear_history:
        async with session_scope(gateway.database, write=False) as db:
            try:
                row = await sessions.get_row(db, principal, current)
            except NotFound:
                row = None
            session_id = row.id if row is not None and row.agent == agent else None
    if session_id is None:
        async with session_scope(gateway.database) as db:
            created = await sessions.create(db, principal, SessionCreate(agent=agent, model=body.model), gateway.settings)
            session_id = created.id
    request = ChatCompletionRequest(
        model=body.model, messages=[ChatMessage(role="user", content=body.message)], stream=True, session_id=session_id
    )
    turn = await gateway.prepare(principal, request, session_id=None, idempotency_key=None)
    assert isinstance(turn, Turn)  # no idempotency key: never a replay
    return turn
