"""Streaming: chunks relayed as they come, [DONE], usage on request, the turn stored at the end,
and stored even when the client goes away mid-stream."""

from __future__ import annotations

import json

import httpx

from tests.gateway.fake_upstream import USAGE
from tests.gateway.helpers import CHAT, add_messages, assistant, messages, new_session, sse_events, user, wait_for

SLOW_TEXT = "one two three four five six"  # fake-slow: "reply to: one two …" one word every 0.2 s


def _content(events) -> str:
    return "".join(
        c["delta"].get("content") or "" for _, e in events if isinstance(e, dict) for c in e.get("choices") or []
    )


def test_chunks_are_relayed_as_they_come_and_the_turn_is_stored(gw_user, fake):
    sid = new_session(gw_user, model="fake-slow")
    add_messages(gw_user, sid, [user("before"), assistant("ok")])
    body = {"session_id": sid, "stream": True, "messages": [user(SLOW_TEXT)]}
    with gw_user.stream("POST", CHAT, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["X-Chatkeep-Session-Id"] == sid
        events = sse_events(response)
    assert fake.last()["messages"] == [user("before"), assistant("ok"), user(SLOW_TEXT)]
    content_arrivals = [t for t, e in events if isinstance(e, dict) and _content([(t, e)])]
    assert len(content_arrivals) == len(f"reply to: {SLOW_TEXT}".split())
    # The first words reached us while the upstream had not even produced its last one.
    assert content_arrivals[0] < fake.sent_at[-1]
    assert events[-1][1] == "[DONE]"
    assert _content(events) == f"reply to: {SLOW_TEXT}"

    first = events[0][1]
    stored = messages(gw_user, sid)  # stored by the time [DONE] arrives
    assert first["session_id"] == sid and first["message_ids"] == [m["id"] for m in stored[2:]]
    reply = stored[-1]
    assert (reply["role"], reply["content"]) == ("assistant", f"reply to: {SLOW_TEXT}")
    assert (reply["prompt_tokens"], reply["completion_tokens"]) == (11, 7)
    ttft = reply["metadata"]["time_to_first_token_ms"]
    assert isinstance(ttft, int) and 0 <= ttft <= reply["response_time_ms"]


def test_usage_chunk_only_when_asked(gw_user, fake):
    sid = new_session(gw_user, model="fake-a")
    asked = {"session_id": sid, "stream": True, "stream_options": {"include_usage": True}, "messages": [user("a")]}
    with gw_user.stream("POST", CHAT, json=asked) as response:
        events = [e for _, e in sse_events(response)]
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"] == [] and events[-2]["usage"] == USAGE
    assert all(e.get("usage") is None for e in events[:-2])

    plain = {"session_id": sid, "stream": True, "messages": [user("b")]}
    with gw_user.stream("POST", CHAT, json=plain) as response:
        events = [e for _, e in sse_events(response)]
    assert events[-1] == "[DONE]"
    assert all(e.get("usage") is None for e in events[:-1])
    assert all(e["choices"] for e in events[:-1])
    # chatkeep asked the upstream for usage anyway, and recorded it.
    assert fake.last()["stream_options"] == {"include_usage": True}
    assert messages(gw_user, sid)[-1]["prompt_tokens"] == 11


def test_openai_client_streams_with_a_session(oai, gw_user, fake):
    sid = new_session(gw_user, model="fake-a")
    add_messages(gw_user, sid, [user("earlier"), assistant("noted")])
    stream = oai.chat.completions.create(
        model="fake-a", messages=[{"role": "user", "content": "stream me"}], stream=True,
        stream_options={"include_usage": True}, extra_body={"session_id": sid},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "reply to: stream me"
    assert chunks[0].model_extra["session_id"] == sid
    assert chunks[-1].usage.prompt_tokens == 11
    assert fake.last()["messages"] == [user("earlier"), assistant("noted"), user("stream me")]
    assert [m["content"] for m in messages(gw_user, sid)] == ["earlier", "noted", "stream me", "reply to: stream me"]


def test_echo_streams_word_by_word(gw_user):
    body = {"model": "echo", "store": True, "stream": True, "messages": [user("hello there")]}
    with gw_user.stream("POST", CHAT, json=body) as response:
        events = sse_events(response)
    pieces = [c["delta"]["content"] for _, e in events if isinstance(e, dict) for c in e["choices"] if c["delta"].get("content")]
    assert len(pieces) > 3
    assert "".join(pieces) == 'You said: "hello there". I received 1 message.'
    sid = events[0][1]["session_id"]
    assert messages(gw_user, sid)[-1]["content"] == "".join(pieces)


def test_client_disconnect_mid_stream_still_stores_the_full_reply(gw_user, gateway_server, fake):
    sid = new_session(gw_user, model="fake-slow")
    text = "a b c d e f g h"
    body = {"session_id": sid, "stream": True, "messages": [user(text)]}
    with httpx.Client(base_url=gateway_server.url, headers=gw_user.headers, timeout=30) as client:
        with client.stream("POST", CHAT, json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data:") and _content([(0, json.loads(line[5:]))]):
                    break  # the first word arrived: hang up
    assert messages(gw_user, sid) == []  # the model is still talking
    stored = wait_for(lambda: len(messages(gw_user, sid)) == 2 and messages(gw_user, sid))
    assert stored, "the reply of a disconnected stream was not stored"
    assert [m["content"] for m in stored] == [text, f"reply to: {text}"]


def test_idempotent_retry_of_a_streamed_turn_replays_it(oai, gw_user, fake):
    sid = new_session(gw_user, model="fake-a")
    key = {"Idempotency-Key": "stream-retry-1"}

    def run():
        stream = oai.chat.completions.create(
            model="fake-a", messages=[{"role": "user", "content": "once"}], stream=True,
            extra_body={"session_id": sid}, extra_headers=key,
        )
        chunks = list(stream)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks[0].model_extra["message_ids"]

    first, second = run(), run()
    assert first == second and first[0] == "reply to: once"
    assert len(fake.requests) == 1
    assert len(messages(gw_user, sid)) == 2
