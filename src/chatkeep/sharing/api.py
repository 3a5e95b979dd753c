"""HTTP routes for share links and forks: parse, call the service, return a schema."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from chatkeep.errors import InvalidInput
from chatkeep.http.deps import CurrentPrincipal, Db, SettingsDep
from chatkeep.http.docs import errors
from chatkeep.http.params import Paging
from chatkeep.http.routing import JSONRoute
from chatkeep.pagination import Page
from chatkeep.sessions.schemas import MAX_SEQ, ChatSession, MessageQuery
from chatkeep.sharing import service
from chatkeep.sharing.schemas import ForkCreate, Share, ShareCreate, SharedForkCreate, SharedMessage, SharedSession

router = APIRouter(prefix="/v1", tags=["sharing"], responses=errors(404, 422), route_class=JSONRoute)


async def _optional_body(request: Request, body: object | None) -> None:
    if body is None and (await request.body()).strip():
        raise InvalidInput("the body must be a JSON object", field="body")


@router.post("/sessions/{session_id}/share", responses=errors(401))
async def share_session(
    request: Request, session_id: str, db: Db, principal: CurrentPrincipal, body: ShareCreate | None = None
) -> Share:
    """Share the session up to the last assistant reply at or before `until_message_id` (default:
    the latest reply). Sharing again moves the boundary; the link stays the same."""
    await _optional_body(request, body)
    until = body.until_message_id if body else None
    return await service.share(db, principal, session_id, until, base_url=str(request.base_url))


@router.get("/sessions/{session_id}/share", responses=errors(401))
async def get_session_share(request: Request, session_id: str, db: Db, principal: CurrentPrincipal) -> Share:
    """The session's share link, if it has one."""
    return await service.get_share(db, principal, session_id, base_url=str(request.base_url))


@router.delete("/sessions/{session_id}/share", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401))
async def revoke_session_share(session_id: str, db: Db, principal: CurrentPrincipal) -> Response:
    """Revoke the share link: it answers 404 from now on."""
    await service.revoke(db, principal, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/sessions/{session_id}/fork", status_code=status.HTTP_201_CREATED, responses=errors(401, 413))
async def fork_session(
    request: Request, session_id: str, db: Db, principal: CurrentPrincipal, settings: SettingsDep, body: ForkCreate | None = None
) -> ChatSession:
    """A new session of yours that starts as a copy of this one up to `until_message_id` (default: all)."""
    await _optional_body(request, body)
    return await service.fork(db, principal, session_id, body or ForkCreate(), settings)


@router.get("/shared/{share_id}")
async def get_shared(share_id: str, db: Db) -> SharedSession:
    """A shared conversation's title and boundary. Needs no credentials."""
    return await service.get_shared(db, share_id)


@router.get("/shared/{share_id}/messages")
async def list_shared_messages(
    share_id: str,
    db: Db,
    paging: Paging,
    after: Annotated[int | None, Query(ge=0, le=MAX_SEQ, description="Only messages with seq > after.")] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_SEQ, description="Only messages with seq < before.")] = None,
    order: Literal["asc", "desc"] = "asc",
    include_tools: Annotated[bool, Query(description="Include tool calls and tool results.")] = False,
) -> Page[SharedMessage]:
    """The shared messages, up to the boundary only. Needs no credentials."""
    query = MessageQuery(
        limit=paging.limit, offset=paging.offset, after=after, before=before, order=order, include_tools=include_tools
    )
    return await service.list_shared_messages(db, share_id, query, cursor=paging.cursor)


@router.post("/shared/{share_id}/fork", status_code=status.HTTP_201_CREATED, responses=errors(401))
async def fork_shared(
    request: Request, share_id: str, db: Db, principal: CurrentPrincipal, settings: SettingsDep, body: SharedForkCreate | None = None
) -> ChatSession:
    """Continue a shared conversation as your own: a copy up to the share's boundary."""
    await _optional_body(request, body)
    return await service.fork_shared(db, principal, share_id, body or SharedForkCreate(), settings)
