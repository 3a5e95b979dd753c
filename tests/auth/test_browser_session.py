"""POST/DELETE /v1/auth/session: a signed session cookie for browser pages."""

from __future__ import annotations

import httpx


def test_sign_in_sets_a_cookie_that_authenticates(alice, live_server):
    with httpx.Client(base_url=live_server.url, timeout=30) as browser:
        response = browser.post("/v1/auth/session", headers={"Authorization": f"Bearer {alice.api_key}"})
        assert response.status_code == 200, response.text
        assert response.json() == {"user_id": alice.user["id"], "claimed_sessions": 0}
        assert alice.api_key not in response.headers["set-cookie"]
        assert browser.get("/v1/me").json()["id"] == alice.user["id"]
        sid = browser.post("/v1/sessions", json={"title": "from the page"}).json()["id"]
        assert alice.get(f"/v1/sessions/{sid}").json()["title"] == "from the page"
        cookie = browser.cookies.get("chatkeep_session")
        assert browser.delete("/v1/auth/session").status_code == 204
        assert browser.get("/v1/me").status_code == 401
    # A tampered cookie is ignored.
    with httpx.Client(base_url=live_server.url, timeout=30) as forger:
        payload, issued, mac = cookie.split(".")
        forger.cookies.set("chatkeep_session", f"{payload}.{issued}.{mac[::-1]}", domain="127.0.0.1", path="/")
        assert forger.get("/v1/me").status_code == 401


def test_sign_in_needs_a_user_api_key(admin, anon):
    assert anon.post("/v1/auth/session").status_code == 401
    assert admin.post("/v1/auth/session").status_code == 403
    assert anon.post("/v1/auth/session", headers={"Authorization": "Bearer ck_wrong"}).status_code == 401
