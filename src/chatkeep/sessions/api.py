"""HTTP routes for sessions and messages: parse, call the service, return a schema."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, Query, Request, Response, status

from chatkeep.errors import InvalidInput
from chatkeep.http.deps import CurrentPrincipal, Db, SettingsDep
from chatkeep.http.docs import errors
from chatkeep.http.routing import JSONRoute
from chatkeep.http.params import Paging
from chatkeep.pagination import Page
from chatkeep.sessions import service
from chatkeep.sessions.schemas import (
    AppendBody,
    ChatSession,
    Message,
    MessageList,
    MAX_SEQ,
    MessageQuery,
    SessionCreate,
    SessionFilters,
    SessionUpdate,
)

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=errors(401, 404, 422), route_class=JSONRoute)

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Retrying with the same key returns the first result."),
]


def _metadata_filters(request: Request) -> dict[str, str]:
    filters = {}
    for name, value in request.query_params.multi_items():
        if name.startswith("metadata[") and name.endswith("]") and len(name) > len("metadata[]"):
            filters[name[len("metadata[") : -1]] = value
    return filters


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(409, 413))
async def create_session(
    request: Request, db: Db, principal: CurrentPrincipal, settings: SettingsDep, body: SessionCreate | None = None
) -> ChatSession:
    """Create a session. Every field is optional (no body at all is fine); unset model settings
    come from the user's preferences, then from the server defaults."""
    if body is None and (await request.body()).strip():
        raise InvalidInput("the body must be a JSON object", field="body")
    return await service.create(db, principal, body or SessionCreate(), settings)


@router.get("")
async def list_sessions(
    request: Request,
    db: Db,
    principal: CurrentPrincipal,
    paging: Paging,
    agent: Annotated[str | None, Query(max_length=128)] = None,
    archived: bool = False,
    pinned: bool | None = None,
    deleted: Annotated[bool, Query(description="List the trash (soft-deleted sessions) instead.")] = False,
    busy: Annotated[bool | None, Query(description="Only sessions with (true) or without (false) a run in progress.")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Substring of the title or metadata.")] = None,
) -> Page[ChatSession]:
    """The caller's sessions, pinned first, then most recently updated first.

    Filter on metadata with `metadata[key]=value` (equality on the value's text)."""
    filters = SessionFilters(
        agent=agent,
        archived=archived,
        pinned=pinned,
        deleted=deleted,
        busy=busy,
        q=q,
        metadata=_metadata_filters(request),
    )
    return await service.list_sessions(
        db, principal, filters, limit=paging.limit, offset=paging.offset, cursor=paging.cursor
    )


@router.get("/{session_id}")
async def get_session(session_id: str, db: Db, principal: CurrentPrincipal) -> ChatSession:
    return await service.get(db, principal, session_id)


@router.patch("/{session_id}", responses=errors(413))
@router.put("/{session_id}", responses=errors(413), include_in_schema=False)
async def update_session(
    session_id: str, body: SessionUpdate, db: Db, principal: CurrentPrincipal, settings: SettingsDep
) -> ChatSession:
    """Change title, settings, metadata (replaced whole), `pinned`, `archived`. PUT is accepted too."""
    return await service.update(db, principal, session_id, body, settings)


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(
    session_id: str,
    db: Db,
    principal: CurrentPrincipal,
    hard: Annotated[bool, Query(description="Remove the session and its messages permanently.")] = False,
) -> Response:
    """Soft delete (restorable) by default; `?hard=true` removes everything, permanently."""
    await service.delete(db, principal, session_id, hard=hard)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{session_id}/restore")
async def restore_session(session_id: str, db: Db, principal: CurrentPrincipal) -> ChatSession:
    """Bring a soft-deleted session back."""
    return await service.restore(db, principal, session_id)


@router.post(
    "/{session_id}/messages",
    status_code=status.HTTP_201_CREATED,
    responses=errors(409, 413),
    response_model=Message | MessageList,
)
async def append_messages(
    session_id: str,
    body: Annotated[AppendBody, Body()],
    db: Db,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> Message | MessageList:
    """Append one message (returns it) or `{"messages": [...]}` (returns `{"data": [...]}`)."""
    return await service.append(db, principal, session_id, body, settings, idempotency_key=idempotency_key)


@router.get("/{session_id}/messages")
async def list_messages(
    session_id: str,
    db: Db,
    principal: CurrentPrincipal,
    paging: Paging,
    after: Annotated[int | None, Query(ge=0, le=MAX_SEQ, description="Only messages with seq > after.")] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_SEQ, description="Only messages with seq < before.")] = None,
    order: Literal["asc", "desc"] = "asc",
    include_tools: Annotated[bool, Query(description="Include tool calls and tool results.")] = False,
) -> Page[Message]:
    """Messages in chronological order (or `order=desc`), by offset or keyset (`after`/`before`)."""
    query = MessageQuery(
        limit=paging.limit, offset=paging.offset, after=after, before=before, order=order, include_tools=include_tools
    )
    return await service.list_messages(db, principal, session_id, query, cursor=paging.cursor)


@router.get("/{session_id}/messages/{message_id}")
async def get_message(session_id: str, message_id: str, db: Db, principal: CurrentPrincipal) -> Message:
    return await service.get_message(db, principal, session_id, message_id)
