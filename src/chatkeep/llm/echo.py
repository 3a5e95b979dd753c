"""The built-in `echo` model: offline, deterministic, streams word by word, reports usage."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from chatkeep.ids import new_token
from chatkeep.llm.tokens import TokenCounter
from chatkeep.text import content_text

if TYPE_CHECKING:
    from chatkeep.llm.models import ModelSpec

ECHO_MODEL = "echo"
_PIECES = re.compile(r"\S+\s*|\s+")


def echo_reply(messages: list[dict[str, Any]]) -> str:
    last_user = next((content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    count = len(messages)
    return f'You said: "{last_user}". I received {count} message{"s" if count != 1 else ""}.'


class EchoClient:
    def __init__(self, tokens: TokenCounter, delay_ms: int = 0) -> None:
        self.tokens = tokens
        self.delay = delay_ms / 1000

    def _usage(self, messages: list[dict[str, Any]], reply: str) -> dict[str, int]:
        prompt = self.tokens.count_messages(messages)
        completion = self.tokens.count_text(reply)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def complete(self, spec: ModelSpec, payload: dict[str, Any]) -> dict[str, Any]:
        reply = echo_reply(payload["messages"])
        return {
            "id": f"chatcmpl-{new_token(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": spec.name,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop", "logprobs": None}
            ],
            "usage": self._usage(payload["messages"], reply),
        }

    async def open_stream(self, spec: ModelSpec, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return self._stream(spec, payload)

    async def _stream(self, spec: ModelSpec, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        reply = echo_reply(payload["messages"])
        base = {"id": f"chatcmpl-{new_token(12)}", "object": "chat.completion.chunk", "created": int(time.time()), "model": spec.name}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

        yield chunk({"role": "assistant", "content": ""})
        for piece in _PIECES.findall(reply):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield chunk({"content": piece})
        yield chunk({}, "stop")
        if (payload.get("stream_options") or {}).get("include_usage"):
            yield {**base, "choices": [], "usage": self._usage(payload["messages"], reply)}
