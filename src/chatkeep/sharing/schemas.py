"""Wire shapes for share links and forks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chatkeep.sessions.schemas import Role


class ShareCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{}, {"until_message_id": "0193a5e0-8a2c-7001-8000-0a1b2c3d4e5f"}]},
    )

    until_message_id: str | None = Field(
        default=None,
        max_length=128,
        description="Share up to the last assistant reply at or before this message (default: the latest reply).",
    )


class Share(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "share_id": "shr_Jx3kQ0c9mT2vB8nL5pR7sW1yZ4aD6fG0",
                    "url": "/v1/shared/shr_Jx3kQ0c9mT2vB8nL5pR7sW1yZ4aD6fG0",
                    "until_message_id": "0193a5e0-8a2c-7001-8000-0a1b2c3d4e5f",
                    "created_at": "2026-11-22T10:00:00Z",
                }
            ]
        }
    )

    share_id: str
    url: str
    until_message_id: str
    created_at: datetime


class SharedSession(BaseModel):
    """What anyone with the link sees: no owner, no session id, no metadata."""

    share_id: str
    title: str | None
    until_message_id: str
    message_count: int = Field(description="Messages up to the boundary (tool traffic included).")
    created_at: datetime


class SharedMessage(BaseModel):
    id: str
    seq: int
    role: Role
    content: str | list[dict[str, Any]] | None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict, description='Message metadata without private keys (`private`, and keys starting with "_").'
    )
    created_at: datetime


class ForkCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{}, {"until_message_id": "0193a5e0-8a2c-7001-8000-0a1b2c3d4e5f", "title": "My take"}]},
    )

    until_message_id: str | None = Field(default=None, max_length=128, description="Copy up to this message (default: all).")
    title: str | None = Field(default=None, description='Default: "<title> (fork)".')


class SharedForkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}, {"title": "Continuing"}]})

    title: str | None = Field(default=None, description='Default: "<title> (fork)".')
