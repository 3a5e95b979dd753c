"""HTTP routes for runs, their event streams, and the front-end status endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse

from chatkeep.errors import InvalidInput
from chatkeep.http.deps import CurrentPrincipal, Db, SettingsDep
from chatkeep.http.docs import errors
from chatkeep.http.params import Paging
from chatkeep.http.routing import JSONRoute
from chatkeep.pagination import Page
from chatkeep.runs import service
from chatkeep.runs.executor import RunExecutor, stream_key
from chatkeep.runs.schemas import TERMINAL_EVENTS, ActiveSession, Run, RunCreate, TaskStatus, event_frame
from chatkeep.streams import Broker, StreamGone
from chatkeep.streams.broker import valid_cursor

router = APIRouter(prefix="/v1/sessions/{session_id}", tags=["runs"], responses=errors(401, 404, 422), route_class=JSONRoute)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
EVENTS_DOC = {
    200: {
        "description": "`text/event-stream`: `id:` (the cursor), `event:` (run.started, message.delta, "
        "message.completed, run.completed, run.error, run.cancelled) and JSON `data:`.",
        "content": {"text/event-stream": {}},
    },
    410: {"description": "The run's events are past their retention (its messages remain)."},
}


def _executor(request: Request) -> RunExecutor:
    return request.app.state.runs


async def _frames(broker: Broker, run_id: str, cursor: str | None, keepalive: float) -> AsyncIterator[bytes]:
    try:
        async for event in broker.follow(stream_key(run_id), cursor, terminal=TERMINAL_EVENTS, idle=keepalive):
            yield b": keep-alive\n\n" if event is None else event_frame(event.id, event.type, event.data)
    except StreamGone:
        return


def _event_stream(request: Request, run_id: str, cursor: str | None) -> StreamingResponse:
    executor = _executor(request)
    frames = _frames(executor.broker, run_id, cursor, executor.settings.sse_keepalive_seconds)
    return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/runs", status_code=status.HTTP_202_ACCEPTED, responses={**errors(409), **EVENTS_DOC})
async def create_run(
    session_id: str,
    body: RunCreate,
    request: Request,
    principal: CurrentPrincipal,
    accept: Annotated[str | None, Header()] = None,
) -> Run:
    """Start a background run. It lives on when the client goes away. With `"stream": true` (or
    `Accept: text/event-stream`) the response is the run's event stream; otherwise 202 + the run."""
    run = await _executor(request).start(principal, session_id, body)
    if body.stream or "text/event-stream" in (accept or ""):
        return _event_stream(request, run.id, None)  # type: ignore[return-value]
    return JSONResponse(run.model_dump(mode="json"), status_code=202)  # type: ignore[return-value]


@router.get("/runs")
async def list_runs(session_id: str, db: Db, principal: CurrentPrincipal, paging: Paging) -> Page[Run]:
    """The session's runs, newest first."""
    return await service.list_runs(db, principal, session_id, limit=paging.limit, offset=paging.offset)


@router.get("/runs/{run_id}")
async def get_run(session_id: str, run_id: str, db: Db, principal: CurrentPrincipal) -> Run:
    return await service.get(db, principal, session_id, run_id)


@router.get("/runs/{run_id}/events", responses=EVENTS_DOC)
async def run_events(
    session_id: str,
    run_id: str,
    request: Request,
    db: Db,
    principal: CurrentPrincipal,
    cursor: Annotated[str | None, Query(max_length=40, description="Replay events after this id.")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
):
    """The run's events: replayed after `cursor` (or `Last-Event-ID`), then live, ending after
    the terminal event. No gap, no duplicate, from any server process."""
    await service.get(db, principal, session_id, run_id)
    after = cursor or last_event_id
    if after is not None and not valid_cursor(after):
        raise InvalidInput("cursor is not an event id", code="invalid_cursor", field="cursor")
    if not await _executor(request).broker.exists(stream_key(run_id)):
        raise StreamGone("this run's events have expired; its messages remain in the session", run_id=run_id)
    return _event_stream(request, run_id, after)


@router.post("/runs/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_run(session_id: str, run_id: str, request: Request, principal: CurrentPrincipal) -> Run:
    """Stop the run within a second, from any server process; the partial reply is stored."""
    return await _executor(request).cancel(principal, session_id, run_id)


@router.get("/active-session", responses={404: {"description": '`{"error": "No active session found", "conversationId": id}`'}})
async def active_session(session_id: str, db: Db, principal: CurrentPrincipal, settings: SettingsDep) -> ActiveSession:
    """The session's running run, else its latest run within the event retention."""
    return await service.active_session(db, principal, session_id, settings)


@router.get("/task-status", responses={404: {"description": '`{"error": "No background task found", "conversationId": id}`'}})
async def task_status(session_id: str, db: Db, principal: CurrentPrincipal, settings: SettingsDep) -> TaskStatus:
    return await service.task_status(db, principal, session_id, settings)
