"""Messages over real HTTP: append, counters, listing, concurrency, idempotency (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import httpx
import pytest

# --- helpers ---------------------------------------------------------------------------------


def new_session(client: httpx.Client, **body) -> str:
    response = client.post("/v1/sessions", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def append(client: httpx.Client, sid: str, body: dict, **kwargs) -> dict:
    response = client.post(f"/v1/sessions/{sid}/messages", json=body, **kwargs)
    assert response.status_code == 201, response.text
    return response.json()


def user(text: str, **extra) -> dict:
    return {"role": "user", "content": text, **extra}


def assistant(text: str | None, **extra) -> dict:
    return {"role": "assistant", "content": text, **extra}


def session_of(client: httpx.Client, sid: str) -> dict:
    response = client.get(f"/v1/sessions/{sid}")
    assert response.status_code == 200, response.text
    return response.json()


def page(client: httpx.Client, sid: str, **params) -> dict:
    response = client.get(f"/v1/sessions/{sid}/messages", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def seqs(listing: dict) -> list[int]:
    return [m["seq"] for m in listing["data"]]


def everything(client: httpx.Client, sid: str) -> list[dict]:
    """Every stored message of a session, tool traffic included, in seq order."""
    return page(client, sid, include_tools="true", limit=500)["data"]


def ts(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


def async_client(live_server, client: httpx.Client) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=live_server.url,
        timeout=120,
        headers={"Authorization": client.headers["Authorization"]},
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
    )


def assert_linear_chain(messages: list[dict]) -> None:
    """seq 1..N without gap or duplicate, each message's parent the one before it."""
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    assert len({m["id"] for m in messages}) == len(messages)
    assert messages[0]["parent_id"] is None
    for previous, current in zip(messages, messages[1:]):
        assert current["parent_id"] == previous["id"], (previous["seq"], current["seq"])


TOOL_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'},
}


def tool_conversation(client: httpx.Client, sid: str) -> list[dict]:
    """user, assistant tool call, tool result, assistant tool call with text, tool result, assistant answer."""
    return append(
        client,
        sid,
        {
            "messages": [
                user("Weather in Lisbon?"),
                assistant(None, tool_calls=[TOOL_CALL]),
                {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1", "name": "get_weather"},
                assistant("Let me double-check.", tool_calls=[{**TOOL_CALL, "id": "call_2"}]),
                {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_2"},
                assistant("It is 21 °C."),
            ]
        },
    )["data"]


# --- append ----------------------------------------------------------------------------------


def test_append_one_message(alice):
    sid = new_session(alice)
    message = append(alice, sid, user("Hello there"))
    assert message["id"] and message["session_id"] == sid
    assert (message["seq"], message["role"], message["content"]) == (1, "user", "Hello there")
    assert message["parent_id"] is None
    assert message["created_at"].endswith("Z")
    assert (message["name"], message["tool_calls"], message["tool_call_id"]) == (None, None, None)
    assert message["metadata"] == {}
    assert alice.get(f"/v1/sessions/{sid}/messages/{message['id']}").json() == message
    second = append(alice, sid, assistant("Hi!"))
    assert (second["seq"], second["parent_id"]) == (2, message["id"])


def test_append_batch_gets_consecutive_seqs_and_a_parent_chain(alice):
    sid = new_session(alice)
    first = append(alice, sid, user("one"))
    response = alice.post(
        f"/v1/sessions/{sid}/messages",
        json={"messages": [assistant("two"), user("three"), assistant("four")]},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert list(body) == ["data"]
    batch = body["data"]
    assert [m["seq"] for m in batch] == [2, 3, 4]
    assert [m["content"] for m in batch] == ["two", "three", "four"]
    assert [m["parent_id"] for m in batch] == [first["id"], batch[0]["id"], batch[1]["id"]]
    assert all(m["created_at"].endswith("Z") and m["session_id"] == sid for m in batch)
    assert everything(alice, sid) == [first, *batch]


def test_batch_of_one_is_still_a_batch(alice):
    sid = new_session(alice)
    body = append(alice, sid, {"messages": [user("only")]})
    assert [m["seq"] for m in body["data"]] == [1]


def test_explicit_parent_id_is_kept(alice):
    sid = new_session(alice)
    root = append(alice, sid, user("question"))
    append(alice, sid, assistant("answer A"))
    regenerated = append(alice, sid, assistant("answer B", parent_id=root["id"]))
    assert (regenerated["seq"], regenerated["parent_id"]) == (3, root["id"])
    follow_up = append(alice, sid, user("thanks"))
    assert follow_up["parent_id"] == regenerated["id"]


def test_content_parts_round_trip(alice):
    sid = new_session(alice)
    parts = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ]
    message = append(alice, sid, user(parts))
    assert message["content"] == parts
    assert alice.get(f"/v1/sessions/{sid}/messages/{message['id']}").json()["content"] == parts
    assert page(alice, sid)["data"][0]["content"] == parts
    assert session_of(alice, sid)["title"] == "What is in this image?"


def test_every_optional_field_round_trips(alice):
    sid = new_session(alice)
    metadata = {"source": "ui", "nested": {"list": [1, 2.5, "x", None, True]}, "ünïcode": "✓ 👋"}
    call = append(
        alice,
        sid,
        assistant(
            "Checking the weather…",
            name="travel_bot",
            tool_calls=[TOOL_CALL],
            metadata=metadata,
            model="gpt-4o-mini",
            prompt_tokens=12,
            completion_tokens=30,
            cost=0.00021,
            response_time_ms=850,
        ),
    )
    result = append(
        alice, sid, {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1", "name": "get_weather"}
    )
    expected_call = {
        "role": "assistant",
        "content": "Checking the weather…",
        "name": "travel_bot",
        "tool_calls": [TOOL_CALL],
        "tool_call_id": None,
        "metadata": metadata,
        "model": "gpt-4o-mini",
        "prompt_tokens": 12,
        "completion_tokens": 30,
        "cost": 0.00021,
        "response_time_ms": 850,
    }
    assert {k: call[k] for k in expected_call} == expected_call
    assert (result["role"], result["tool_call_id"], result["name"], result["tool_calls"]) == (
        "tool", "call_1", "get_weather", None,
    )
    for message in (call, result):
        assert alice.get(f"/v1/sessions/{sid}/messages/{message['id']}").json() == message
    assert everything(alice, sid) == [call, result]


def test_unicode_and_multiline_content_round_trip(alice):
    sid = new_session(alice)
    text = "  héllo 👋\n\n  second line\twith tab  \n"
    message = append(alice, sid, user(text))
    assert message["content"] == text
    assert page(alice, sid)["data"][0]["content"] == text


# --- session counters ------------------------------------------------------------------------


def test_appends_update_session_counters_and_totals(alice):
    sid = new_session(alice)
    before = session_of(alice, sid)
    assert (before["message_count"], before["last_message_at"]) == (0, None)
    assert (before["prompt_tokens"], before["completion_tokens"], before["total_tokens"], before["total_cost"]) == (
        0, 0, 0, 0,
    )

    first = append(alice, sid, user("hi"))
    after_one = session_of(alice, sid)
    assert after_one["message_count"] == 1
    assert after_one["last_message_at"] == first["created_at"]
    assert ts(after_one["updated_at"]) > ts(before["updated_at"])

    append(alice, sid, assistant("hello", prompt_tokens=10, completion_tokens=5, cost=0.001))
    batch = append(
        alice,
        sid,
        {
            "messages": [
                user("more"),
                assistant("sure", prompt_tokens=7, completion_tokens=3, cost=0.0025, model="gpt-x"),
                assistant("and", prompt_tokens=1, completion_tokens=2),
            ]
        },
    )["data"]
    after = session_of(alice, sid)
    assert after["message_count"] == 5
    assert after["last_message_at"] == batch[-1]["created_at"]
    assert ts(after["updated_at"]) > ts(after_one["updated_at"])
    assert ts(after["updated_at"]) >= ts(after["last_message_at"])
    assert (after["prompt_tokens"], after["completion_tokens"], after["total_tokens"]) == (18, 10, 28)
    assert after["total_cost"] == pytest.approx(0.0035)
    assert after["created_at"] == before["created_at"]
    listed = {s["id"]: s for s in alice.get("/v1/sessions").json()["data"]}
    assert listed[sid] == after


def test_tool_traffic_counts_in_message_count(alice):
    sid = new_session(alice)
    tool_conversation(alice, sid)
    assert session_of(alice, sid)["message_count"] == 6


# --- listing ---------------------------------------------------------------------------------


@pytest.fixture
def seven(alice) -> tuple[str, list[dict]]:
    """A session with seven plain chat messages (seq 1..7)."""
    sid = new_session(alice)
    messages = append(
        alice, sid, {"messages": [(user if i % 2 else assistant)(f"m{i}") for i in range(1, 8)]}
    )["data"]
    return sid, messages


def test_list_is_chronological_by_default(alice, seven):
    sid, messages = seven
    listing = page(alice, sid)
    assert listing["data"] == messages
    assert listing["has_more"] is False and listing["next_cursor"] is None
    assert seqs(page(alice, sid, order="asc")) == [1, 2, 3, 4, 5, 6, 7]


def test_list_desc(alice, seven):
    sid, messages = seven
    listing = page(alice, sid, order="desc")
    assert listing["data"] == messages[::-1]
    assert seqs(page(alice, sid, order="desc", limit=2)) == [7, 6]


def test_list_limit_and_has_more(alice, seven):
    sid, _ = seven
    first = page(alice, sid, limit=3)
    assert seqs(first) == [1, 2, 3]
    assert first["has_more"] is True and isinstance(first["next_cursor"], str)
    exact = page(alice, sid, limit=7)
    assert seqs(exact) == list(range(1, 8)) and exact["has_more"] is False and exact["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"after": 2, "limit": 3}, [3, 4, 5]),
        ({"after": 0}, [1, 2, 3, 4, 5, 6, 7]),
        ({"after": 7}, []),
        ({"before": 5}, [1, 2, 3, 4]),
        ({"before": 1}, []),
        ({"after": 2, "before": 6}, [3, 4, 5]),
        ({"before": 5, "order": "desc"}, [4, 3, 2, 1]),
        ({"before": 6, "order": "desc", "limit": 2}, [5, 4]),
        ({"after": 3, "order": "desc"}, [7, 6, 5, 4]),
    ],
    ids=lambda v: "&".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None,
)
def test_keyset_after_before(alice, seven, params, expected):
    sid, _ = seven
    assert seqs(page(alice, sid, **params)) == expected


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_cursor_continuation_visits_every_message_once(alice, seven, order):
    sid, messages = seven
    seen, cursor, pages = [], None, 0
    while True:
        listing = page(alice, sid, limit=3, order=order, **({"cursor": cursor} if cursor else {}))
        seen += listing["data"]
        pages += 1
        if not listing["has_more"]:
            assert listing["next_cursor"] is None
            break
        cursor = listing["next_cursor"]
    assert pages == 3
    assert seen == (messages if order == "asc" else messages[::-1])


def test_cursor_is_not_disturbed_by_appends_in_between(alice, seven):
    sid, _ = seven
    first = page(alice, sid, limit=4)
    append(alice, sid, user("late"))
    rest = page(alice, sid, limit=10, cursor=first["next_cursor"])
    assert seqs(first) + seqs(rest) == list(range(1, 9))


def test_offset(alice, seven):
    sid, _ = seven
    assert seqs(page(alice, sid, offset=2, limit=3)) == [3, 4, 5]
    assert seqs(page(alice, sid, offset=5)) == [6, 7]
    assert seqs(page(alice, sid, offset=2, limit=2, order="desc")) == [5, 4]
    beyond = page(alice, sid, offset=7)
    assert beyond["data"] == [] and beyond["has_more"] is False
    by_offset = [m for off in (0, 3, 6) for m in page(alice, sid, limit=3, offset=off)["data"]]
    assert by_offset == page(alice, sid)["data"]


def test_tool_traffic_hidden_unless_include_tools(alice):
    sid = new_session(alice)
    stored = tool_conversation(alice, sid)
    visible = page(alice, sid)
    assert [(m["seq"], m["role"]) for m in visible["data"]] == [(1, "user"), (6, "assistant")]
    assert page(alice, sid, include_tools="false")["data"] == visible["data"]
    assert page(alice, sid, include_tools="true")["data"] == stored
    assert seqs(page(alice, sid, order="desc")) == [6, 1]
    # Tool messages are still reachable one by one.
    assert alice.get(f"/v1/sessions/{sid}/messages/{stored[2]['id']}").json() == stored[2]


def test_paging_skips_hidden_tool_traffic(alice):
    sid = new_session(alice)
    tool_conversation(alice, sid)
    append(alice, sid, user("and tomorrow?"))
    first = page(alice, sid, limit=2)
    assert seqs(first) == [1, 6] and first["has_more"] is True
    second = page(alice, sid, limit=2, cursor=first["next_cursor"])
    assert seqs(second) == [7] and second["has_more"] is False
    assert seqs(page(alice, sid, limit=2, offset=1)) == [6, 7]
    assert seqs(page(alice, sid, limit=1, include_tools="true", after=1)) == [2]


# --- single message --------------------------------------------------------------------------


def test_get_single_message(alice, seven):
    sid, messages = seven
    for message in (messages[0], messages[3], messages[-1]):
        response = alice.get(f"/v1/sessions/{sid}/messages/{message['id']}")
        assert response.status_code == 200
        assert response.json() == message


def test_message_of_another_session_is_404(alice, seven):
    sid, messages = seven
    other = new_session(alice)
    append(alice, other, user("elsewhere"))
    response = alice.get(f"/v1/sessions/{other}/messages/{messages[0]['id']}")
    assert response.status_code == 404
    assert response.json()["code"] == "message_not_found"
    missing = alice.get(f"/v1/sessions/{sid}/messages/00000000-0000-7000-8000-000000000000")
    assert missing.status_code == 404 and missing.json()["code"] == "message_not_found"


# --- concurrency -----------------------------------------------------------------------------


def _mixed_bodies(count: int, tag: str) -> list[dict]:
    """Every third request a 2-message batch, the others single messages."""
    return [
        {"messages": [user(f"{tag}-{i}a"), assistant(f"{tag}-{i}b")]} if i % 3 == 0 else user(f"{tag}-{i}")
        for i in range(count)
    ]


def _stored_count(bodies: list[dict]) -> int:
    return sum(len(b["messages"]) if "messages" in b else 1 for b in bodies)


async def test_concurrent_appends_to_one_session_are_gap_free(live_server, alice):
    sid = new_session(alice)
    bodies = _mixed_bodies(40, "c")
    async with async_client(live_server, alice) as client:
        responses = await asyncio.gather(*(client.post(f"/v1/sessions/{sid}/messages", json=b) for b in bodies))
    assert [r.status_code for r in responses] == [201] * len(bodies), [r.text for r in responses if r.status_code != 201]
    total = _stored_count(bodies)
    stored = everything(alice, sid)
    assert_linear_chain(stored)
    assert len(stored) == total
    returned = []
    for body, response in zip(bodies, responses):
        data = response.json()["data"] if "messages" in body else [response.json()]
        assert [m["content"] for m in data] == [m["content"] for m in body.get("messages", [body])]
        assert [m["seq"] for m in data] == list(range(data[0]["seq"], data[0]["seq"] + len(data)))
        returned += data
    assert sorted(returned, key=lambda m: m["seq"]) == stored
    session = session_of(alice, sid)
    assert session["message_count"] == total
    assert session["last_message_at"] == stored[-1]["created_at"]


async def test_concurrent_appends_keep_time_in_seq_order(live_server, alice):
    """Chronological means seq order and time order agree: no append may stamp a later seq with
    an earlier created_at, nor move the session's last_message_at / updated_at backwards."""
    sid = new_session(alice)
    async with async_client(live_server, alice) as client:
        responses = await asyncio.gather(
            *(client.post(f"/v1/sessions/{sid}/messages", json=user(f"t{i}")) for i in range(30))
        )
    assert all(r.status_code == 201 for r in responses)
    stored = everything(alice, sid)
    times = [ts(m["created_at"]) for m in stored]
    backwards = [m["seq"] for m, t, before in zip(stored[1:], times[1:], times) if t < before]
    assert backwards == [], f"created_at earlier than the previous message's at seqs {backwards}"
    session = session_of(alice, sid)
    assert ts(session["last_message_at"]) == max(times)
    assert ts(session["updated_at"]) >= max(times)


async def test_concurrent_appends_to_several_sessions(live_server, alice, bob):
    owners = [alice, alice, alice, bob, bob]
    sids = [new_session(owner) for owner in owners]
    bodies = {sid: _mixed_bodies(12, sid[-6:]) for sid in sids}
    clients = {id(owner): async_client(live_server, owner) for owner in (alice, bob)}
    try:
        jobs = [
            clients[id(owner)].post(f"/v1/sessions/{sid}/messages", json=body)
            for owner, sid in zip(owners, sids)
            for body in bodies[sid]
        ]
        responses = await asyncio.gather(*jobs)
    finally:
        for client in clients.values():
            await client.aclose()
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses if r.status_code != 201]
    for owner, sid in zip(owners, sids):
        stored = everything(owner, sid)
        assert_linear_chain(stored)
        assert len(stored) == _stored_count(bodies[sid])
        assert {m["content"] for m in stored} == {
            m["content"] for b in bodies[sid] for m in b.get("messages", [b])
        }
        assert session_of(owner, sid)["message_count"] == len(stored)


# --- idempotency -----------------------------------------------------------------------------


def key() -> str:
    return f"idem-{time.time_ns()}"


def test_retry_with_same_key_returns_first_result_and_stores_once(alice):
    sid = new_session(alice)
    k = key()
    first = alice.post(f"/v1/sessions/{sid}/messages", json=user("once"), headers={"Idempotency-Key": k})
    retry = alice.post(f"/v1/sessions/{sid}/messages", json=user("once"), headers={"Idempotency-Key": k})
    assert first.status_code == 201 and retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    assert [m["id"] for m in everything(alice, sid)] == [first.json()["id"]]
    assert session_of(alice, sid)["message_count"] == 1
    # A new key is a new append.
    other = append(alice, sid, user("once"), headers={"Idempotency-Key": key()})
    assert other["id"] != first.json()["id"] and other["seq"] == 2


def test_batch_retry_with_same_key(alice):
    sid = new_session(alice)
    k, body = key(), {"messages": [user("q"), assistant("a", prompt_tokens=3, completion_tokens=4, cost=0.5)]}
    first = append(alice, sid, body, headers={"Idempotency-Key": k})
    for _ in range(2):
        assert append(alice, sid, body, headers={"Idempotency-Key": k}) == first
    assert [m["id"] for m in everything(alice, sid)] == [m["id"] for m in first["data"]]
    session = session_of(alice, sid)
    assert (session["message_count"], session["total_tokens"], session["total_cost"]) == (2, 7, 0.5)


def test_same_key_with_different_body_is_409(alice):
    sid = new_session(alice)
    other_sid = new_session(alice)
    k = key()
    first = append(alice, sid, user("original"), headers={"Idempotency-Key": k})
    before = (session_of(alice, sid), everything(alice, sid))
    for target, body in ((sid, user("changed")), (sid, {"messages": [user("original")]}), (other_sid, user("original"))):
        response = alice.post(f"/v1/sessions/{target}/messages", json=body, headers={"Idempotency-Key": k})
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "idempotency_key_reused"
        assert isinstance(response.json()["error"], str)
    assert (session_of(alice, sid), everything(alice, sid)) == before
    assert everything(alice, other_sid) == []
    # The original request can still be retried.
    assert append(alice, sid, user("original"), headers={"Idempotency-Key": k}) == first


def test_same_key_from_another_user_is_independent(alice, bob):
    k = key()
    alice_sid, bob_sid = new_session(alice), new_session(bob)
    mine = append(alice, alice_sid, user("same words"), headers={"Idempotency-Key": k})
    theirs = append(bob, bob_sid, user("same words"), headers={"Idempotency-Key": k})
    assert theirs["id"] != mine["id"] and theirs["session_id"] == bob_sid
    assert [m["id"] for m in everything(bob, bob_sid)] == [theirs["id"]]
    assert [m["id"] for m in everything(alice, alice_sid)] == [mine["id"]]
    # Bob cannot replay Alice's result by guessing her key for her session.
    assert bob.post(f"/v1/sessions/{alice_sid}/messages", json=user("same words"), headers={"Idempotency-Key": k}).status_code == 404


def test_failed_request_does_not_use_up_the_key(alice):
    sid = new_session(alice)
    k = key()
    bad = alice.post(
        f"/v1/sessions/{sid}/messages", json=user("x", parent_id="not-a-message"), headers={"Idempotency-Key": k}
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_parent"
    good = append(alice, sid, user("x"), headers={"Idempotency-Key": k})
    assert good["seq"] == 1
    assert [m["id"] for m in everything(alice, sid)] == [good["id"]]


async def test_concurrent_duplicates_with_one_key_store_once(live_server, alice):
    sid = new_session(alice)
    k = key()
    body = {"messages": [user("dup"), assistant("licate")]}
    async with async_client(live_server, alice) as client:
        responses = await asyncio.gather(
            *(client.post(f"/v1/sessions/{sid}/messages", json=body, headers={"Idempotency-Key": k}) for _ in range(5))
        )
    ok = [r for r in responses if r.status_code == 201]
    for r in responses:
        assert r.status_code == 201 or (r.status_code == 409 and r.json()["code"] == "idempotency_in_flight"), r.text
    assert ok, [r.text for r in responses]
    assert all(r.json() == ok[0].json() for r in ok)
    stored = everything(alice, sid)
    assert [m["id"] for m in stored] == [m["id"] for m in ok[0].json()["data"]]
    assert session_of(alice, sid)["message_count"] == 2
