"""A small, real OpenAI-compatible HTTP server that stands in for the upstream model.

It records every request it receives. The requested model name picks its behaviour:
  fake-*          answers `reply to: <last user text>` (streams word by word when asked)
  fake-tool       answers with a tool call
  fake-500 / fake-429 / fake-400   fails with that status (429 sends Retry-After: 7)
  fake-hang       never answers (the gateway's timeout must fire)
  fake-slow       streams one word every 0.2 s
  fake-drop       streams two words, then closes the connection without [DONE]
  fake-garbage    streams a chunk that is not JSON
  fake-nousage    like fake-*, without usage
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


class FakeUpstream:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        # time.monotonic() at which each streamed event was handed to the server (same clock as
        # the tests: the fake runs in a thread of the test process).
        self.sent_at: list[float] = []
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    def last(self) -> dict[str, Any]:
        return self.requests[-1]

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        model = body.get("model", "")
        if model in ("fake-500", "fake-429", "fake-400"):
            status = int(model.split("-")[1])
            headers = {"Retry-After": "7"} if status == 429 else {}
            return JSONResponse({"error": {"message": f"upstream says {status}", "type": "x"}}, status_code=status, headers=headers)
        if model == "fake-hang":
            await asyncio.sleep(3600)
        text = f"reply to: {last_user_text(body.get('messages', []))}"
        if body.get("stream"):
            return StreamingResponse(self._stream(body, text), media_type="text/event-stream")
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if model == "fake-tool":
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\": \"x\"}"}}
            ]}
        response = {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if model == "fake-tool" else "stop"}],
        }
        if model != "fake-nousage":
            response["usage"] = USAGE
        return JSONResponse(response)

    async def _stream(self, body: dict[str, Any], text: str):
        model = body["model"]
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

        def event(payload: dict[str, Any]) -> bytes:
            self.sent_at.append(time.monotonic())
            return f"data: {json.dumps(payload)}\n\n".encode()

        yield event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        words = text.split(" ")
        for index, word in enumerate(words):
            if model == "fake-slow":
                await asyncio.sleep(0.2)
            if model == "fake-drop" and index == 2:
                raise ConnectionResetError("dropped on purpose")
            if model == "fake-garbage" and index == 1:
                yield b"data: {not json\n\n"
            piece = word if index == 0 else " " + word
            yield event({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        yield event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage") and model != "fake-nousage":
            yield event({**base, "choices": [], "usage": USAGE})
        yield b"data: [DONE]\n\n"
