"""Server-sent events: folding streamed chunks into one reply, and encoding chunks for clients."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


@dataclass
class ReplyAccumulator:
    """Builds the assistant message from chat.completion.chunk deltas as they pass by."""

    started: float = field(default_factory=time.perf_counter)
    first_token_ms: int | None = None
    texts: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self._first_token()
                self.texts.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                self._first_token()
                slot = self.tool_calls.setdefault(
                    call.get("index", 0), {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
                )
                if call.get("id"):
                    slot["id"] = call["id"]
                if call.get("type"):
                    slot["type"] = call["type"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def _first_token(self) -> None:
        if self.first_token_ms is None:
            self.first_token_ms = round((time.perf_counter() - self.started) * 1000)

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.texts) or None}
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return message


def completion_as_chunks(completion: dict[str, Any]) -> list[dict[str, Any]]:
    """A stored (non-streamed) completion replayed as a stream, for idempotent retries."""
    base = {k: completion.get(k) for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    extras = {k: completion[k] for k in ("session_id", "message_ids") if k in completion}
    choice = completion["choices"][0]
    delta = {k: v for k, v in choice["message"].items() if v is not None}
    return [
        {**base, **extras, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {**base, **extras, "choices": [{"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason")}]},
    ]
