"""Bad input gets a clear 4xx `{"error", "code"}` and changes nothing; other users' sessions are 404;
missing or bad credentials are 401. Over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

# --- helpers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A body sent byte for byte, with this Content-Type (None: no Content-Type header)."""

    body: bytes
    content_type: str | None = "application/json"


def send(client: httpx.Client, method: str, url: str, body: Any = None, headers: dict | None = None, **kw) -> httpx.Response:
    headers = dict(headers or {})
    if isinstance(body, Raw):
        if body.content_type is not None:
            headers["Content-Type"] = body.content_type
        return client.request(method, url, content=body.body, headers=headers, **kw)
    return client.request(method, url, json=body, headers=headers, **kw)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """A JSON error body with a human `error` and a stable `code`."""
    assert response.status_code == status, f"{response.status_code} {response.text[:500]}"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and body["error"].strip(), body
    assert isinstance(body.get("code"), str) and body["code"], body
    if code is not None:
        assert body["code"] == code, body
    return body


def assert_names_field(body: dict, field: str) -> None:
    """The spec: bad input gets `error` + `code` *and the field*."""
    names = ([body["field"]] if "field" in body else []) + [f["field"] for f in body.get("fields", [])]
    assert any(field in name for name in names), f"error does not name the field {field!r}: {body}"


def snapshot(client: httpx.Client, sid: str) -> tuple[dict, dict]:
    """Everything observable about a session: the session itself and every message in it."""
    session = client.get(f"/v1/sessions/{sid}")
    messages = client.get(f"/v1/sessions/{sid}/messages", params={"include_tools": "true", "limit": 500})
    assert session.status_code == 200 and messages.status_code == 200, (session.text, messages.text)
    return session.json(), messages.json()


def all_session_ids(client: httpx.Client) -> list[str]:
    ids = []
    for params in ({}, {"archived": "true"}, {"deleted": "true"}):
        response = client.get("/v1/sessions", params={"limit": 500, **params})
        assert response.status_code == 200, response.text
        ids += [s["id"] for s in response.json()["data"]]
    return sorted(ids)


def b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


OK = {"role": "user", "content": "fine"}
OK_BYTES = json.dumps(OK).encode()
TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
MISSING_ID = "00000000-0000-7000-8000-000000000000"


def msg(**overrides) -> dict:
    return {**OK, **overrides}


def batch(*messages: dict) -> dict:
    return {"messages": list(messages)}


def case(name: str, body: Any, status: int, code: str | None = None, field: str | None = None, headers: dict | None = None):
    return pytest.param(body, status, code, field, headers, id=name)


def resolve(body: Any, settings) -> Any:
    """Bodies whose size depends on the server's limits are written as functions of its settings."""
    return body(settings) if callable(body) else body


@pytest.fixture
def convo(alice) -> str:
    """Alice's session with a title, settings, metadata and two messages."""
    response = alice.post(
        "/v1/sessions", json={"title": "Kept", "temperature": 0.5, "max_history_messages": 5, "metadata": {"k": "v"}}
    )
    assert response.status_code == 201, response.text
    sid = response.json()["id"]
    stored = alice.post(
        f"/v1/sessions/{sid}/messages",
        json=batch({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello", "prompt_tokens": 3}),
    )
    assert stored.status_code == 201, stored.text
    return sid


# --- appending messages ----------------------------------------------------------------------

APPEND_CASES = [
    # Malformed JSON → 400 invalid_json.
    case("truncated JSON", Raw(b'{"role": "user", "content":'), 400, "invalid_json"),
    case("trailing garbage", Raw(OK_BYTES + b" and more"), 400, "invalid_json"),
    case("single quotes", Raw(b"{'role': 'user', 'content': 'x'}"), 400, "invalid_json"),
    case("NaN is not JSON", Raw(b'{"role": "user", "content": "x", "metadata": {"x": NaN}}'), 400, "invalid_json"),
    case("Infinity is not JSON", Raw(b'{"role": "assistant", "content": "x", "cost": Infinity}'), 400, "invalid_json"),
    case("invalid UTF-8", Raw(b'{"role": "user", "content": "\xff\xfe"}'), 400, "invalid_json"),
    # Valid JSON (or no JSON) that is not a message object → 422.
    case("empty body", Raw(b""), 422, "validation_error"),
    case("JSON null", Raw(b"null"), 422, "validation_error"),
    case("JSON array", Raw(b"[" + OK_BYTES + b"]"), 422, "validation_error"),
    case("JSON number", Raw(b"42"), 422, "validation_error"),
    case("JSON string", Raw(b'"hello"'), 422, "validation_error"),
    case("Content-Type text/plain", Raw(OK_BYTES, "text/plain"), 415, "unsupported_media_type"),
    case("form-encoded", Raw(b"role=user&content=x", "application/x-www-form-urlencoded"), 415, "unsupported_media_type"),
    case("no Content-Type", Raw(OK_BYTES, None), 422, "validation_error"),
    # Role.
    case("unknown role", msg(role="robot"), 422, "validation_error", "role"),
    case("missing role", {"content": "x"}, 422, "validation_error", "role"),
    case("role not a string", msg(role=1), 422, "validation_error", "role"),
    # Empty or mistyped content.
    case("empty content", msg(content=""), 422, "validation_error", "content"),
    case("whitespace content", msg(content=" \n\t "), 422, "validation_error", "content"),
    case("empty content list", msg(content=[]), 422, "validation_error", "content"),
    case("null content", msg(content=None), 422, "validation_error", "content"),
    case("missing content", {"role": "user"}, 422, "validation_error", "content"),
    case("content a number", msg(content=42), 422, "validation_error", "content"),
    case("content part without type", msg(content=[{"text": "x"}]), 422, "validation_error", "content"),
    case("content part not an object", msg(content=["x"]), 422, "validation_error", "content"),
    case("content part with empty type", msg(content=[{"type": "", "text": "x"}]), 422, "validation_error", "content"),
    # Tool traffic.
    case("tool result without tool_call_id", {"role": "tool", "content": "42"}, 422, "validation_error", "tool_call_id"),
    case("tool_calls on a user message", msg(tool_calls=[TOOL_CALL]), 422, "validation_error", "tool_calls"),
    case("empty tool_calls", msg(role="assistant", tool_calls=[]), 422, "validation_error", "tool_calls"),
    case("tool_calls not a list", msg(role="assistant", tool_calls=TOOL_CALL), 422, "validation_error", "tool_calls"),
    # Other fields.
    case("empty name", msg(name=""), 422, "validation_error", "name"),
    case("metadata a list", msg(metadata=[1, 2]), 422, "validation_error", "metadata"),
    case("metadata a string", msg(metadata="x"), 422, "validation_error", "metadata"),
    case("negative prompt_tokens", msg(role="assistant", prompt_tokens=-1), 422, "validation_error", "prompt_tokens"),
    case("completion_tokens as text", msg(role="assistant", completion_tokens="ten"), 422, "validation_error", "completion_tokens"),
    case("negative cost", msg(role="assistant", cost=-0.01), 422, "validation_error", "cost"),
    case("fractional response_time_ms", msg(role="assistant", response_time_ms=1.5), 422, "validation_error", "response_time_ms"),
    case("prompt_tokens beyond 32 bits", msg(role="assistant", prompt_tokens=2**31), 422, "validation_error", "prompt_tokens"),
    case("response_time_ms beyond 64 bits", msg(role="assistant", response_time_ms=2**63), 422, "validation_error", "response_time_ms"),
    case("unknown field", msg(colour="red"), 422, "validation_error", "colour"),
    case("parent_id not in any session", msg(parent_id=MISSING_ID), 422, "invalid_parent", "parent_id"),
    case("Idempotency-Key too long", OK, 422, "invalid_idempotency_key", "Idempotency-Key", {"Idempotency-Key": "k" * 256}),
    # Sizes.
    case("content 1 byte over the limit", lambda s: msg(content="x" * (s.max_message_bytes + 1)), 413, "content_too_large", "content"),
    case(
        "multi-byte content 1 byte over the limit",
        lambda s: msg(content="é" * (s.max_message_bytes // 2) + "x"),
        413, "content_too_large", "content",
    ),
    case(
        "content parts over the limit",
        lambda s: msg(content=[{"type": "text", "text": "x" * (s.max_message_bytes + 1)}]),
        413, "content_too_large", "content",
    ),
    case("metadata over the limit", lambda s: msg(metadata={"blob": "x" * s.max_metadata_bytes}), 413, "metadata_too_large", "metadata"),
    # Batches: one bad message anywhere (here: the last) stores nothing of the batch.
    case("empty batch", {"messages": []}, 422, "validation_error", "messages"),
    case("batch not a list", {"messages": OK}, 422, "validation_error", "messages"),
    case("unknown field next to messages", {"messages": [OK], "stream": True}, 422, "validation_error", "stream"),
    case("batch, last has empty content", batch(OK, OK, msg(content="")), 422, "validation_error", "content"),
    case("batch, last has unknown role", batch(OK, OK, msg(role="robot")), 422, "validation_error", "role"),
    case("batch, last has an unknown field", batch(OK, OK, msg(colour="red")), 422, "validation_error", "colour"),
    case(
        "batch, last is a tool result without tool_call_id",
        batch(OK, msg(role="assistant", tool_calls=[TOOL_CALL]), {"role": "tool", "content": "42"}),
        422, "validation_error", "tool_call_id",
    ),
    case("batch, last has a bad parent_id", batch(OK, OK, msg(parent_id="nope")), 422, "invalid_parent", "parent_id"),
    case(
        "batch, last over the size limit",
        lambda s: batch(OK, OK, msg(content="x" * (s.max_message_bytes + 1))),
        413, "content_too_large", "content",
    ),
    case("too many messages", lambda s: {"messages": [OK] * (s.max_messages_per_request + 1)}, 413, "too_many_messages", "messages"),
]


@pytest.mark.parametrize(("body", "status", "code", "field", "headers"), APPEND_CASES)
def test_bad_append_is_refused_and_stores_nothing(alice, convo, live_server, body, status, code, field, headers):
    before = snapshot(alice, convo)
    response = send(alice, "POST", f"/v1/sessions/{convo}/messages", resolve(body, live_server.settings), headers)
    error = assert_error(response, status, code)
    assert snapshot(alice, convo) == before
    if field:
        assert_names_field(error, field)


def test_parent_id_from_another_session_is_refused(alice, bob, convo):
    other = alice.post("/v1/sessions", json={}).json()["id"]
    foreign_parent = alice.post(f"/v1/sessions/{other}/messages", json=OK).json()["id"]
    bobs = bob.post("/v1/sessions", json={}).json()["id"]
    bobs_parent = bob.post(f"/v1/sessions/{bobs}/messages", json=OK).json()["id"]
    before = snapshot(alice, convo)
    for parent in (foreign_parent, bobs_parent):
        for body in (msg(parent_id=parent), batch(OK, msg(parent_id=parent))):
            error = assert_error(alice.post(f"/v1/sessions/{convo}/messages", json=body), 422, "invalid_parent")
            assert_names_field(error, "parent_id")
    assert snapshot(alice, convo) == before


def test_limits_are_inclusive(alice, convo, live_server):
    """Exactly at each limit is fine (so the refusals above are about the limit, not the shape)."""
    settings = live_server.settings
    at_limit = "é" * (settings.max_message_bytes // 2)
    response = alice.post(f"/v1/sessions/{convo}/messages", json=msg(content=at_limit))
    assert response.status_code == 201, response.text[:300]
    assert alice.get(f"/v1/sessions/{convo}/messages/{response.json()['id']}").json()["content"] == at_limit
    full = alice.post(f"/v1/sessions/{convo}/messages", json={"messages": [OK] * settings.max_messages_per_request})
    assert full.status_code == 201, full.text[:300]
    created = alice.post("/v1/sessions", json={"id": "x" * 128, "title": "t" * 200})
    assert created.status_code == 201, created.text
    assert (created.json()["id"], created.json()["title"]) == ("x" * 128, "t" * 200)


# --- creating and updating sessions ----------------------------------------------------------

SETTINGS_CASES = [
    case("temperature not a number", {"temperature": "hot"}, 422, "validation_error", "temperature"),
    case("temperature out of range", {"temperature": 2.5}, 422, "validation_error", "temperature"),
    case("negative max_history_messages", {"max_history_messages": -1}, 422, "validation_error", "max_history_messages"),
    case("max_tokens zero", {"max_tokens": 0}, 422, "validation_error", "max_tokens"),
    case("max_tokens beyond 32 bits", {"max_tokens": 2**31}, 422, "validation_error", "max_tokens"),
    case("metadata a list", {"metadata": ["a"]}, 422, "validation_error", "metadata"),
    case("metadata null", {"metadata": None}, 422, "validation_error", "metadata"),
    case("summarization not a bool", {"summarization": "maybe"}, 422, "validation_error", "summarization"),
    case("empty model", {"model": ""}, 422, "validation_error", "model"),
    case("title over 200 characters", {"title": "t" * 201}, 422, "title_too_long", "title"),
    case("session_name over 200 characters", {"session_name": "t" * 201}, 422, "title_too_long", "title"),
    case("multi-byte title over 200 characters", {"title": "é" * 201}, 422, "title_too_long", "title"),
    case("blank title", {"title": "  \t "}, 422, "invalid_title", "title"),
    case("empty title", {"title": ""}, 422, "invalid_title", "title"),
    case("title not a string", {"title": 5}, 422, "validation_error", "title"),
    case("unknown field", {"title": "ok", "colour": "red"}, 422, "validation_error", "colour"),
    case("metadata over the limit", lambda s: {"metadata": {"blob": "x" * s.max_metadata_bytes}}, 413, "metadata_too_large", "metadata"),
    case(
        "system_prompt over the limit",
        lambda s: {"system_prompt": "x" * (s.max_message_bytes + 1)},
        413, "content_too_large", "system_prompt",
    ),
    case("truncated JSON", Raw(b'{"title": '), 400, "invalid_json"),
    case("NaN is not JSON", Raw(b'{"temperature": NaN}'), 400, "invalid_json"),
    case("JSON null", Raw(b"null"), 422, "validation_error"),
    case("JSON array", Raw(b'[{"title": "x"}]'), 422, "validation_error"),
    case("JSON number", Raw(b"7"), 422, "validation_error"),
    case("Content-Type text/plain", Raw(b'{"title": "x"}', "text/plain"), 415, "unsupported_media_type"),
]

CREATE_ONLY_CASES = [
    case("empty agent", {"agent": ""}, 422, "validation_error", "agent"),
    case("agent over 128 characters", {"agent": "a" * 129}, 422, "validation_error", "agent"),
    case("id with a space", {"id": "has space"}, 422, "validation_error", "id"),
    case("id with a slash", {"id": "a/b"}, 422, "validation_error", "id"),
    case("id with non-ASCII", {"id": "thréad-1"}, 422, "validation_error", "id"),
    case("id with a trailing newline", {"id": "thread-1\n"}, 422, "validation_error", "id"),
    case("empty id", {"id": ""}, 422, "validation_error", "id"),
    case("id of 129 characters", {"id": "x" * 129}, 422, "validation_error", "id"),
    case("id not a string", {"id": 12}, 422, "validation_error", "id"),
]

UPDATE_ONLY_CASES = [
    case("title null", {"title": None}, 422, "validation_error", "title"),
    case("pinned not a bool", {"pinned": "maybe"}, 422, "validation_error", "pinned"),
    case("archived null", {"archived": None}, 422, "validation_error", "archived"),
    case("id is not updatable", {"id": "other"}, 422, "validation_error", "id"),
    case("message_count is read-only", {"message_count": 0}, 422, "validation_error", "message_count"),
    case("good title with one bad value", {"title": "new", "temperature": 9}, 422, "validation_error", "temperature"),
]


@pytest.mark.parametrize(("body", "status", "code", "field", "headers"), SETTINGS_CASES + CREATE_ONLY_CASES)
def test_bad_create_is_refused_and_creates_nothing(alice, live_server, body, status, code, field, headers):
    before = all_session_ids(alice)
    error = assert_error(send(alice, "POST", "/v1/sessions", resolve(body, live_server.settings), headers), status, code)
    assert all_session_ids(alice) == before
    if field:
        assert_names_field(error, field)


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
@pytest.mark.parametrize(("body", "status", "code", "field", "headers"), SETTINGS_CASES + UPDATE_ONLY_CASES)
def test_bad_update_is_refused_and_changes_nothing(alice, convo, live_server, method, body, status, code, field, headers):
    before = snapshot(alice, convo)
    response = send(alice, method, f"/v1/sessions/{convo}", resolve(body, live_server.settings), headers)
    error = assert_error(response, status, code)
    assert snapshot(alice, convo) == before
    if field:
        assert_names_field(error, field)


# --- query parameters ------------------------------------------------------------------------

MESSAGE_QUERY_CASES = [
    case("limit 0", {"limit": 0}, 422, "validation_error", "limit"),
    case("limit 501", {"limit": 501}, 422, "limit_too_large", "limit"),
    case("negative limit", {"limit": -5}, 422, "validation_error", "limit"),
    case("limit not a number", {"limit": "ten"}, 422, "validation_error", "limit"),
    case("negative offset", {"offset": -1}, 422, "validation_error", "offset"),
    case("negative after", {"after": -1}, 422, "validation_error", "after"),
    case("before 0", {"before": 0}, 422, "validation_error", "before"),
    case("after not a number", {"after": "x"}, 422, "validation_error", "after"),
    case("unknown order", {"order": "sideways"}, 422, "validation_error", "order"),
    case("include_tools not a bool", {"include_tools": "maybe"}, 422, "validation_error", "include_tools"),
    case("garbage cursor", {"cursor": "garbage"}, 422, "invalid_cursor", "cursor"),
    case("base64 junk cursor", {"cursor": base64.urlsafe_b64encode(b"\x00\xffjunk\x80").decode()}, 422, "invalid_cursor", "cursor"),
    case("base64 JSON cursor", {"cursor": b64([1, "x"])}, 422, "invalid_cursor", "cursor"),
    case("fractional cursor", {"cursor": "1.5"}, 422, "invalid_cursor", "cursor"),
    case("cursor over 1024 characters", {"cursor": "1" * 1025}, 422, "validation_error", "cursor"),
    case("cursor and offset together", {"cursor": "1", "offset": 2}, 422, "offset_and_cursor", "cursor"),
]

SESSION_QUERY_CASES = [
    case("limit 0", {"limit": 0}, 422, "validation_error", "limit"),
    case("limit 501", {"limit": 501}, 422, "limit_too_large", "limit"),
    case("negative offset", {"offset": -1}, 422, "validation_error", "offset"),
    case("archived not a bool", {"archived": "maybe"}, 422, "validation_error", "archived"),
    case("garbage cursor", {"cursor": "garbage!"}, 422, "invalid_cursor", "cursor"),
    case("base64 junk cursor", {"cursor": base64.urlsafe_b64encode(b"\x00\xffjunk\x80").decode()}, 422, "invalid_cursor", "cursor"),
    case("cursor of the wrong arity", {"cursor": b64([True, "x"])}, 422, "invalid_cursor", "cursor"),
    case("cursor not a list", {"cursor": b64({"pinned": True})}, 422, "invalid_cursor", "cursor"),
    case("cursor with a bad date", {"cursor": b64([True, "yesterday", "x"])}, 422, "invalid_cursor", "cursor"),
    case("cursor with a date without zone", {"cursor": b64([False, "2024-01-01T00:00:00", "x"])}, 422, "invalid_cursor", "cursor"),
    case("cursor and offset together", {"cursor": b64([False, "2024-01-01T00:00:00+00:00", "x"]), "offset": 1}, 422, "offset_and_cursor", "cursor"),
]


@pytest.mark.parametrize(("params", "status", "code", "field", "headers"), MESSAGE_QUERY_CASES)
def test_bad_message_query_is_422(alice, convo, params, status, code, field, headers):
    error = assert_error(alice.get(f"/v1/sessions/{convo}/messages", params=params), status, code)
    assert_names_field(error, field)


@pytest.mark.parametrize(("params", "status", "code", "field", "headers"), SESSION_QUERY_CASES)
def test_bad_session_query_is_422(alice, convo, params, status, code, field, headers):
    error = assert_error(alice.get("/v1/sessions", params=params), status, code)
    assert_names_field(error, field)


# --- whole bodies over the limit -------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", "/messages", OK), ("POST", "", {"title": "big"}), ("PATCH", "/{sid}", {"title": "big"})],
    ids=["append", "create", "patch"],
)
def test_body_over_max_body_bytes_is_413(alice, convo, live_server, chunked, method, path, body):
    """Valid JSON padded with whitespace past the limit: refused for its size alone."""
    limit = live_server.settings.max_body_bytes
    payload = json.dumps(body).encode()
    payload += b" " * (limit + 1 - len(payload))
    content = (payload[i : i + 65536] for i in range(0, len(payload), 65536)) if chunked else payload
    url = "/v1/sessions" + (f"/{convo}/messages" if path == "/messages" else path.format(sid=convo))
    before = snapshot(alice, convo), all_session_ids(alice)
    response = alice.request(method, url, content=content, headers={"Content-Type": "application/json"})
    assert_error(response, 413, "payload_too_large")
    assert (snapshot(alice, convo), all_session_ids(alice)) == before


# --- nothing a client sends is a 500 ---------------------------------------------------------


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


STRANGE_BODIES = [
    # (name, method, path, body, statuses that are acceptable besides a clean 2xx round trip)
    ("lone surrogate in content", "POST", "/messages", Raw(b'{"role": "user", "content": "a\\ud800b"}'), {400, 422}),
    ("lone surrogate in a metadata key", "POST", "/messages", Raw(b'{"role": "user", "content": "x", "metadata": {"\\udfff": 1}}'), {400, 422}),
    ("lone surrogate in a title", "POST", "", Raw(b'{"title": "a\\ud800b"}'), {400, 422}),
    ("NUL in content", "POST", "/messages", msg(content="a\x00b"), {422}),
    ("NUL in metadata", "POST", "/messages", msg(metadata={"k": "a\x00b"}), {422}),
    ("NUL in a title", "POST", "", {"title": "a\x00b"}, {422}),
    ("metadata nested 300 deep", "POST", "/messages", msg(metadata=_nested(300)), {413, 422}),
    ("session metadata nested 300 deep", "POST", "", {"metadata": _nested(300)}, {413, 422}),
    ("JSON nested 100000 deep", "POST", "/messages", Raw(b'{"role": "user", "content": "x", "metadata": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001), {400, 413, 422}),
]


@pytest.mark.parametrize(("method", "path", "body", "refusals"), [pytest.param(*c[1:], id=c[0]) for c in STRANGE_BODIES])
def test_strange_bodies_are_stored_faithfully_or_refused_cleanly(alice, convo, method, path, body, refusals):
    url = "/v1/sessions" + (f"/{convo}/messages" if path == "/messages" else path)
    before = snapshot(alice, convo), all_session_ids(alice)
    response = send(alice, method, url, body)
    assert response.status_code != 500, f"500 for a client's input: {response.text}"
    if response.status_code in refusals:
        assert_error(response, response.status_code)
        assert (snapshot(alice, convo), all_session_ids(alice)) == before
        return
    assert response.status_code == 201, response.text
    created = response.json()
    again = alice.get(f"/v1/sessions/{convo}/messages/{created['id']}" if path == "/messages" else f"/v1/sessions/{created['id']}")
    assert again.json() == created
    if not isinstance(body, Raw):
        sent = body.get("metadata") or body.get("content") or body.get("title")
        assert sent in (created.get("metadata"), created.get("content"), created.get("title"))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"after": 2**63}, []),
        ({"before": 2**63}, [1, 2]),
        ({"after": 10**30}, []),
        ({"cursor": "9" * 30}, []),
        ({"cursor": "-" + "9" * 30}, None),
    ],
    ids=["after 2^63", "before 2^63", "after 10^30", "huge cursor", "huge negative cursor"],
)
def test_huge_seq_bounds_are_not_a_500(alice, convo, params, expected):
    """Out-of-range bounds either mean what they say (nothing after them) or are a clean 422."""
    response = alice.get(f"/v1/sessions/{convo}/messages", params=params)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert_error(response, 422)
    elif expected is not None:
        assert [m["seq"] for m in response.json()["data"]] == expected


# --- other users' sessions are 404 -----------------------------------------------------------

SESSION_ENDPOINTS = [
    ("GET", "/v1/sessions/{sid}", None),
    ("PATCH", "/v1/sessions/{sid}", {"title": "taken over"}),
    ("PUT", "/v1/sessions/{sid}", {"title": "taken over"}),
    ("DELETE", "/v1/sessions/{sid}", None),
    ("DELETE", "/v1/sessions/{sid}?hard=true", None),
    ("POST", "/v1/sessions/{sid}/restore", None),
    ("POST", "/v1/sessions/{sid}/messages", {"role": "user", "content": "injected"}),
    ("POST", "/v1/sessions/{sid}/messages", {"messages": [{"role": "user", "content": "injected"}]}),
    ("GET", "/v1/sessions/{sid}/messages", None),
    ("GET", "/v1/sessions/{sid}/messages/{mid}", None),
]


def _call(client: httpx.Client, method: str, template: str, body: Any, sid: str, mid: str, **kw) -> httpx.Response:
    return send(client, method, template.format(sid=sid, mid=mid), body, **kw)


def test_another_users_session_is_404_everywhere_and_untouched(alice, bob, convo):
    mid = snapshot(alice, convo)[1]["data"][0]["id"]
    before = snapshot(alice, convo)
    for method, template, body in SESSION_ENDPOINTS:
        theirs = _call(bob, method, template, body, convo, mid, headers={"Idempotency-Key": f"k-{time.time_ns()}"})
        missing = _call(bob, method, template, body, "no-such-session", mid)
        error = assert_error(theirs, 404, "session_not_found")
        # Indistinguishable from a session that does not exist.
        assert (missing.status_code, missing.json()) == (404, error), (method, template)
    assert snapshot(alice, convo) == before
    assert convo not in all_session_ids(bob)
    # Bob's own session does not open Alice's messages either.
    bobs = bob.post("/v1/sessions", json={}).json()["id"]
    assert_error(bob.get(f"/v1/sessions/{bobs}/messages/{mid}"), 404, "message_not_found")


def test_another_users_deleted_session_cannot_be_restored_or_purged(alice, bob, convo):
    assert alice.delete(f"/v1/sessions/{convo}").status_code == 204
    for method, url in (("POST", f"/v1/sessions/{convo}/restore"), ("DELETE", f"/v1/sessions/{convo}?hard=true")):
        assert_error(bob.request(method, url), 404, "session_not_found")
    assert convo in all_session_ids(alice)
    restored = alice.post(f"/v1/sessions/{convo}/restore")
    assert restored.status_code == 200 and restored.json()["title"] == "Kept"
    assert [m["content"] for m in snapshot(alice, convo)[1]["data"]] == ["hi", "hello"]


# --- credentials -----------------------------------------------------------------------------

ALL_ENDPOINTS = [("GET", "/v1/sessions", None), ("POST", "/v1/sessions", {"title": "x"}), *SESSION_ENDPOINTS]


def _revoked_key(admin: httpx.Client, live_server) -> str:
    created = admin.post("/v1/admin/users", json={"name": f"revoked-{os.getpid()}-{time.time_ns()}"})
    assert created.status_code == 201, created.text
    api_key, key_id = created.json()["api_key"], created.json()["api_key_id"]
    assert httpx.get(f"{live_server.url}/v1/me", headers={"Authorization": f"Bearer {api_key}"}).status_code == 200
    env = {**os.environ, "CHATKEEP_DATABASE_URL": live_server.settings.database_url}
    env.pop("CHATKEEP_CONFIG", None)
    cli = Path(sys.executable).with_name("chatkeep")
    subprocess.run([str(cli), "keys", "revoke", key_id], env=env, check=True, capture_output=True, timeout=60)
    return api_key


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        (None, "missing_credentials"),
        ("Bearer", "missing_credentials"),
        ("Basic YWxpY2U6c2VjcmV0", "missing_credentials"),
        ("Bearer ck_not-a-real-key", "invalid_api_key"),
        ("Bearer not-even-our-format", "invalid_api_key"),
        ("tampered", "invalid_api_key"),
        ("revoked", "invalid_api_key"),
    ],
    ids=["none", "empty bearer", "basic", "unknown key", "foreign format", "tampered key", "revoked key"],
)
def test_bad_credentials_are_401_everywhere(alice, admin, anon, convo, live_server, credentials, code):
    mid = snapshot(alice, convo)[1]["data"][0]["id"]
    if credentials == "tampered":
        key = alice.api_key
        credentials = "Bearer " + key[:-1] + ("A" if key[-1] != "A" else "B")
    elif credentials == "revoked":
        credentials = "Bearer " + _revoked_key(admin, live_server)
    headers = {"Authorization": credentials} if credentials else {}
    before = snapshot(alice, convo), all_session_ids(alice)
    for method, template, body in ALL_ENDPOINTS:
        response = _call(anon, method, template, body, convo, mid, headers=headers)
        assert_error(response, 401, code)
        assert response.headers.get("www-authenticate", "").lower().startswith("bearer"), (method, template)
    assert (snapshot(alice, convo), all_session_ids(alice)) == before
