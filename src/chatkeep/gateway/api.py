"""OpenAI-compatible routes. Errors here use OpenAI's shape (see http.errors)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from chatkeep.gateway.browser import agent_turn
from chatkeep.gateway.schemas import AGENT_NAME_PATTERN, AgentChatRequest, ChatCompletionRequest, ContextView, ModelInfo, ModelList
from chatkeep.gateway.service import Gateway, Replay
from chatkeep.http import cookies as http_cookies
from chatkeep.http.deps import ChatPrincipal, CurrentPrincipal, Db
from chatkeep.http.docs import errors
from chatkeep.http.routing import JSONRoute

router = APIRouter(tags=["gateway"], route_class=JSONRoute)

SESSION_HEADER = "X-Chatkeep-Session-Id"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def get_gateway(request: Request) -> Gateway:
    state = request.app.state
    return Gateway(state.database, state.llm, state.background, state.settings)


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


@router.post(
    "/v1/chat/completions",
    responses={
        200: {"description": "An OpenAI chat.completion (plus `session_id`, `message_ids`), or an SSE stream of chunks."},
        400: {"description": "Invalid request (OpenAI error shape)"},
        404: {"description": "Unknown session or model"},
        429: {"description": "The upstream model is rate limiting; see Retry-After"},
        502: {"description": "The upstream model failed"},
        504: {"description": "The upstream model timed out"},
    },
)
async def chat_completions(
    body: ChatCompletionRequest,
    principal: CurrentPrincipal,
    gateway: GatewayDep,
    session_header: Annotated[str | None, Header(alias=SESSION_HEADER)] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
):
    """Chat Completions, OpenAI-compatible. With `session_id`, send only the new messages:
    the stored history is injected and the turn is stored. With `store: true` and no session,
    a new session is created. With neither, it is a plain proxy and nothing is stored."""
    turn = await gateway.prepare(principal, body, session_id=session_header, idempotency_key=idempotency_key)
    if isinstance(turn, Replay):
        headers = {SESSION_HEADER: turn.body["session_id"]} if turn.body.get("session_id") else {}
        if body.stream:
            return StreamingResponse(Gateway.replay_stream(turn.body), media_type="text/event-stream", headers={**STREAM_HEADERS, **headers})
        return JSONResponse(turn.body, headers=headers)
    headers = {SESSION_HEADER: turn.session_id} if turn.session_id else {}
    if body.stream:
        wants_usage = bool((body.stream_options or {}).get("include_usage"))
        events = await gateway.open_stream(turn, client_wants_usage=wants_usage)
        return StreamingResponse(events, media_type="text/event-stream", headers={**STREAM_HEADERS, **headers})
    result = await gateway.complete(turn)
    return JSONResponse(result, headers={SESSION_HEADER: result["session_id"]} if result.get("session_id") else {})


@router.get("/v1/models", responses=errors(401))
async def list_models(_: CurrentPrincipal, gateway: GatewayDep) -> ModelList:
    """The configured models, in OpenAI's format."""
    return ModelList(data=[ModelInfo(id=name) for name in gateway.llm.model_names()])


@router.get("/v1/sessions/{session_id}/context", tags=["sessions"], responses=errors(401, 404))
async def session_context(
    session_id: str,
    db: Db,
    principal: CurrentPrincipal,
    gateway: GatewayDep,
    model: Annotated[str | None, Query(max_length=200, description="Default: the session's model.")] = None,
) -> ContextView:
    """Exactly the messages the next call in this session would send, with their token count."""
    return await gateway.context_view(db, principal, session_id, model)


@router.post(
    "/v1/agents/{agent}/chat",
    tags=["browser"],
    responses={200: {"description": "An SSE stream of chat.completion chunks, as the gateway streams them."}, **errors(401, 404, 422)},
)
async def agent_chat(
    agent: Annotated[str, Path(pattern=AGENT_NAME_PATTERN)],
    body: AgentChatRequest,
    request: Request,
    principal: ChatPrincipal,
    gateway: GatewayDep,
) -> StreamingResponse:
    """The browser endpoint: one chat turn with `agent`, streamed (SSE). Continues the session in
    the `<agent>_thread_id` cookie unless `clear_history` (or there is none): then a new session
    starts, titled from the message. With CHATKEEP_ALLOW_ANONYMOUS=true it needs no credentials:
    the caller is the visitor of the signed `chatkeep_visitor` cookie (set when missing), and
    `<agent>_threads_anonymous` lists the visitor's sessions. Sent with a user credential, the
    visitor's sessions are claimed by the user."""
    thread_cookie = agent + http_cookies.THREAD_SUFFIX
    turn = await agent_turn(gateway, principal, agent, body, request.cookies.get(thread_cookie))
    events = await gateway.open_stream(turn, client_wants_usage=False)
    response = StreamingResponse(
        events, media_type="text/event-stream", headers={**STREAM_HEADERS, SESSION_HEADER: turn.session_id}
    )
    max_age = gateway.settings.visitor_cookie_max_age_seconds
    http_cookies.set_cookie(request, response, thread_cookie, turn.session_id, max_age)
    threads_cookie = agent + http_cookies.ANONYMOUS_THREADS_SUFFIX
    if principal.kind == "visitor":
        if getattr(request.state, "new_visitor", False):
            http_cookies.set_visitor(request, response, principal.id)
            threads = []
        else:
            threads = http_cookies.anonymous_threads(request, agent)
        if turn.session_id not in threads:
            threads = [*threads, turn.session_id][-http_cookies.MAX_ANONYMOUS_THREADS :]
        http_cookies.set_cookie(request, response, threads_cookie, ",".join(threads), max_age)
    else:
        if getattr(request.state, "claimed_visitor", None):
            http_cookies.clear_claimed(request, response)
        elif threads_cookie in request.cookies:
            http_cookies.clear_cookie(request, response, threads_cookie)
    return response
