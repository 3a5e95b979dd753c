"""Wire shapes of runs, their events, and the front-end contract (camelCase, epoch ms)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from chatkeep.gateway.schemas import ChatMessage
from chatkeep.sessions.schemas import MAX_TOKENS

RunStatus = Literal["pending", "running", "completed", "error", "cancelled"]
ACTIVE_STATUSES = ("pending", "running")
TERMINAL_EVENTS = frozenset({"run.completed", "run.error", "run.cancelled"})


class RunCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"input": [{"role": "user", "content": "Plan three days in Lisbon"}], "stream": True}]},
    )

    input: list[ChatMessage] = Field(min_length=1, description="The new messages of this turn.")
    agent: str = Field(default="chat", min_length=1, max_length=128)
    model: str | None = Field(default=None, max_length=200)
    max_tokens: int | None = Field(default=None, gt=0, le=MAX_TOKENS)
    stream: bool = Field(default=False, description="Answer with the run's event stream instead of the run.")


RUN_EXAMPLE = {
    "id": "0193a5e0-9b3c-7d4e-8f00-6a7b8c9d0e1f",
    "session_id": "0193a5e0-8a2b-7c4d-9e00-5f6a7b8c9d0e",
    "agent": "chat",
    "model": "echo",
    "status": "running",
    "created_at": "2026-11-22T10:00:00Z",
    "started_at": "2026-11-22T10:00:00Z",
    "last_activity_at": "2026-11-22T10:00:02Z",
    "finished_at": None,
    "cursor": "1795312000000-12",
    "error": None,
    "message_ids": [],
}


class Run(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [RUN_EXAMPLE]})

    id: str
    session_id: str
    agent: str
    model: str
    status: RunStatus
    created_at: datetime
    started_at: datetime | None
    last_activity_at: datetime | None
    finished_at: datetime | None
    cursor: str | None
    error: str | None
    message_ids: list[str]


class ActiveSession(BaseModel):
    """GET /v1/sessions/{id}/active-session (the front-end contract)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sessionId": RUN_EXAMPLE["id"],
                    "status": "active",
                    "cursor": "1795312000000-12",
                    "conversationId": RUN_EXAMPLE["session_id"],
                    "startedAt": 1795312000000,
                    "lastActivity": 1795312002000,
                }
            ]
        }
    )

    sessionId: str  # noqa: N815 (the contract's names)
    status: Literal["active", "idle", "completed"]
    cursor: str | None
    conversationId: str  # noqa: N815
    startedAt: int | None  # noqa: N815
    lastActivity: int | None  # noqa: N815


class TaskStatus(BaseModel):
    """GET /v1/sessions/{id}/task-status (the front-end contract)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"isActive": True, "sessionId": RUN_EXAMPLE["id"], "estimatedCompletion": 1795312009000, "conversationId": RUN_EXAMPLE["session_id"]}
            ]
        }
    )

    isActive: bool  # noqa: N815
    sessionId: str  # noqa: N815
    estimatedCompletion: int | None  # noqa: N815
    conversationId: str  # noqa: N815


def event_frame(event_id: str, event_type: str, data: dict[str, Any]) -> bytes:
    """One server-sent event: its id is the cursor a client resumes after."""
    return f"id: {event_id}\nevent: {event_type}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"
