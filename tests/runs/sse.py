"""A tiny server-sent-events reader for tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class SSE:
    id: str
    type: str
    data: dict


def read_events(response: httpx.Response) -> Iterator[SSE]:
    """Yield events from a streaming response (comments and keep-alives skipped)."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in fields:
                yield SSE(fields.get("id", ""), fields.get("event", "message"), json.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def events(client: httpx.Client, url: str, *, limit: int | None = None, **kwargs) -> list[SSE]:
    """Read a whole stream (or its first `limit` events, then hang up)."""
    found: list[SSE] = []
    with client.stream("GET", url, timeout=30, **kwargs) as response:
        assert response.status_code == 200, response.read()
        for event in read_events(response):
            found.append(event)
            if limit is not None and len(found) >= limit:
                break
    return found
