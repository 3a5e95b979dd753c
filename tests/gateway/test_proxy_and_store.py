"""Storing or not, what reaches the upstream, and the usage, cost and timing recorded per turn."""

from __future__ import annotations

import pytest

from tests.gateway.fake_upstream import USAGE
from tests.gateway.helpers import add_messages, assistant, chat, messages, new_session, user

PRICED_COST = (11 * 2.0 + 7 * 8.0) / 1e6


def _session_ids(client) -> list[str]:
    return [s["id"] for s in client.get("/v1/sessions", params={"limit": 500}).json()["data"]]


def test_store_without_session_creates_one_titled_from_the_first_user_message(gw_user, fake):
    response = chat(gw_user, model="fake-a", store=True, messages=[
        {"role": "system", "content": "You plan trips."}, user("Plan three days in Lisbon"),
    ])
    assert response.status_code == 200, response.text
    body = response.json()
    sid = body["session_id"]
    assert response.headers["X-Chatkeep-Session-Id"] == sid
    session = gw_user.get(f"/v1/sessions/{sid}").json()
    assert session["title"] == "Plan three days in Lisbon" and session["message_count"] == 3
    stored = messages(gw_user, sid)
    assert [m["id"] for m in stored] == body["message_ids"]
    assert [m["content"] for m in stored] == ["You plan trips.", "Plan three days in Lisbon", "reply to: Plan three days in Lisbon"]
    assert body["choices"][0]["message"]["content"] == "reply to: Plan three days in Lisbon"
    assert body["object"] == "chat.completion" and body["usage"] == USAGE


def test_store_with_the_openai_client(oai, gw_user):
    first = oai.chat.completions.create(model="fake-a", messages=[{"role": "user", "content": "hello"}], extra_body={"store": True})
    sid = first.model_extra["session_id"]
    assert first.model_extra["message_ids"] == [m["id"] for m in messages(gw_user, sid)]
    assert first.usage.prompt_tokens == 11 and first.choices[0].message.content == "reply to: hello"


def test_session_id_in_the_header(gw_user, fake):
    sid = new_session(gw_user, model="fake-a")
    add_messages(gw_user, sid, [user("earlier"), assistant("yes")])
    response = gw_user.post("/v1/chat/completions", headers={"X-Chatkeep-Session-Id": sid}, json={"messages": [user("now")]})
    assert response.status_code == 200, response.text
    assert response.json()["session_id"] == sid and response.headers["X-Chatkeep-Session-Id"] == sid
    assert fake.last()["messages"] == [user("earlier"), assistant("yes"), user("now")]
    assert [m["content"] for m in messages(gw_user, sid)] == ["earlier", "yes", "now", "reply to: now"]


def test_without_session_or_store_it_is_a_plain_proxy(gw_user, fake):
    before = _session_ids(gw_user)
    sent = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "first", "name": "ann"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second"}]},
    ]
    response = chat(gw_user, model="fake-a", messages=sent)
    assert response.status_code == 200, response.text
    assert fake.last()["messages"] == sent
    body = response.json()
    assert body == {  # the upstream's answer, untouched
        "id": "chatcmpl-fake", "object": "chat.completion", "created": body["created"], "model": "fake-a", "usage": USAGE,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": body["choices"][0]["message"]["content"]}}],
    }
    assert "X-Chatkeep-Session-Id" not in response.headers
    assert response.json()["choices"][0]["message"]["content"] == 'reply to: [{"type": "text", "text": "second"}]'
    assert _session_ids(gw_user) == before


@pytest.mark.parametrize("stored", [False, True])
def test_unknown_fields_pass_through_and_chatkeep_fields_do_not(gw_user, fake, stored):
    extra = {
        "seed": 7, "logit_bias": {"50256": -100}, "top_p": 0.5, "user": "u-1", "stop": ["\n\n"],
        "response_format": {"type": "json_object"}, "temperature": 0.3, "max_tokens": 64, "future_knob": {"a": [1]},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], "tool_choice": "auto",
    }
    chatkeep_fields = {"store": True} if stored else {}
    if stored:
        chatkeep_fields |= {"session_id": new_session(gw_user, model="fake-a"), "max_history_messages": 5}
    response = chat(gw_user, model="fake-a", messages=[user("x")], **extra, **chatkeep_fields)
    assert response.status_code == 200, response.text
    received = fake.last()
    assert {k: received.get(k) for k in extra} == extra
    assert not {"session_id", "store", "max_history_messages"} & set(received)
    assert received["stream"] is False


def test_configured_model_uses_its_upstream_name_and_the_upstream_key(gw_user, fake):
    response = chat(gw_user, model="fake-priced", messages=[user("x")])
    assert response.status_code == 200, response.text
    assert fake.last()["model"] == "fake-upstream-name"
    assert fake.headers[-1]["authorization"] == "Bearer sk-upstream-secret"
    assert gw_user.api_key not in str(fake.headers[-1])


def test_usage_cost_and_response_time_are_recorded(gw_user, fake):
    sid = new_session(gw_user, model="fake-priced")
    for text in ("one", "two"):
        response = chat(gw_user, session_id=sid, messages=[user(text)])
        assert response.status_code == 200, response.text
        assert response.json()["usage"] == USAGE
    stored = messages(gw_user, sid)
    replies = [m for m in stored if m["role"] == "assistant"]
    for reply in replies:
        assert (reply["model"], reply["prompt_tokens"], reply["completion_tokens"]) == ("fake-priced", 11, 7)
        assert reply["cost"] == pytest.approx(PRICED_COST)
        assert isinstance(reply["response_time_ms"], int) and reply["response_time_ms"] >= 0
    assert all(m["cost"] is None and m["prompt_tokens"] is None for m in stored if m["role"] == "user")
    session = gw_user.get(f"/v1/sessions/{sid}").json()
    assert (session["prompt_tokens"], session["completion_tokens"], session["total_tokens"]) == (22, 14, 36)
    assert session["total_cost"] == pytest.approx(2 * PRICED_COST)


def test_missing_upstream_usage_is_estimated(gw_user, fake):
    sid = new_session(gw_user, model="fake-nousage")
    response = chat(gw_user, session_id=sid, messages=[user("count my tokens please")])
    assert response.status_code == 200, response.text
    assert "usage" not in fake.last() and "usage" not in response.json()
    reply = messages(gw_user, sid)[-1]
    assert reply["prompt_tokens"] > 0 and reply["completion_tokens"] > 0
    session = gw_user.get(f"/v1/sessions/{sid}").json()
    assert (session["prompt_tokens"], session["completion_tokens"]) == (reply["prompt_tokens"], reply["completion_tokens"])


def test_echo_model_offline_reports_usage_and_is_the_default(oai, gw_user, fake):
    first = oai.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}], extra_body={"store": True})
    assert first.choices[0].message.content == 'You said: "hi". I received 1 message.'
    assert first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0
    sid = first.model_extra["session_id"]
    second = oai.chat.completions.create(model="echo", messages=[{"role": "user", "content": "again"}], extra_body={"session_id": sid})
    assert second.choices[0].message.content == 'You said: "again". I received 3 messages.'
    reply = messages(gw_user, sid)[-1]
    assert (reply["prompt_tokens"], reply["completion_tokens"]) == (second.usage.prompt_tokens, second.usage.completion_tokens)
    # No model at all: a fresh install's default is echo.
    default = chat(gw_user, store=True, messages=[user("which model?")])
    assert default.json()["choices"][0]["message"]["content"] == 'You said: "which model?". I received 1 message.'
    assert fake.requests == []
