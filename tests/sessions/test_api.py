"""Sessions REST API over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import httpx


def create(client: httpx.Client, **body) -> dict:
    response = client.post("/v1/sessions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_defaults(alice):
    session = create(alice)
    assert session["agent"] == "default"
    assert session["model"] == "echo"
    assert session["max_history_messages"] == 20
    assert session["summarization"] is False
    assert session["title"] is None
    assert session["message_count"] == 0
    assert session["created_at"].endswith("Z")
    assert alice.get(f"/v1/sessions/{session['id']}").json() == session


def test_create_with_every_field_and_alias(alice):
    session = create(
        alice,
        id="thread-abc:1.x_y",
        session_name="Trip",
        agent="travel",
        model="gpt-x",
        temperature=0.3,
        max_tokens=500,
        system_prompt="Be brief.",
        max_history_messages=7,
        summarization=True,
        metadata={"k": "v", "n": 3},
    )
    assert session["id"] == "thread-abc:1.x_y"
    assert session["title"] == "Trip"
    assert (session["agent"], session["model"], session["temperature"], session["max_tokens"]) == (
        "travel", "gpt-x", 0.3, 500,
    )
    assert session["system_prompt"] == "Be brief."
    assert session["max_history_messages"] == 7
    assert session["summarization"] is True
    assert session["metadata"] == {"k": "v", "n": 3}


def test_duplicate_client_id_conflicts(alice, bob):
    create(alice, id=f"dup-{time.time_ns()}")
    sid = create(alice)["id"]
    response = bob.post("/v1/sessions", json={"id": sid})
    assert response.status_code == 409
    assert response.json()["code"] == "session_exists"


def test_list_order_pinned_then_recent(alice):
    first = create(alice, title="first")
    second = create(alice, title="second")
    third = create(alice, title="third")
    assert alice.patch(f"/v1/sessions/{first['id']}", json={"pinned": True}).status_code == 200
    alice.post(f"/v1/sessions/{second['id']}/messages", json={"role": "user", "content": "bump"})
    titles = [s["title"] for s in alice.get("/v1/sessions").json()["data"]]
    assert titles == ["first", "second", "third"]


def test_keyset_and_offset_pagination_cover_everything_once(alice):
    ids = {create(alice, title=f"s{i}")["id"] for i in range(7)}
    alice.patch(f"/v1/sessions/{sorted(ids)[3]}", json={"pinned": True})
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = alice.get("/v1/sessions", params=params).json()
        seen += [s["id"] for s in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert len(seen) == 7 and set(seen) == ids
    by_offset = [s["id"] for off in (0, 3, 6) for s in alice.get("/v1/sessions", params={"limit": 3, "offset": off}).json()["data"]]
    assert by_offset == seen


def test_filters(alice):
    a = create(alice, agent="bot-a", title="Quarterly report", metadata={"team": "red", "n": 5})
    b = create(alice, agent="bot-b", title="Holiday plans", metadata={"team": "blue"})
    listed = lambda **p: {s["id"] for s in alice.get("/v1/sessions", params=p).json()["data"]}  # noqa: E731
    assert listed(agent="bot-a") == {a["id"]}
    assert listed(q="quarterly") == {a["id"]}
    assert listed(q="blue") == {b["id"]}
    assert listed(q="100%") == set()
    assert listed(**{"metadata[team]": "blue"}) == {b["id"]}
    assert listed(**{"metadata[n]": "5", "metadata[team]": "red"}) == {a["id"]}
    alice.patch(f"/v1/sessions/{a['id']}", json={"archived": True})
    assert a["id"] not in listed()
    assert listed(archived="true") == {a["id"]}
    alice.patch(f"/v1/sessions/{b['id']}", json={"pinned": True})
    assert listed(pinned="true") == {b["id"]}


def test_patch_and_put(alice):
    session = create(alice)
    response = alice.patch(
        f"/v1/sessions/{session['id']}",
        json={"title": "Renamed", "temperature": 1.5, "metadata": {"x": 1}, "archived": True},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["title"], body["temperature"], body["metadata"], body["archived"]) == ("Renamed", 1.5, {"x": 1}, True)
    assert body["updated_at"] >= session["updated_at"]
    put = alice.put(f"/v1/sessions/{session['id']}", json={"temperature": None, "max_tokens": 9})
    assert put.status_code == 200
    assert put.json()["temperature"] is None and put.json()["max_tokens"] == 9
    assert put.json()["title"] == "Renamed"


def test_patch_unknown_field_is_422_and_changes_nothing(alice):
    session = create(alice, title="keep")
    response = alice.patch(f"/v1/sessions/{session['id']}", json={"title": "new", "colour": "red"})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert any(f["field"] == "colour" for f in response.json()["fields"])
    assert alice.get(f"/v1/sessions/{session['id']}").json()["title"] == "keep"


def test_soft_delete_restore_and_hard_delete(alice):
    session = create(alice, title="doomed")
    sid = session["id"]
    alice.post(f"/v1/sessions/{sid}/messages", json={"role": "user", "content": "hi"})
    assert alice.delete(f"/v1/sessions/{sid}").status_code == 204
    assert alice.get(f"/v1/sessions/{sid}").status_code == 404
    assert alice.get(f"/v1/sessions/{sid}/messages").status_code == 404
    assert sid not in {s["id"] for s in alice.get("/v1/sessions").json()["data"]}
    assert sid in {s["id"] for s in alice.get("/v1/sessions", params={"deleted": "true"}).json()["data"]}
    restored = alice.post(f"/v1/sessions/{sid}/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    assert alice.get(f"/v1/sessions/{sid}/messages").json()["data"][0]["content"] == "hi"
    assert alice.delete(f"/v1/sessions/{sid}", params={"hard": "true"}).status_code == 204
    assert alice.get(f"/v1/sessions/{sid}").status_code == 404
    assert alice.post(f"/v1/sessions/{sid}/restore").status_code == 404
    assert sid not in {s["id"] for s in alice.get("/v1/sessions", params={"deleted": "true"}).json()["data"]}


def test_title_from_first_user_message(alice):
    session = create(alice)
    sid = session["id"]
    alice.post(f"/v1/sessions/{sid}/messages", json={"role": "system", "content": "You are terse."})
    long_text = "  Please   summarise the attached quarterly figures for the board meeting next week\nthanks"
    alice.post(f"/v1/sessions/{sid}/messages", json={"role": "user", "content": long_text})
    title = alice.get(f"/v1/sessions/{sid}").json()["title"]
    assert title == "Please summarise the attached quarterly figures for the…"
    assert len(title) <= 60
    alice.post(f"/v1/sessions/{sid}/messages", json={"role": "user", "content": "Another question"})
    assert alice.get(f"/v1/sessions/{sid}").json()["title"] == title


def test_explicit_title_is_never_overwritten(alice):
    sid = create(alice, title="Mine")["id"]
    alice.post(f"/v1/sessions/{sid}/messages", json={"role": "user", "content": "hello there"})
    assert alice.get(f"/v1/sessions/{sid}").json()["title"] == "Mine"
    untitled = create(alice)["id"]
    alice.patch(f"/v1/sessions/{untitled}", json={"title": "Renamed first"})
    alice.post(f"/v1/sessions/{untitled}/messages", json={"role": "user", "content": "hello there"})
    assert alice.get(f"/v1/sessions/{untitled}").json()["title"] == "Renamed first"
