"""Anonymous visitors over real HTTP with real cookies: chats, claim on login, tampering."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator

import httpx
import pytest

from chatkeep.auth import cookies
from chatkeep.db.migrate import upgrade
from tests.conftest import ADMIN_KEY, LiveServer, _ServerThread, drop_database, fresh_database_url, make_settings, new_user


@pytest.fixture(scope="session")
def anon_server(backend, tmp_path_factory) -> Iterator[LiveServer]:
    url = fresh_database_url(backend, "anonymous", tmp_path_factory.mktemp(f"anon-{backend}"))
    upgrade(url)
    # SQLite: no secret set, so the server generates one next to the database file.
    secret = None if backend == "sqlite" else "test-secret-for-postgres"
    settings = make_settings(url, allow_anonymous=True, secret_key=secret)
    with _ServerThread(settings) as thread:
        yield LiveServer(url=f"http://127.0.0.1:{thread.port}", settings=settings, backend=backend)
    drop_database(url)


@pytest.fixture
def browser(anon_server) -> Iterator[httpx.Client]:
    """A client with a cookie jar and no credentials, like a browser tab."""
    with httpx.Client(base_url=anon_server.url, timeout=30) as client:
        yield client


@pytest.fixture
def make_user(anon_server):
    def make(prefix: str = "u") -> dict:
        with httpx.Client(base_url=anon_server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as admin:
            return new_user(admin, prefix)
    return make


def chat(client: httpx.Client, agent: str, message: str, **extra) -> tuple[str, str]:
    """One streamed turn: (session id, the reply text)."""
    response = client.post(f"/v1/agents/{agent}/chat", json={"message": message, **extra})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    text = ""
    for line in response.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices", []):
                text += choice["delta"].get("content") or ""
    assert response.text.rstrip().endswith("data: [DONE]")
    return response.headers["x-chatkeep-session-id"], text


def put(client: httpx.Client, name: str, value: str) -> None:
    """Set a cookie as the server would (same domain), replacing the server's."""
    client.cookies.set(name, value, domain="127.0.0.1", path="/")


def threads(client: httpx.Client, agent: str) -> list[str]:
    raw = client.cookies.get(f"{agent}_threads_anonymous")
    return [t for t in (raw or "").strip('"').replace("\\054", ",").split(",") if t]


def test_full_anonymous_flow_then_login_claims_everything(browser, make_user, anon_server):
    first, reply = chat(browser, "helper", "Plan a trip to Lisbon")
    assert "I received 1 message" in reply
    visitor = browser.cookies.get("chatkeep_visitor")
    assert browser.cookies.get("helper_thread_id") == first
    assert threads(browser, "helper") == [first]

    again, reply = chat(browser, "helper", "And day two?")
    assert again == first and "I received 3 messages" in reply
    second, _ = chat(browser, "helper", "Something else", clear_history=True)
    assert second != first
    assert browser.cookies.get("helper_thread_id") == second
    assert threads(browser, "helper") == [first, second]
    other, _ = chat(browser, "coder", "Write a haiku")
    assert threads(browser, "coder") == [other] and threads(browser, "helper") == [first, second]
    assert browser.cookies.get("chatkeep_visitor") == visitor

    # Visitors cannot list sessions (that needs a user), nor read them through the user API.
    assert browser.get("/v1/sessions").status_code == 401
    assert browser.get(f"/v1/sessions/{first}").status_code == 401

    # Log in: the browser's anonymous sessions become the user's, all at once.
    user = make_user("claimer")
    response = browser.post("/v1/auth/session", headers={"Authorization": f"Bearer {user['api_key']}"})
    assert response.status_code == 200, response.text
    assert response.json() == {"user_id": user["user"]["id"], "claimed_sessions": 3}
    assert browser.cookies.get("chatkeep_visitor") is None
    assert browser.cookies.get("helper_threads_anonymous") is None
    assert browser.cookies.get("coder_threads_anonymous") is None
    assert browser.cookies.get("helper_thread_id") == second
    set_cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in set_cookies if c.startswith("chatkeep_session="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie and "Secure" not in session_cookie

    # The session cookie alone now acts as the user.
    listed = browser.get("/v1/sessions").json()["data"]
    assert {s["id"] for s in listed} == {first, second, other}
    assert {s["title"] for s in listed} == {"Plan a trip to Lisbon", "Something else", "Write a haiku"}
    assert browser.get("/v1/me").json()["id"] == user["user"]["id"]
    # The current thread continues, as the user.
    continued, reply = chat(browser, "helper", "More please")
    assert continued == second and "I received 3 messages" in reply
    assert browser.cookies.get("helper_threads_anonymous") is None

    # Sign out: the cookie goes, and with it access.
    assert browser.delete("/v1/auth/session").status_code == 204
    assert browser.cookies.get("chatkeep_session") is None
    assert browser.get("/v1/sessions").status_code == 401


def test_tampered_cookies_are_ignored(browser, anon_server):
    first, _ = chat(browser, "helper", "mine")
    visitor = browser.cookies.get("chatkeep_visitor")
    payload, issued, mac = visitor.split(".")
    forged_mac = ("A" if mac[0] != "A" else "B") + mac[1:]
    for forged in (f"{payload}.{issued}.{forged_mac}", f"{payload}.{int(issued) + 1}.{mac}", "garbage", ""):
        with httpx.Client(base_url=anon_server.url, timeout=30) as other:
            put(other, "chatkeep_visitor", forged)
            put(other, "helper_thread_id", first)
            sid, reply = chat(other, "helper", "let me in")
            assert sid != first and "I received 1 message" in reply
            assert other.cookies.get("chatkeep_visitor") not in (visitor, forged)
    # A forged visitor id signed with another key is ignored too.
    with httpx.Client(base_url=anon_server.url, timeout=30) as other:
        put(other, "chatkeep_visitor", cookies.sign(b"not-the-key", "visitor", "visitor_x"))
        sid, _ = chat(other, "helper", "hi")
        assert sid != first
    # A visitor cookie is not a session cookie.
    with httpx.Client(base_url=anon_server.url, timeout=30) as other:
        put(other, "chatkeep_session", visitor)
        assert other.get("/v1/me").status_code == 401
    # The real owner still continues.
    again, _ = chat(browser, "helper", "still mine")
    assert again == first


def test_a_claimed_visitor_cannot_be_claimed_again(browser, make_user, anon_server):
    sid, _ = chat(browser, "helper", "before login")
    stolen = browser.cookies.get("chatkeep_visitor")
    alice, bob = make_user("alice"), make_user("bob")
    response = browser.post("/v1/me/claim", headers={"Authorization": f"Bearer {alice['api_key']}"})
    assert response.status_code == 200 and response.json() == {"claimed_sessions": 1}
    again = browser.post("/v1/me/claim", headers={"Authorization": f"Bearer {alice['api_key']}"})
    assert again.json() == {"claimed_sessions": 0}

    with httpx.Client(base_url=anon_server.url, timeout=30, headers={"Authorization": f"Bearer {bob['api_key']}"}) as thief:
        put(thief, "chatkeep_visitor", stolen)
        response = thief.post("/v1/me/claim")
        assert response.status_code == 409 and response.json()["code"] == "visitor_already_claimed"
        assert thief.get("/v1/sessions").json()["data"] == []
        assert thief.get(f"/v1/sessions/{sid}").status_code == 404
    # Reusing the stolen cookie anonymously gets a fresh visitor, not the claimed sessions.
    with httpx.Client(base_url=anon_server.url, timeout=30) as thief:
        put(thief, "chatkeep_visitor", stolen)
        put(thief, "helper_thread_id", sid)
        new_sid, _ = chat(thief, "helper", "hello?")
        assert new_sid != sid and thief.cookies.get("chatkeep_visitor") != stolen
    with httpx.Client(base_url=anon_server.url, timeout=30, headers={"Authorization": f"Bearer {alice['api_key']}"}) as owner:
        assert [s["id"] for s in owner.get("/v1/sessions").json()["data"]] == [sid]


def test_claim_on_any_authenticated_chat_request(browser, make_user):
    sid, _ = chat(browser, "helper", "anonymous")
    user = make_user("chatter")
    browser.headers["Authorization"] = f"Bearer {user['api_key']}"
    continued, reply = chat(browser, "helper", "now logged in")
    assert continued == sid and "I received 3 messages" in reply
    assert browser.cookies.get("chatkeep_visitor") is None
    assert browser.cookies.get("helper_threads_anonymous") is None
    assert [s["id"] for s in browser.get("/v1/sessions").json()["data"]] == [sid]


def test_bad_agent_names_and_bodies(browser):
    assert browser.post("/v1/agents/bad name/chat", json={"message": "x"}).status_code == 422
    assert browser.post("/v1/agents/helper/chat", json={"message": ""}).status_code == 422
    assert browser.post("/v1/agents/helper/chat", json={"message": "x", "extra": 1}).status_code == 422


def test_anonymous_chat_is_off_by_default(anon):
    response = anon.post("/v1/agents/helper/chat", json={"message": "hi"})
    assert response.status_code == 401


def test_secret_key_is_generated_once_and_kept(tmp_path):
    settings = make_settings(f"sqlite:///{tmp_path / 'sub' / 'chatkeep.db'}", secret_key=None)
    key = cookies.secret_key(settings)
    path = tmp_path / "sub" / "secret_key"
    assert path.exists() and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(key) >= 32 and cookies.secret_key(settings) == key
    assert cookies.secret_key(make_settings(settings.database_url, secret_key="explicit")) == b"explicit"
    signed = cookies.sign(key, "visitor", "visitor_1")
    assert cookies.unsign(key, "visitor", signed, max_age=60) == "visitor_1"
    assert cookies.unsign(key, "session", signed, max_age=60) is None
    assert cookies.unsign(key, "visitor", cookies.sign(key, "visitor", "v", now=0), max_age=60) is None


def test_cookie_attributes(browser):
    response = browser.post("/v1/agents/helper/chat", json={"message": "hi"})
    assert response.status_code == 200
    set_cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    assert set(set_cookies) == {"chatkeep_visitor", "helper_thread_id", "helper_threads_anonymous"}
    for header in set_cookies.values():
        assert "HttpOnly" in header and "SameSite=lax" in header and "Path=/" in header
    visitor_id = set_cookies["chatkeep_visitor"].split("=", 1)[1].split(";")[0]
    assert visitor_id.count(".") == 2  # signed: payload.issued.mac
