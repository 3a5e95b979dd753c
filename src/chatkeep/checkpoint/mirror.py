"""LangChain messages of a thread's `messages` channel as chatkeep session messages.

Human and AI messages become `user` / `assistant` messages; AI messages that call tools and tool
results are stored as tool traffic (hidden from message lists unless `include_tools=true`).
System messages and anything else are not mirrored. Each LangChain message is mirrored once,
matched by its id (by its position when it has none); later edits or removals in the graph's
state do not change what was mirrored (session messages are append-only).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ChatMessage, HumanMessage, ToolMessage, convert_to_messages
from pydantic import ValidationError

from chatkeep.sessions.schemas import ContentPart, MessageIn

# Column widths of messages.name / tool_call_id / model.
_SHORT = 200
_ROLES = {"human": "user", "user": "user", "ai": "assistant", "assistant": "assistant"}


def message_key(message: Any, position: int) -> str:
    """What a LangChain message is matched by: its id, else its position in the list."""
    message_id = getattr(message, "id", None) if not isinstance(message, dict) else message.get("id")
    return str(message_id) if message_id else f"#{position}"


def to_message_in(message: Any) -> MessageIn | None:
    """The session message mirroring a LangChain message, or None when it is not mirrored."""
    if isinstance(message, dict):
        try:
            (message,) = convert_to_messages([message])
        except (ValueError, NotImplementedError, TypeError):
            return None
    if not isinstance(message, BaseMessage):
        return None
    metadata = {"langgraph_message_id": message.id} if message.id else {}
    name = _short(message.name)
    if isinstance(message, HumanMessage):
        return _message("user", _content(message.content), name=name, metadata=metadata)
    if isinstance(message, AIMessage):
        usage = message.usage_metadata or {}
        model = message.response_metadata.get("model_name") or message.response_metadata.get("model")
        return _message(
            "assistant",
            _content(message.content),
            name=name,
            metadata=metadata,
            tool_calls=[_tool_call(call) for call in message.tool_calls] or None,
            model=_short(model) if isinstance(model, str) else None,
            prompt_tokens=usage.get("input_tokens"),
            completion_tokens=usage.get("output_tokens"),
        )
    if isinstance(message, ToolMessage):
        return _message(
            "tool",
            _content(message.content),
            name=name,
            metadata=metadata,
            tool_call_id=_short(message.tool_call_id) or "unknown",
        )
    if isinstance(message, ChatMessage) and message.role in _ROLES:
        return _message(_ROLES[message.role], _content(message.content), name=name, metadata=metadata)
    return None


def _message(role: str, content: Any, **fields: Any) -> MessageIn:
    # Built without validation: the graph already ran, and an empty AI reply is still a turn.
    return MessageIn.model_construct(role=role, content=content, **fields)


def _short(value: str | None) -> str | None:
    return value[:_SHORT] if value else None


def _content(content: str | Sequence[Any]) -> str | list[ContentPart]:
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(ContentPart(type="text", text=part))
        elif isinstance(part, dict):
            try:
                parts.append(ContentPart(**part))
            except (ValidationError, TypeError):  # not an OpenAI-style part: kept in the checkpoint only
                continue
    return parts


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    """LangChain's {"name", "args", "id"} as OpenAI's function call (what the gateway sends)."""
    return {
        "id": call.get("id") or "",
        "type": "function",
        "function": {"name": call.get("name", ""), "arguments": json.dumps(call.get("args") or {})},
    }
