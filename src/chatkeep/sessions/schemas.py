"""Wire shapes for sessions and messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    computed_field,
    field_validator,
)

from chatkeep.ids import CLIENT_ID_PATTERN

Role = Literal["system", "user", "assistant", "tool"]
# Bounds that keep every integer inside a 32-bit database column.
MAX_TOKENS = 1_000_000_000
MAX_SEQ = 2**31 - 1

SESSION_EXAMPLE = {
    "id": "0193a5e0-8a2b-7c4d-9e00-5f6a7b8c9d0e",
    "title": "Plan a trip to Lisbon",
    "agent": "default",
    "model": "echo",
    "temperature": 0.7,
    "max_tokens": None,
    "system_prompt": "You are a helpful travel agent.",
    "max_history_messages": 20,
    "summarization": False,
    "metadata": {"project": "travel"},
    "pinned": False,
    "archived": False,
    "message_count": 2,
    "last_message_at": "2026-11-22T10:00:05Z",
    "prompt_tokens": 12,
    "completion_tokens": 30,
    "total_tokens": 42,
    "total_cost": 0.00021,
    "created_at": "2026-11-22T10:00:00Z",
    "updated_at": "2026-11-22T10:00:05Z",
    "deleted_at": None,
    "active_run_id": None,
}

MESSAGE_EXAMPLE = {
    "id": "0193a5e0-8a2c-7001-8000-0a1b2c3d4e5f",
    "session_id": SESSION_EXAMPLE["id"],
    "seq": 1,
    "role": "user",
    "content": "Plan a trip to Lisbon for three days",
    "name": None,
    "tool_calls": None,
    "tool_call_id": None,
    "parent_id": None,
    "metadata": {},
    "model": None,
    "prompt_tokens": None,
    "completion_tokens": None,
    "cost": None,
    "response_time_ms": None,
    "created_at": "2026-11-22T10:00:01Z",
}


class SessionSettings(BaseModel):
    """Model settings a session carries (unset ones come from preferences, then server defaults)."""

    model: str | None = Field(default=None, min_length=1, max_length=200)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=MAX_TOKENS)
    system_prompt: str | None = None
    max_history_messages: int | None = Field(default=None, ge=0, le=100_000)
    summarization: bool | None = None


class SessionCreate(SessionSettings):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"title": "Plan a trip to Lisbon", "system_prompt": "You are a helpful travel agent."},
                {"id": "thread-42", "agent": "support-bot", "metadata": {"customer": "acme"}},
            ]
        },
    )

    id: str | None = Field(
        default=None,
        pattern=CLIENT_ID_PATTERN.pattern,
        description="Optional client-chosen id (1–128 chars of A-Z a-z 0-9 . _ : -), e.g. a LangGraph thread id.",
    )
    title: str | None = Field(default=None, validation_alias=AliasChoices("title", "session_name"))
    agent: str = Field(default="default", min_length=1, max_length=128)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SessionUpdate(SessionSettings):
    """A partial update: only the fields present change. `metadata` replaces the whole object."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"title": "Lisbon, 3 days"}, {"pinned": True}, {"archived": True}]},
    )

    title: str | None = Field(default=None, validation_alias=AliasChoices("title", "session_name"))
    metadata: dict[str, Any] | None = None
    pinned: bool | None = None
    archived: bool | None = None

    # Runs only for fields the client sent: these may change but never become null.
    @field_validator("title", "model", "max_history_messages", "summarization", "metadata", "pinned", "archived")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value


class ChatSession(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [SESSION_EXAMPLE]})

    id: str
    title: str | None
    agent: str
    model: str
    temperature: float | None
    max_tokens: int | None
    system_prompt: str | None
    max_history_messages: int
    summarization: bool
    metadata: dict[str, Any]
    pinned: bool
    archived: bool
    message_count: int
    last_message_at: datetime | None
    prompt_tokens: int
    completion_tokens: int
    total_cost: float
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    active_run_id: str | None = Field(default=None, description="The run generating right now, if any.")
    forked_from: dict[str, str] | None = Field(
        default=None, description='A fork: `{"session_id" or "share_id", "message_id"}` it was copied from.'
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ContentPart(BaseModel):
    """One OpenAI-style content part, e.g. `{"type": "text", "text": "…"}`; other keys kept as given."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1, max_length=64)


class MessageIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"role": "user", "content": "Plan a trip to Lisbon for three days"},
                {
                    "role": "assistant",
                    "content": "Day 1: Alfama…",
                    "model": "gpt-4o-mini",
                    "prompt_tokens": 12,
                    "completion_tokens": 30,
                    "cost": 0.00021,
                    "response_time_ms": 850,
                },
            ]
        },
    )

    role: Role
    # Declared before content: content's check needs them.
    tool_calls: list[dict[str, Any]] | None = None
    content: str | list[ContentPart] | None = Field(default=None, validate_default=True)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    tool_call_id: str | None = Field(default=None, min_length=1, max_length=200, validate_default=True)
    parent_id: str | None = Field(default=None, description="Defaults to the session's previous message.")
    metadata: dict[str, Any] = Field(default_factory=dict)
    model: str | None = Field(default=None, max_length=200)
    prompt_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    completion_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    cost: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)
    response_time_ms: int | None = Field(default=None, ge=0, le=MAX_TOKENS)

    # Field validators (not one model validator) so that errors name the offending field.
    @field_validator("tool_calls")
    @classmethod
    def _tool_calls_only_from_assistant(cls, value: list[dict[str, Any]] | None, info: ValidationInfo) -> Any:
        if value is not None:
            if info.data.get("role") != "assistant":
                raise ValueError("only assistant messages may carry tool_calls")
            if not value:
                raise ValueError("must not be an empty list")
        return value

    @field_validator("content")
    @classmethod
    def _content_present(cls, value: str | list[ContentPart] | None, info: ValidationInfo) -> Any:
        empty = value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, list) and not value)
        if empty and not info.data.get("tool_calls"):
            raise ValueError("must not be empty")
        return value

    @field_validator("tool_call_id")
    @classmethod
    def _tool_result_names_its_call(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("role") == "tool" and not value:
            raise ValueError("tool messages need the tool_call_id they answer")
        return value

    @property
    def is_tool_traffic(self) -> bool:
        return self.role == "tool" or bool(self.tool_calls)


class MessageBatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "messages": [
                        {"role": "user", "content": "Hi!"},
                        {"role": "assistant", "content": "Hello, how can I help?"},
                    ]
                }
            ]
        },
    )

    messages: list[MessageIn] = Field(min_length=1)


def _append_shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "messages" in value else "single"


# One message, or {"messages": [...]}: chosen by the presence of "messages", so errors name
# the fields of the shape the client meant (the tags are dropped from error locations).
AppendBody = Annotated[
    Annotated[MessageIn, Tag("single")] | Annotated[MessageBatch, Tag("batch")],
    Discriminator(_append_shape),
]


class Message(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [MESSAGE_EXAMPLE]})

    id: str
    session_id: str
    seq: int
    role: Role
    content: str | list[dict[str, Any]] | None
    name: str | None
    tool_calls: list[dict[str, Any]] | None
    tool_call_id: str | None
    parent_id: str | None
    metadata: dict[str, Any]
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None
    response_time_ms: int | None
    created_at: datetime


class MessageList(BaseModel):
    """The envelope of a batch append."""

    data: list[Message]


class SessionFilters(BaseModel):
    """Filters of `GET /v1/sessions` (besides paging)."""

    agent: str | None = None
    archived: bool = False
    pinned: bool | None = None
    deleted: bool = False
    busy: bool | None = None
    q: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class MessageQuery(BaseModel):
    limit: int
    offset: int = 0
    after: int | None = None
    before: int | None = None
    order: Literal["asc", "desc"] = "asc"
    include_tools: bool = False
