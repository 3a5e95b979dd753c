"""The fork note, as the fake upstream model receives it (streamed and not)."""

from __future__ import annotations


def _shared_session(owner) -> str:
    sid = owner.post("/v1/sessions", json={"system_prompt": "You run reports.", "model": "fake-priced", "title": "Reports"}).json()["id"]
    owner.post(f"/v1/sessions/{sid}/messages", json={"messages": [
        {"role": "user", "content": "run the sales report"}, {"role": "assistant", "content": "done: 42"},
    ]})
    return owner.post(f"/v1/sessions/{sid}/share").json()["share_id"]


def test_the_upstream_sees_the_note_in_another_users_fork_only(gw_user, gw_other, fake, gateway_server):
    share = _shared_session(gw_user)
    theirs = gw_other.post(f"/v1/shared/{share}/fork").json()
    assert theirs["model"] == "fake-priced"
    response = gw_other.post("/v1/chat/completions", json={"session_id": theirs["id"], "messages": [{"role": "user", "content": "again"}]})
    assert response.status_code == 200, response.text
    assert fake.last()["messages"] == [
        {"role": "system", "content": "You run reports."},
        {"role": "system", "content": gateway_server.settings.fork_note},
        {"role": "user", "content": "run the sales report"},
        {"role": "assistant", "content": "done: 42"},
        {"role": "user", "content": "again"},
    ]
    # Streamed turns too.
    response = gw_other.post("/v1/chat/completions", json={"session_id": theirs["id"], "stream": True, "messages": [{"role": "user", "content": "more"}]})
    assert response.status_code == 200
    assert fake.last()["messages"][1] == {"role": "system", "content": gateway_server.settings.fork_note}

    mine = gw_user.post(f"/v1/shared/{share}/fork").json()
    gw_user.post("/v1/chat/completions", json={"session_id": mine["id"], "messages": [{"role": "user", "content": "again"}]})
    assert [m["content"] for m in fake.last()["messages"] if m["role"] == "system"] == ["You run reports."]
