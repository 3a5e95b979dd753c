"""HTTP route of the checkpoint capability: a session's LangGraph thread config."""

from __future__ import annotations

from fastapi import APIRouter

from chatkeep.checkpoint import service
from chatkeep.checkpoint.schemas import ThreadConfig
from chatkeep.http.deps import CurrentPrincipal, Db
from chatkeep.http.docs import errors
from chatkeep.http.routing import JSONRoute

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=errors(401, 404, 422), route_class=JSONRoute)


@router.get("/{session_id}/thread-config")
async def get_thread_config(session_id: str, db: Db, principal: CurrentPrincipal) -> ThreadConfig:
    """The LangGraph config that runs a graph on this session with chatkeep's checkpointer:
    `{"configurable": {"thread_id", "user_id", "model_name", "temperature", "max_tokens"}}`."""
    return await service.get_thread_config(db, principal, session_id)
