"""The wire of the OpenAI-compatible gateway: Chat Completions requests plus chatkeep's fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatkeep.sessions.schemas import MAX_TOKENS

# Our fields; never forwarded to the upstream model.
CHATKEEP_FIELDS = frozenset({"session_id", "store", "max_history_messages"})


class ChatMessage(BaseModel):
    """One message in OpenAI's format; fields we do not know are kept and forwarded."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's Chat Completions request. Unknown fields pass through to the upstream.

    With `session_id`, `messages` are only the NEW messages of this turn: chatkeep prepends the
    session's system prompt, summary and history, and stores the turn.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"model": "echo", "session_id": "0193a5e0-8a2b-7c4d-9e00-5f6a7b8c9d0e", "messages": [{"role": "user", "content": "And on day two?"}]},
                {"model": "echo", "store": True, "stream": True, "messages": [{"role": "user", "content": "Plan three days in Lisbon"}]},
            ]
        },
    )

    model: str | None = Field(default=None, description="Default: the session's model, else the server default.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=MAX_TOKENS)
    max_completion_tokens: int | None = Field(default=None, gt=0, le=MAX_TOKENS)
    session_id: str | None = Field(default=None, description="Continue this stored session (or header X-Chatkeep-Session-Id).")
    store: bool | None = Field(default=None, description="Without session_id: store this turn in a new session.")
    max_history_messages: int | None = Field(default=None, ge=0, le=100_000, description="Override the session's history window.")

    @property
    def reply_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def upstream_fields(self) -> dict[str, Any]:
        """Everything the client sent that the upstream should get (but the messages)."""
        data = self.model_dump(exclude_none=True, exclude={"messages", *CHATKEEP_FIELDS})
        data.pop("stream", None)
        return data


class ContextView(BaseModel):
    """What the next call in a session would send to the model."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session_id": "0193a5e0-8a2b-7c4d-9e00-5f6a7b8c9d0e",
                    "model": "echo",
                    "context_window": 128000,
                    "budget": 126720,
                    "token_count": 42,
                    "history_messages": 2,
                    "dropped_messages": 0,
                    "summary_included": False,
                    "messages": [
                        {"role": "system", "content": "You are a helpful travel agent."},
                        {"role": "user", "content": "Plan three days in Lisbon"},
                        {"role": "assistant", "content": "Day 1: Alfama…"},
                    ],
                }
            ]
        }
    )

    session_id: str
    model: str
    context_window: int
    budget: int
    token_count: int
    history_messages: int
    dropped_messages: int
    summary_included: bool
    messages: list[dict[str, Any]]


class ModelInfo(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "chatkeep"


class ModelList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"object": "list", "data": [{"id": "echo", "object": "model", "created": 0, "owned_by": "chatkeep"}]}]}
    )

    object: Literal["list"] = "list"
    data: list[ModelInfo]


AGENT_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class AgentChatRequest(BaseModel):
    """A browser's chat turn with an agent (`POST /v1/agents/{agent}/chat`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"message": "Plan three days in Lisbon"}, {"message": "Start over", "clear_history": True, "model": "echo"}]},
    )

    message: str = Field(min_length=1, description="The user's message.")
    clear_history: bool = Field(default=False, description="Start a new session instead of continuing the current one.")
    model: str | None = Field(default=None, min_length=1, max_length=200, description="Default: the session's model.")
