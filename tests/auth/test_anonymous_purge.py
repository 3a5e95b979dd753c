"""Anonymous sessions never claimed are purged after their time to live; claimed ones stay."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import create_engine, text

from chatkeep.db.engine import sync_url
from chatkeep.db.migrate import upgrade
from tests.auth.test_anonymous import chat
from tests.conftest import ADMIN_KEY, _ServerThread, drop_database, fresh_database_url, make_settings, new_user


def session_exists(url: str, session_id: str) -> bool:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM sessions WHERE id = :id"), {"id": session_id}).scalar() == 1
    finally:
        engine.dispose()


def test_unclaimed_visitor_sessions_are_purged_and_claimed_ones_kept(backend, tmp_path):
    url = fresh_database_url(backend, "purge", tmp_path)
    upgrade(url)
    # A time to live of ~0.5 s and housekeeping every 0.2 s.
    settings = make_settings(url, allow_anonymous=True, anonymous_session_ttl_days=0.5 / 86400, maintenance_interval_seconds=0.2)
    with _ServerThread(settings) as thread:
        base = f"http://127.0.0.1:{thread.port}"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as admin:
            user = new_user(admin, "purge")
        with httpx.Client(base_url=base) as lost, httpx.Client(base_url=base) as kept:
            lost_sid, _ = chat(lost, "helper", "nobody will claim me")
            kept_sid, _ = chat(kept, "helper", "I will sign in")
            kept.headers["Authorization"] = f"Bearer {user['api_key']}"
            assert kept.post("/v1/me/claim").status_code in (200, 201)
            deadline = time.monotonic() + 10
            while session_exists(url, lost_sid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not session_exists(url, lost_sid)
            assert kept.get(f"/v1/sessions/{kept_sid}").status_code == 200
            assert kept.get(f"/v1/sessions/{kept_sid}/messages").json()["data"]
    drop_database(url)
