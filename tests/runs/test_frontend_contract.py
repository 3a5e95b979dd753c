"""active-session and task-status: exactly the front-end contract, in every state."""

from __future__ import annotations

import time

from tests.runs.conftest import LONG, new_session, start_run
from tests.runs.sse import events
from tests.runs.test_runs import events_url, wait_for


def ms_now() -> int:
    return int(time.time() * 1000)


def test_none(runner):
    sid = new_session(runner)
    response = runner.get(f"/v1/sessions/{sid}/active-session")
    assert response.status_code == 404
    assert response.json() == {"error": "No active session found", "code": "no_active_session", "conversationId": sid}
    response = runner.get(f"/v1/sessions/{sid}/task-status")
    assert response.status_code == 404
    assert response.json() == {"error": "No background task found", "code": "no_background_task", "conversationId": sid}


def test_running_then_completed(runner):
    sid = new_session(runner)
    before = ms_now()
    run = start_run(runner, sid, LONG)
    events(runner, events_url(sid, run["id"]), limit=8)
    active = runner.get(f"/v1/sessions/{sid}/active-session").json()
    assert set(active) == {"sessionId", "status", "cursor", "conversationId", "startedAt", "lastActivity"}
    assert active["sessionId"] == run["id"] and active["conversationId"] == sid and active["status"] == "active"
    assert before <= active["startedAt"] <= active["lastActivity"] <= ms_now()
    task = runner.get(f"/v1/sessions/{sid}/task-status").json()
    assert set(task) == {"isActive", "sessionId", "estimatedCompletion", "conversationId"}
    assert task["isActive"] is True and task["sessionId"] == run["id"] and task["estimatedCompletion"] > active["startedAt"]

    stream = events(runner, events_url(sid, run["id"]))
    done = runner.get(f"/v1/sessions/{sid}/runs/{run['id']}").json()
    active = runner.get(f"/v1/sessions/{sid}/active-session").json()
    assert active["status"] == "completed" and active["cursor"] == stream[-1].id
    finished_ms = int(_parse(done["finished_at"]) * 1000)
    assert abs(active["lastActivity"] - finished_ms) <= 1
    task = runner.get(f"/v1/sessions/{sid}/task-status").json()
    assert task["isActive"] is False and abs(task["estimatedCompletion"] - finished_ms) <= 1


def test_errored_and_cancelled_runs_are_idle(runner):
    sid = new_session(runner)
    run = start_run(runner, sid, "x", model="fake-500")
    events(runner, events_url(sid, run["id"]))
    assert runner.get(f"/v1/sessions/{sid}/active-session").json()["status"] == "idle"
    assert runner.get(f"/v1/sessions/{sid}/task-status").json()["isActive"] is False

    run = start_run(runner, sid, LONG)
    events(runner, events_url(sid, run["id"]), limit=3)
    runner.post(f"/v1/sessions/{sid}/runs/{run['id']}/cancel")
    wait_for(lambda: runner.get(f"/v1/sessions/{sid}/runs/{run['id']}").json()["status"] == "cancelled")
    active = runner.get(f"/v1/sessions/{sid}/active-session").json()
    assert active["status"] == "idle" and active["sessionId"] == run["id"]


def _parse(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
