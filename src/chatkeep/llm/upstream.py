"""An OpenAI-compatible upstream over httpx: pooled, streaming, bounded in time, retried on
connection errors; its failures become chatkeep errors (502/504/429 or its own 4xx)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from chatkeep.errors import RateLimited, UpstreamError, UpstreamTimeout

if TYPE_CHECKING:
    from chatkeep.llm.models import ModelSpec


def _error_message(body: bytes, status: int) -> str:
    try:
        parsed = orjson.loads(body)
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
    except orjson.JSONDecodeError:
        pass
    return f"the upstream model answered HTTP {status}"


def _raise_for_status(response: httpx.Response, body: bytes) -> None:
    status = response.status_code
    if status < 400:
        return
    message = _error_message(body, status)
    if status == 429:
        retry_after = response.headers.get("retry-after")
        raise RateLimited(message, code="upstream_rate_limited", headers={"Retry-After": retry_after} if retry_after else None)
    if status >= 500:
        raise UpstreamError(f"upstream model failed: {message}", code="upstream_error")
    raise UpstreamError(message, status=status, code="upstream_rejected")


class UpstreamClient:
    def __init__(self, http: httpx.AsyncClient, retries: int) -> None:
        self.http = http
        self.retries = retries

    def _request(self, spec: ModelSpec, payload: dict[str, Any]) -> httpx.Request:
        headers = {"Content-Type": "application/json"}
        if spec.api_key:
            headers["Authorization"] = f"Bearer {spec.api_key}"
        body = orjson.dumps({**payload, "model": spec.upstream_model})
        return self.http.build_request("POST", f"{spec.base_url.rstrip('/')}/chat/completions", content=body, headers=headers)

    async def _send(self, spec: ModelSpec, payload: dict[str, Any], *, stream: bool) -> httpx.Response:
        """Send, retrying only failures to connect (nothing reached the model, so a retry is safe)."""
        for attempt in range(self.retries + 1):
            try:
                return await self.http.send(self._request(spec, payload), stream=stream)
            except httpx.ConnectError as exc:
                if attempt == self.retries:
                    raise UpstreamError("could not connect to the upstream model", code="upstream_unreachable") from exc
            except httpx.TimeoutException as exc:
                raise UpstreamTimeout("the upstream model did not answer in time") from exc
            except httpx.HTTPError as exc:
                raise UpstreamError(f"upstream request failed: {type(exc).__name__}") from exc
        raise AssertionError("unreachable")

    async def complete(self, spec: ModelSpec, payload: dict[str, Any]) -> dict[str, Any]:
        response = await self._send(spec, {**payload, "stream": False}, stream=False)
        _raise_for_status(response, response.content)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("the upstream model returned invalid JSON") from exc
        if not isinstance(body, dict) or not isinstance(body.get("choices"), list) or not body["choices"]:
            raise UpstreamError("the upstream model returned no choices")
        return body

    async def open_stream(self, spec: ModelSpec, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Start the request now (so HTTP errors surface before any byte is relayed)."""
        response = await self._send(spec, {**payload, "stream": True}, stream=True)
        if response.status_code >= 400:
            body = await response.aread()
            await response.aclose()
            _raise_for_status(response, body)
        return self._chunks(response)

    async def _chunks(self, response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, comments, event: lines
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError as exc:
                    raise UpstreamError("the upstream model sent an invalid stream chunk") from exc
                if isinstance(chunk, dict) and "error" in chunk:
                    raise UpstreamError(f"upstream model failed mid-stream: {_error_message(data.encode(), 502)}")
                yield chunk
            raise UpstreamError("the upstream stream ended without [DONE]")
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("the upstream model stopped sending") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the upstream stream broke: {type(exc).__name__}") from exc
        finally:
            await response.aclose()
