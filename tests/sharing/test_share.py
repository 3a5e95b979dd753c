"""Share links over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx


def session_with(client: httpx.Client, messages: list[dict], **body) -> tuple[str, list[dict]]:
    sid = client.post("/v1/sessions", json=body).json()["id"]
    response = client.post(f"/v1/sessions/{sid}/messages", json={"messages": messages})
    assert response.status_code == 201, response.text
    return sid, response.json()["data"]


TURNS = [
    {"role": "user", "content": "q1"},
    {"role": "assistant", "content": "a1", "metadata": {"private": {"x": 1}, "_internal": 2, "lang": "en"}},
    {"role": "user", "content": "q2"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "secret tool output"},
    {"role": "assistant", "content": "a2"},
    {"role": "user", "content": "q3"},
]


def test_share_defaults_to_the_latest_reply_and_hides_the_rest(alice, anon):
    sid, stored = session_with(alice, TURNS, title="Trip", metadata={"owner_note": "x"})
    response = alice.post(f"/v1/sessions/{sid}/share")
    assert response.status_code == 200, response.text
    share = response.json()
    assert share["until_message_id"] == stored[5]["id"]
    assert share["url"].endswith(f"/v1/shared/{share['share_id']}")
    assert sid not in share["share_id"] and len(share["share_id"]) >= 32

    view = anon.get(f"/v1/shared/{share['share_id']}")
    assert view.status_code == 200
    body = view.json()
    assert body["title"] == "Trip" and body["until_message_id"] == stored[5]["id"]
    text = view.text
    assert sid not in text and alice.user["id"] not in text and "owner_note" not in text

    messages = anon.get(f"/v1/shared/{share['share_id']}/messages").json()["data"]
    assert [m["content"] for m in messages] == ["q1", "a1", "q2", "a2"]
    assert messages[1]["metadata"] == {"lang": "en"}
    assert "session_id" not in messages[0]
    with_tools = anon.get(f"/v1/shared/{share['share_id']}/messages", params={"include_tools": "true"}).json()["data"]
    assert [m["role"] for m in with_tools] == ["user", "assistant", "user", "assistant", "tool", "assistant"]
    assert with_tools[4]["content"] == "secret tool output"


def test_user_message_boundary_moves_back_and_none_is_422(alice, anon):
    sid, stored = session_with(alice, TURNS)
    share = alice.post(f"/v1/sessions/{sid}/share", json={"until_message_id": stored[2]["id"]}).json()
    assert share["until_message_id"] == stored[1]["id"]
    messages = anon.get(f"/v1/shared/{share['share_id']}/messages").json()["data"]
    assert [m["content"] for m in messages] == ["q1", "a1"]

    response = alice.post(f"/v1/sessions/{sid}/share", json={"until_message_id": stored[0]["id"]})
    assert response.status_code == 422
    assert response.json()["code"] == "no_reply_to_share"
    only_user, _ = session_with(alice, [{"role": "user", "content": "hello"}])
    assert alice.post(f"/v1/sessions/{only_user}/share").json()["code"] == "no_reply_to_share"
    assert alice.post(f"/v1/sessions/{sid}/share", json={"until_message_id": "nope"}).status_code == 404


def test_reshare_moves_the_boundary_and_later_messages_stay_private(alice, anon):
    sid, stored = session_with(alice, TURNS[:2])
    first = alice.post(f"/v1/sessions/{sid}/share").json()
    alice.post(f"/v1/sessions/{sid}/messages", json={"messages": [
        {"role": "user", "content": "later q"}, {"role": "assistant", "content": "later a"},
    ]})
    contents = [m["content"] for m in anon.get(f"/v1/shared/{first['share_id']}/messages").json()["data"]]
    assert contents == ["q1", "a1"]
    # The owner still reads everything.
    assert alice.get(f"/v1/sessions/{sid}/messages").json()["data"][-1]["content"] == "later a"

    again = alice.post(f"/v1/sessions/{sid}/share").json()
    assert again["share_id"] == first["share_id"]
    contents = [m["content"] for m in anon.get(f"/v1/shared/{first['share_id']}/messages").json()["data"]]
    assert contents == ["q1", "a1", "later q", "later a"]
    assert alice.get(f"/v1/sessions/{sid}/share").json()["until_message_id"] == again["until_message_id"]


def test_shared_messages_paginate_within_the_boundary(alice, anon):
    turns = [{"role": r, "content": f"{r}{i}"} for i in range(5) for r in ("user", "assistant")]
    sid, stored = session_with(alice, turns)
    share = alice.post(f"/v1/sessions/{sid}/share", json={"until_message_id": stored[6]["id"]}).json()
    assert share["until_message_id"] == stored[5]["id"]
    seen, cursor = [], None
    while True:
        page = anon.get(f"/v1/shared/{share['share_id']}/messages", params={"limit": 4, **({"cursor": cursor} if cursor else {})}).json()
        seen += [m["content"] for m in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == [t["content"] for t in turns[:6]]
    desc = anon.get(f"/v1/shared/{share['share_id']}/messages", params={"order": "desc", "limit": 2}).json()
    assert [m["content"] for m in desc["data"]] == ["assistant2", "user2"]
    beyond = anon.get(f"/v1/shared/{share['share_id']}/messages", params={"after": 6}).json()
    assert beyond["data"] == []


def test_revoke_and_access_rules(alice, bob, anon):
    sid, _ = session_with(alice, TURNS[:2])
    share = alice.post(f"/v1/sessions/{sid}/share").json()
    # Others cannot share, read or revoke through the session id; the share id gives no write access.
    assert bob.post(f"/v1/sessions/{sid}/share").status_code == 404
    assert bob.delete(f"/v1/sessions/{sid}/share").status_code == 404
    assert bob.get(f"/v1/sessions/{sid}/share").status_code == 404
    assert anon.post(f"/v1/sessions/{sid}/share").status_code == 401
    assert bob.get(f"/v1/sessions/{share['share_id']}").status_code == 404
    assert bob.post(f"/v1/sessions/{share['share_id']}/messages", json={"role": "user", "content": "x"}).status_code == 404
    assert anon.post(f"/v1/shared/{share['share_id']}/messages", json={"role": "user", "content": "x"}).status_code == 405
    # The session id is not a share id.
    assert anon.get(f"/v1/shared/{sid}").status_code == 404

    assert alice.delete(f"/v1/sessions/{sid}/share").status_code == 204
    assert anon.get(f"/v1/shared/{share['share_id']}").status_code == 404
    assert anon.get(f"/v1/shared/{share['share_id']}/messages").status_code == 404
    assert alice.delete(f"/v1/sessions/{sid}/share").status_code == 404
    fresh = alice.post(f"/v1/sessions/{sid}/share").json()
    assert fresh["share_id"] != share["share_id"]


def test_a_deleted_session_is_no_longer_shared(alice, anon):
    sid, _ = session_with(alice, TURNS[:2])
    share = alice.post(f"/v1/sessions/{sid}/share").json()
    alice.delete(f"/v1/sessions/{sid}")
    assert anon.get(f"/v1/shared/{share['share_id']}").status_code == 404
    alice.post(f"/v1/sessions/{sid}/restore")
    assert anon.get(f"/v1/shared/{share['share_id']}").status_code == 200
    alice.delete(f"/v1/sessions/{sid}", params={"hard": "true"})
    assert anon.get(f"/v1/shared/{share['share_id']}").status_code == 404
