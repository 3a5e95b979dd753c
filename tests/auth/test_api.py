"""Users, API keys, admin endpoints and the 401/403/404 rules, over real HTTP on both backends."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest
from sqlalchemy import text

from chatkeep.auth import service
from chatkeep.db import Database, session_scope
from tests.conftest import ADMIN_KEY, new_user

# Every /v1 endpoint (method, path, json body); ids in paths need not exist: auth comes first.
V1_ENDPOINTS = [
    ("POST", "/v1/admin/users", {"name": "nobody"}),
    ("GET", "/v1/admin/users", None),
    ("GET", "/v1/me", None),
    ("POST", "/v1/sessions", {}),
    ("GET", "/v1/sessions", None),
    ("GET", "/v1/sessions/s-1", None),
    ("PATCH", "/v1/sessions/s-1", {"title": "x"}),
    ("PUT", "/v1/sessions/s-1", {"title": "x"}),
    ("DELETE", "/v1/sessions/s-1", None),
    ("POST", "/v1/sessions/s-1/restore", None),
    ("POST", "/v1/sessions/s-1/messages", {"role": "user", "content": "hi"}),
    ("GET", "/v1/sessions/s-1/messages", None),
    ("GET", "/v1/sessions/s-1/messages/m-1", None),
]
ADMIN_ENDPOINTS = V1_ENDPOINTS[:2]


def in_store(settings, work):
    """Run `work(db)` through the service layer on the server's database, in its own unit of work."""

    async def main():
        database = Database(settings)
        try:
            async with session_scope(database) as db:
                return await work(db)
        finally:
            await database.dispose()

    return asyncio.run(main())


def call(client: httpx.Client, method: str, path: str, body=None, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.request(method, path, json=body, headers=headers)


# --- admin endpoints -------------------------------------------------------------------------


def test_admin_creates_user_with_a_working_random_key(admin, anon):
    name = f"carol-{uuid.uuid4()}"
    response = admin.post("/v1/admin/users", json={"name": name, "email": "carol@example.com"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"user", "api_key", "api_key_id"}
    assert body["user"]["name"] == name and body["user"]["email"] == "carol@example.com"
    key = body["api_key"]
    # "ck_" + URL-safe base64: at least 22 characters after the prefix carry >= 128 bits.
    assert re.fullmatch(r"ck_[A-Za-z0-9_-]{22,}", key), key
    assert new_user(admin)["api_key"] != key
    me = call(anon, "GET", "/v1/me", token=key)
    assert me.status_code == 200 and me.json() == body["user"]


def test_duplicate_user_name_conflicts(admin):
    name = f"dup-{uuid.uuid4()}"
    assert admin.post("/v1/admin/users", json={"name": name}).status_code == 201
    response = admin.post("/v1/admin/users", json={"name": name})
    assert response.status_code == 409
    assert response.json()["code"] == "user_exists"


def test_list_users_cursor_and_offset_pages(admin):
    created = {new_user(admin)["user"]["id"] for _ in range(3)}
    seen, cursor = [], None
    while True:
        page = admin.get("/v1/admin/users", params={"limit": 7, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        page = page.json()
        assert len(page["data"]) <= 7
        seen += [u["id"] for u in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert created <= set(seen)
    assert len(seen) == len(set(seen))
    first_two = admin.get("/v1/admin/users", params={"limit": 2}).json()["data"]
    second = admin.get("/v1/admin/users", params={"limit": 1, "offset": 1}).json()["data"]
    assert second == first_two[1:2]


@pytest.mark.parametrize("method,path,body", ADMIN_ENDPOINTS)
def test_admin_endpoints_need_the_admin_key(anon, alice, method, path, body):
    assert call(anon, method, path, body).status_code == 401
    assert call(anon, method, path, body, token=ADMIN_KEY + "x").status_code == 401
    forbidden = call(anon, method, path, body, token=alice.api_key)
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "admin_required"


def test_admin_key_cannot_act_as_a_user(admin):
    response = admin.get("/v1/sessions")
    assert response.status_code == 403
    assert response.json()["code"] == "user_required"
    assert admin.get("/v1/me").status_code == 403


def test_me_returns_the_caller(alice, bob):
    assert alice.get("/v1/me").json() == alice.user
    assert bob.get("/v1/me").json() == bob.user


# --- keys ------------------------------------------------------------------------------------


def test_revoked_key_stops_working_at_once(live_server, admin, anon):
    created = new_user(admin, "revoke")
    user_id = created["user"]["id"]
    spare, spare_key = in_store(live_server.settings, lambda db: service.create_key(db, user_id, "spare"))
    assert call(anon, "GET", "/v1/me", token=created["api_key"]).status_code == 200
    in_store(live_server.settings, lambda db: service.revoke_key(db, created["api_key_id"]))
    response = call(anon, "GET", "/v1/me", token=created["api_key"])
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"
    # Only that key: the user's other key still works.
    assert call(anon, "GET", "/v1/me", token=spare_key).json()["id"] == user_id


def test_last_used_at_is_set_after_use(live_server, admin, anon):
    created = new_user(admin, "lastused")

    def last_used():
        keys = in_store(live_server.settings, lambda db: service.list_keys(db, created["user"]["id"]))
        return {k.id: k.last_used_at for k in keys}[created["api_key_id"]]

    assert last_used() is None
    assert call(anon, "GET", "/v1/sessions", token=created["api_key"]).status_code == 200
    assert last_used() is not None


def test_store_holds_only_a_hash_of_the_key(live_server, admin):
    created = new_user(admin, "hashed")
    key = created["api_key"]

    async def rows(db):
        result = await db.execute(
            text("SELECT * FROM api_keys WHERE user_id = :u"), {"u": created["user"]["id"]}
        )
        return [tuple(row) for row in result]

    stored = in_store(live_server.settings, rows)
    assert len(stored) == 1
    cells = [str(cell) for cell in stored[0] if cell is not None]
    secret = key[len("ck_") + 8 :]  # past anything a listing prefix may show
    assert not any(key in cell or secret in cell for cell in cells), cells
    assert service.hash_key(key) in cells


# --- 401 without credentials, public probes ----------------------------------------------------


@pytest.mark.parametrize("method,path,body", V1_ENDPOINTS)
@pytest.mark.parametrize("token", [None, "ck_not-a-real-key-0123456789abcdef", "garbage"])
def test_every_v1_endpoint_needs_credentials(anon, method, path, body, token):
    response = call(anon, method, path, body, token=token)
    assert response.status_code == 401, response.text
    assert {"error", "code"} <= set(response.json())
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_need_no_credentials(anon, path):
    response = anon.get(path)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


# --- isolation -------------------------------------------------------------------------------


def test_another_users_session_is_indistinguishable_from_a_missing_one(alice, bob):
    sid = alice.post("/v1/sessions", json={"title": "private"}).json()["id"]
    mid = alice.post(f"/v1/sessions/{sid}/messages", json={"role": "user", "content": "secret"}).json()["id"]
    missing = f"missing-{uuid.uuid4()}"
    attempts = [
        ("GET", "/v1/sessions/{}", None),
        ("PATCH", "/v1/sessions/{}", {"title": "mine now"}),
        ("DELETE", "/v1/sessions/{}", None),
        ("POST", "/v1/sessions/{}/restore", None),
        ("POST", "/v1/sessions/{}/messages", {"role": "user", "content": "hi"}),
        ("GET", "/v1/sessions/{}/messages", None),
        ("GET", "/v1/sessions/{}/messages/" + mid, None),
    ]
    for method, template, body in attempts:
        theirs = bob.request(method, template.format(sid), json=body)
        nowhere = bob.request(method, template.format(missing), json=body)
        assert theirs.status_code == nowhere.status_code == 404, (method, template)
        assert theirs.json() == nowhere.json(), (method, template)
        assert set(theirs.json()) == {"error", "code"}
    assert sid not in [s["id"] for s in bob.get("/v1/sessions").json()["data"]]
    # Nothing bob tried changed alice's session.
    session = alice.get(f"/v1/sessions/{sid}").json()
    assert (session["title"], session["message_count"]) == ("private", 1)
