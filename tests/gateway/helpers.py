"""Small helpers shared by the gateway tests (plain functions, no fixtures)."""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from chatkeep.db.engine import sync_url

CHAT = "/v1/chat/completions"


def new_session(client: httpx.Client, **fields: Any) -> str:
    response = client.post("/v1/sessions", json=fields)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def add_messages(client: httpx.Client, sid: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = client.post(f"/v1/sessions/{sid}/messages", json={"messages": messages})
    assert response.status_code == 201, response.text
    return response.json()["data"]


def messages(client: httpx.Client, sid: str) -> list[dict[str, Any]]:
    """Every stored message a client can list (chat and tool traffic), oldest first."""
    response = client.get(f"/v1/sessions/{sid}/messages", params={"include_tools": "true", "limit": 500})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def chat(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post(CHAT, json=body)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


@cache
def _engine(database_url: str) -> Engine:
    return create_engine(sync_url(database_url), poolclass=NullPool)  # holds no connection between reads


def db_rows(database_url: str, sid: str) -> list[dict[str, Any]]:
    """All message rows of a session straight from the database, hidden kinds included."""
    with _engine(database_url).connect() as conn:
        result = conn.execute(
            text("SELECT id, seq, role, kind, content, metadata FROM messages WHERE session_id = :sid ORDER BY seq"),
            {"sid": sid},
        )
        rows = [dict(r._mapping) for r in result]
    for row in rows:
        if isinstance(row["metadata"], str):  # SQLite returns JSON as text
            row["metadata"] = json.loads(row["metadata"])
    return rows


def snapshot(client: httpx.Client, database_url: str, sid: str) -> tuple[Any, ...]:
    """Everything a failed turn must leave untouched: the session, its messages, its hidden rows."""
    session = client.get(f"/v1/sessions/{sid}")
    assert session.status_code == 200, session.text
    return session.json(), messages(client, sid), db_rows(database_url, sid)


def sse_events(response: httpx.Response) -> list[tuple[float, Any]]:
    """(arrival time, parsed data) of every `data:` event of a streamed response; "[DONE]" stays text."""
    events = []
    for line in response.iter_lines():
        if line.startswith("data:"):
            data = line[5:].strip()
            events.append((time.monotonic(), data if data == "[DONE]" else json.loads(data)))
    return events


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.05):
    """Poll until `predicate()` returns something truthy (returned) or the timeout passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error
