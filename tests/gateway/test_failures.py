"""Failures: the right status in OpenAI's error shape, and the session exactly as before."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from chatkeep.db.migrate import upgrade
from tests.conftest import ADMIN_KEY, _ServerThread, fresh_database_url, make_settings, new_user
from tests.gateway.helpers import (
    CHAT,
    add_messages,
    assert_openai_error,
    assistant,
    chat,
    messages,
    new_session,
    snapshot,
    sse_events,
    user,
)

OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture
def session_with_history(gw_user) -> str:
    sid = new_session(gw_user, model="fake-a", system_prompt="sys")
    add_messages(gw_user, sid, [user("q1"), assistant("a1")])
    chat(gw_user, session_id=sid, messages=[user("q2")]).raise_for_status()
    return sid


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "model, status, error_class",
    [
        ("fake-hang", 504, openai.InternalServerError),
        ("fake-500", 502, openai.InternalServerError),
        ("fake-429", 429, openai.RateLimitError),
        ("fake-400", 400, openai.BadRequestError),
    ],
)
def test_upstream_failure_maps_status_and_leaves_the_session_unchanged(
    oai, gw_user, gateway_server, fake, session_with_history, model, status, error_class, stream
):
    sid = session_with_history
    before = snapshot(gw_user, gateway_server.settings.database_url, sid)
    with pytest.raises(error_class) as caught:
        oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "q3"}], stream=stream, extra_body={"session_id": sid})
    error = caught.value
    assert error.status_code == status
    assert set(error.body) == OPENAI_ERROR_KEYS and error.message
    if status == 429:
        assert error.response.headers["Retry-After"] == "7"
    if status == 400:
        assert "upstream says 400" in error.body["message"]
    assert fake.last()["model"] == model  # the upstream was really called
    assert snapshot(gw_user, gateway_server.settings.database_url, sid) == before


@pytest.mark.parametrize("model", ["fake-drop", "fake-garbage"])
def test_broken_stream_ends_with_an_error_event_and_stores_nothing(gw_user, gateway_server, fake, session_with_history, model):
    sid = session_with_history
    before = snapshot(gw_user, gateway_server.settings.database_url, sid)
    body = {"model": model, "session_id": sid, "stream": True, "messages": [user("q3")]}
    with gw_user.stream("POST", CHAT, json=body) as response:
        assert response.status_code == 200  # the stream had started before the upstream broke
        events = [e for _, e in sse_events(response)]
    assert "[DONE]" not in events
    assert set(events[-1]) == {"error"} and set(events[-1]["error"]) == OPENAI_ERROR_KEYS
    assert any(c["delta"].get("content") for e in events[:-1] for c in e["choices"])  # some words did get through
    assert snapshot(gw_user, gateway_server.settings.database_url, sid) == before


def test_broken_stream_raises_in_the_openai_client(oai, gw_user, gateway_server, session_with_history):
    before = snapshot(gw_user, gateway_server.settings.database_url, session_with_history)
    stream = oai.chat.completions.create(
        model="fake-garbage", messages=[{"role": "user", "content": "q3"}], stream=True, extra_body={"session_id": session_with_history}
    )
    with pytest.raises(openai.APIError):
        list(stream)
    assert snapshot(gw_user, gateway_server.settings.database_url, session_with_history) == before


def test_failure_in_a_summarizing_session_stores_no_summary(gw_user, gateway_server, fake):
    sid = new_session(gw_user, model="fake-a", summarization=True, max_history_messages=2)
    for text in ("t1", "t2"):
        chat(gw_user, session_id=sid, messages=[user(text)]).raise_for_status()
    before = snapshot(gw_user, gateway_server.settings.database_url, sid)
    response = chat(gw_user, model="fake-500", session_id=sid, messages=[user("t3")])  # t1 and its reply fall out here
    assert_openai_error(response, 502)
    assert snapshot(gw_user, gateway_server.settings.database_url, sid) == before


@pytest.fixture(scope="module")
def unreachable_server(backend, tmp_path_factory) -> Iterator[httpx.Client]:
    """A second chatkeep whose upstream is a closed port, on its own fresh database; yields a user of it."""
    url = fresh_database_url(backend, "unreachable", tmp_path_factory.mktemp(f"unreachable-{backend}"))
    upgrade(url)
    settings = make_settings(url, upstream_base_url="http://127.0.0.1:1/v1", upstream_api_key="sk-x")
    with _ServerThread(settings) as thread:
        base = f"http://127.0.0.1:{thread.port}"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30) as admin:
            key = new_user(admin, "unreachable")["api_key"]
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            client.database_url = url  # type: ignore[attr-defined]
            yield client


@pytest.mark.parametrize("stream", [False, True])
def test_unreachable_upstream_is_502_and_stores_nothing(unreachable_server, stream):
    client = unreachable_server
    sid = new_session(client, model="some-model")
    add_messages(client, sid, [user("q1"), assistant("a1")])
    before = snapshot(client, client.database_url, sid)
    response = chat(client, session_id=sid, stream=stream, messages=[user("q2")])
    assert_openai_error(response, 502)
    assert snapshot(client, client.database_url, sid) == before


def test_idempotent_retry_returns_the_stored_turn_without_calling_the_model(oai, gw_user, fake):
    sid = new_session(gw_user, model="fake-a")
    headers = {"Idempotency-Key": "turn-1"}
    first = oai.chat.completions.create(model="fake-a", messages=[{"role": "user", "content": "once"}], extra_body={"session_id": sid}, extra_headers=headers)
    again = oai.chat.completions.create(model="fake-a", messages=[{"role": "user", "content": "once"}], extra_body={"session_id": sid}, extra_headers=headers)
    assert again.model_dump() == first.model_dump()
    assert again.model_extra["message_ids"] == [m["id"] for m in messages(gw_user, sid)]
    assert len(fake.requests) == 1
    assert len(messages(gw_user, sid)) == 2
    # The same key for a different request is refused, not replayed.
    other = gw_user.post(CHAT, headers=headers, json={"model": "fake-a", "session_id": sid, "messages": [user("twice")]})
    assert 400 <= other.status_code < 500 and set(other.json()["error"]) == OPENAI_ERROR_KEYS
    assert len(fake.requests) == 1 and len(messages(gw_user, sid)) == 2


def test_idempotent_retry_with_store_creates_one_session(gw_user, fake):
    before = gw_user.get("/v1/sessions").json()["data"]
    body = {"model": "fake-a", "store": True, "messages": [user("new chat")]}
    first = gw_user.post(CHAT, headers={"Idempotency-Key": "new-1"}, json=body)
    again = gw_user.post(CHAT, headers={"Idempotency-Key": "new-1"}, json=body)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["X-Chatkeep-Session-Id"] == first.json()["session_id"]
    assert len(fake.requests) == 1
    assert len(gw_user.get("/v1/sessions").json()["data"]) == len(before) + 1


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, status",
    [
        ({"messages": []}, 400),
        ({}, 400),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, 400),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, 400),
        ({"messages": [{"role": "tool", "content": "no call id"}]}, None),
        ({"messages": [{"role": "user", "content": "   "}]}, None),
    ],
    ids=["no-messages", "no-messages-field", "bad-role", "n-2", "tool-without-id", "blank-content"],
)
def test_bad_input_is_a_clear_4xx_and_stores_nothing(gw_user, gateway_server, fake, session_with_history, body, status):
    before = snapshot(gw_user, gateway_server.settings.database_url, session_with_history)
    fake.requests.clear()
    response = chat(gw_user, model="fake-a", session_id=session_with_history, **body)
    if status is None:
        assert 400 <= response.status_code < 500, response.text
        status = response.status_code
    error = assert_openai_error(response, status)
    assert error["param"], error  # names the offending field
    assert fake.requests == []
    assert snapshot(gw_user, gateway_server.settings.database_url, session_with_history) == before


def test_n_2_with_store_is_refused(gw_user, fake):
    before = gw_user.get("/v1/sessions").json()["data"]
    assert_openai_error(chat(gw_user, model="fake-a", store=True, n=2, messages=[user("hi")]), 400)
    assert fake.requests == [] and gw_user.get("/v1/sessions").json()["data"] == before


def test_unknown_or_foreign_session_is_404(oai, gw_user, gw_other, gateway_server, fake):
    theirs = new_session(gw_other, model="fake-a")
    add_messages(gw_other, theirs, [user("private"), assistant("secret")])
    before = snapshot(gw_other, gateway_server.settings.database_url, theirs)
    for sid in ("no-such-session", theirs):
        with pytest.raises(openai.NotFoundError) as caught:
            oai.chat.completions.create(model="fake-a", messages=[{"role": "user", "content": "hi"}], extra_body={"session_id": sid})
        assert set(caught.value.body) == OPENAI_ERROR_KEYS and caught.value.code == "session_not_found"
        by_header = gw_user.post(CHAT, headers={"X-Chatkeep-Session-Id": sid}, json={"model": "fake-a", "messages": [user("hi")]})
        assert_openai_error(by_header, 404, "session_not_found")
        streamed = chat(gw_user, model="fake-a", session_id=sid, stream=True, messages=[user("hi")])
        assert_openai_error(streamed, 404, "session_not_found")
    assert fake.requests == []
    assert snapshot(gw_other, gateway_server.settings.database_url, theirs) == before
    assert [m["content"] for m in before[1]] == ["private", "secret"]
