"""Forks over real HTTP, on SQLite and PostgreSQL; the fork note as the model sees it."""

from __future__ import annotations

from tests.sharing.test_share import TURNS, session_with


def contents(client, sid, **params) -> list:
    return [m["content"] for m in client.get(f"/v1/sessions/{sid}/messages", params=params).json()["data"]]


def test_owner_fork_copies_up_to_a_message(alice):
    sid, stored = session_with(alice, TURNS, title="Trip", model="echo", temperature=0.3, system_prompt="Be brief.", metadata={"k": "v"})
    response = alice.post(f"/v1/sessions/{sid}/fork", json={"until_message_id": stored[2]["id"]})
    assert response.status_code == 201, response.text
    fork = response.json()
    assert fork["id"] != sid
    assert fork["title"] == "Trip (fork)"
    assert fork["forked_from"] == {"session_id": sid, "message_id": stored[2]["id"]}
    assert (fork["model"], fork["temperature"], fork["system_prompt"], fork["metadata"]) == ("echo", 0.3, "Be brief.", {"k": "v"})
    assert contents(alice, fork["id"]) == ["q1", "a1", "q2"]
    assert fork["message_count"] == 3

    whole = alice.post(f"/v1/sessions/{sid}/fork", json={"title": "Mine"}).json()
    assert whole["title"] == "Mine"
    assert contents(alice, whole["id"], include_tools="true") == contents(alice, sid, include_tools="true")
    assert whole["forked_from"] == {"session_id": sid, "message_id": stored[-1]["id"]}


def test_copies_are_independent(alice):
    sid, _ = session_with(alice, TURNS[:2], title="Orig")
    fork = alice.post(f"/v1/sessions/{sid}/fork").json()
    alice.post(f"/v1/sessions/{fork['id']}/messages", json={"role": "user", "content": "only in fork"})
    alice.post(f"/v1/sessions/{sid}/messages", json={"role": "user", "content": "only in original"})
    alice.patch(f"/v1/sessions/{fork['id']}", json={"title": "Renamed"})
    assert contents(alice, sid) == ["q1", "a1", "only in original"]
    assert contents(alice, fork["id"]) == ["q1", "a1", "only in fork"]
    assert alice.get(f"/v1/sessions/{sid}").json()["title"] == "Orig"
    assert alice.delete(f"/v1/sessions/{sid}", params={"hard": "true"}).status_code == 204
    assert contents(alice, fork["id"]) == ["q1", "a1", "only in fork"]


def test_others_cannot_fork_a_session_directly(alice, bob, anon):
    sid, _ = session_with(alice, TURNS[:2])
    assert bob.post(f"/v1/sessions/{sid}/fork").status_code == 404
    assert anon.post(f"/v1/sessions/{sid}/fork").status_code == 401


def test_fork_of_a_share_stops_at_the_boundary(alice, bob, anon):
    sid, stored = session_with(alice, TURNS, title="Shared", metadata={"secret": "s"})
    share = alice.post(f"/v1/sessions/{sid}/share", json={"until_message_id": stored[2]["id"]}).json()
    assert anon.post(f"/v1/shared/{share['share_id']}/fork").status_code == 401
    response = bob.post(f"/v1/shared/{share['share_id']}/fork")
    assert response.status_code == 201, response.text
    fork = response.json()
    assert fork["title"] == "Shared (fork)"
    assert fork["forked_from"] == {"share_id": share["share_id"], "message_id": stored[1]["id"]}
    assert fork["metadata"] == {}
    assert contents(bob, fork["id"], include_tools="true") == ["q1", "a1"]
    assert sid not in str(fork)
    # Bob's copy is his: the original stays untouched, and Bob still cannot see it.
    bob.post(f"/v1/sessions/{fork['id']}/messages", json={"role": "user", "content": "bob's turn"})
    assert len(contents(alice, sid, include_tools="true")) == len(TURNS)
    assert bob.get(f"/v1/sessions/{sid}").status_code == 404
    # Revoked: no more forks.
    alice.delete(f"/v1/sessions/{sid}/share")
    assert bob.post(f"/v1/shared/{share['share_id']}/fork").status_code == 404


def _note_in_context(client, sid) -> list[dict]:
    view = client.get(f"/v1/sessions/{sid}/context").json()
    return [m for m in view["messages"] if m["role"] == "system"]


def test_non_owner_fork_gets_the_note_in_its_context(alice, bob, live_server):
    sid, _ = session_with(alice, TURNS[:2], title="Help", system_prompt="You help.")
    share = alice.post(f"/v1/sessions/{sid}/share").json()
    theirs = bob.post(f"/v1/shared/{share['share_id']}/fork").json()
    own = alice.post(f"/v1/shared/{share['share_id']}/fork").json()
    mine = alice.post(f"/v1/sessions/{sid}/fork").json()

    system = _note_in_context(bob, theirs["id"])
    assert [m["content"] for m in system] == ["You help.", live_server.settings.fork_note]
    assert _note_in_context(alice, own["id"]) == [{"role": "system", "content": "You help."}]
    assert _note_in_context(alice, mine["id"]) == [{"role": "system", "content": "You help."}]

    # The echo model counts what it received: system prompt + note + 2 history + the new message.
    reply = bob.post("/v1/chat/completions", json={
        "model": "echo", "session_id": theirs["id"], "messages": [{"role": "user", "content": "go on"}],
    })
    assert reply.status_code == 200, reply.text
    assert "I received 5 messages" in reply.json()["choices"][0]["message"]["content"]
    reply = alice.post("/v1/chat/completions", json={
        "model": "echo", "session_id": mine["id"], "messages": [{"role": "user", "content": "go on"}],
    })
    assert "I received 4 messages" in reply.json()["choices"][0]["message"]["content"]
