"""Background runs over real HTTP with the in-process broker, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import httpx

from tests.runs.conftest import LONG, new_session, start_run
from tests.runs.sse import events, read_events

TERMINAL = {"run.completed", "run.error", "run.cancelled"}


def events_url(sid: str, run_id: str) -> str:
    return f"/v1/sessions/{sid}/runs/{run_id}/events"


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_run_streams_its_reply_and_stores_the_turn(runner):
    sid = new_session(runner)
    run = start_run(runner, sid)
    assert run["status"] == "running" and run["session_id"] == sid and run["agent"] == "chat"
    assert runner.get(f"/v1/sessions/{sid}").json()["active_run_id"] == run["id"]
    stream = events(runner, events_url(sid, run["id"]))
    types = [e.type for e in stream]
    assert types[0] == "run.started" and types[-2:] == ["message.completed", "run.completed"]
    assert set(types[1:-2]) == {"message.delta"} and len(types) > 10
    text = "".join(e.data["content"] for e in stream if e.type == "message.delta")
    assert text == stream[-2].data["content"] and LONG in text
    done = runner.get(f"/v1/sessions/{sid}/runs/{run['id']}").json()
    assert done["status"] == "completed" and done["cursor"] == stream[-1].id and done["finished_at"]
    stored = runner.get(f"/v1/sessions/{sid}/messages").json()["data"]
    assert [m["role"] for m in stored] == ["user", "assistant"] and stored[1]["content"] == text
    assert [m["id"] for m in stored] == done["message_ids"] == stream[-1].data["message_ids"]
    assert runner.get(f"/v1/sessions/{sid}").json()["active_run_id"] is None


def test_stream_true_answers_with_the_event_stream(runner):
    sid = new_session(runner)
    body = {"input": [{"role": "user", "content": "hello there"}], "stream": True}
    with runner.stream("POST", f"/v1/sessions/{sid}/runs", json=body) as response:
        # 200, not 202: browsers' EventSource accepts only 200.
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        stream = list(read_events(response))
    assert stream[0].type == "run.started" and stream[-1].type == "run.completed"


def test_disconnect_and_resume_gives_every_event_once(runner):
    sid = new_session(runner)
    run = start_run(runner, sid)
    first = events(runner, events_url(sid, run["id"]), limit=6)
    second = events(runner, events_url(sid, run["id"]), headers={"Last-Event-ID": first[-1].id})
    third_from_cursor = events(runner, events_url(sid, run["id"]), params={"cursor": first[2].id})
    everything = events(runner, events_url(sid, run["id"]))
    assert first + second == everything
    assert third_from_cursor == everything[3:]
    assert len({e.id for e in everything}) == len(everything)


def test_one_active_run_per_session(runner):
    sid = new_session(runner)
    run = start_run(runner, sid)
    second = runner.post(f"/v1/sessions/{sid}/runs", json={"input": [{"role": "user", "content": "again"}]})
    assert second.status_code == 409
    assert second.json()["code"] == "run_in_progress" and second.json()["active_run_id"] == run["id"]
    events(runner, events_url(sid, run["id"]))  # let it finish
    assert start_run(runner, sid, "now it is free")["status"] == "running"


def test_busy_sessions_are_listed(runner):
    busy, idle = new_session(runner), new_session(runner)
    run = start_run(runner, busy)
    listed = {s["id"] for s in runner.get("/v1/sessions", params={"busy": "true"}).json()["data"]}
    assert busy in listed and idle not in listed
    events(runner, events_url(busy, run["id"]))
    assert busy not in {s["id"] for s in runner.get("/v1/sessions", params={"busy": "true"}).json()["data"]}


def test_cancel_stops_within_a_second_and_keeps_the_partial_reply(runner):
    sid = new_session(runner)
    run = start_run(runner, sid, LONG + " " + LONG)
    with runner.stream("GET", events_url(sid, run["id"])) as response:
        stream = read_events(response)
        seen = [next(stream), next(stream), next(stream)]
        asked = time.monotonic()
        assert runner.post(f"/v1/sessions/{sid}/runs/{run['id']}/cancel").status_code == 202
        rest = list(stream)
        stopped = time.monotonic() - asked
    assert rest[-1].type == "run.cancelled" and stopped < 1.0
    partial = "".join(e.data["content"] for e in seen + rest if e.type == "message.delta")
    done = runner.get(f"/v1/sessions/{sid}/runs/{run['id']}").json()
    assert done["status"] == "cancelled"
    stored = runner.get(f"/v1/sessions/{sid}/messages").json()["data"]
    assert stored[-1]["role"] == "assistant" and stored[-1]["content"] == partial
    assert stored[-1]["metadata"]["finish_reason"] == "cancelled"
    assert LONG + " " + LONG not in partial


def test_upstream_failure_ends_the_run_with_an_error_and_stores_nothing(runner):
    sid = new_session(runner)
    run = start_run(runner, sid, "hello", model="fake-500")
    stream = events(runner, events_url(sid, run["id"]))
    assert stream[-1].type == "run.error" and stream[-1].data["code"] == "upstream_error"
    assert runner.get(f"/v1/sessions/{sid}/runs/{run['id']}").json()["status"] == "error"
    assert runner.get(f"/v1/sessions/{sid}/messages").json()["data"] == []


def test_runs_are_listed_newest_first_and_private(runner, runs_server):
    sid = new_session(runner)
    first = start_run(runner, sid, "one")
    events(runner, events_url(sid, first["id"]))
    second = start_run(runner, sid, "two")
    events(runner, events_url(sid, second["id"]))
    assert [r["id"] for r in runner.get(f"/v1/sessions/{sid}/runs").json()["data"]] == [second["id"], first["id"]]
    from tests.runs.conftest import client_for

    with client_for(runs_server.url) as other:
        for path in ("runs", f"runs/{first['id']}", f"runs/{first['id']}/events", "active-session", "task-status"):
            assert other.get(f"/v1/sessions/{sid}/{path}").status_code == 404
        assert other.post(f"/v1/sessions/{sid}/runs/{first['id']}/cancel").status_code == 404
        assert other.post(f"/v1/sessions/{sid}/runs", json={"input": [{"role": "user", "content": "x"}]}).status_code == 404
    assert httpx.get(f"{runs_server.url}/v1/sessions/{sid}/active-session").status_code == 401


def test_bad_cursor_and_bad_input(runner):
    sid = new_session(runner)
    run = start_run(runner, sid, "hi")
    assert runner.get(events_url(sid, run["id"]), params={"cursor": "nope"}).status_code == 422
    assert runner.post(f"/v1/sessions/{sid}/runs", json={"input": []}).status_code == 422
    assert runner.post("/v1/sessions/no-such-session/runs", json={"input": [{"role": "user", "content": "x"}]}).status_code == 404
    assert runner.post(f"/v1/sessions/{sid}/runs", json={"input": [{"role": "user", "content": "x"}], "agent": "nobody"}).status_code == 422
    assert runner.get(f"/v1/sessions/{sid}/runs/not-a-run").status_code == 404


def test_events_past_their_retention_are_gone_but_messages_stay(backend, runs_upstream, tmp_path):
    from tests.conftest import _ServerThread, drop_database, fresh_database_url
    from tests.runs.conftest import client_for, run_settings

    from chatkeep.db.migrate import upgrade

    url = fresh_database_url(backend, "retention", tmp_path)
    upgrade(url)
    with _ServerThread(run_settings(url, runs_upstream, run_event_retention_seconds=0.5)) as thread:
        with client_for(f"http://127.0.0.1:{thread.port}") as client:
            sid = new_session(client)
            run = start_run(client, sid, "short")
            assert events(client, events_url(sid, run["id"]))[-1].type == "run.completed"
            time.sleep(0.8)
            gone = client.get(events_url(sid, run["id"]))
            assert gone.status_code == 410 and gone.json()["code"] == "stream_expired"
            assert client.get(f"/v1/sessions/{sid}/active-session").status_code == 404
            assert len(client.get(f"/v1/sessions/{sid}/messages").json()["data"]) == 2
    drop_database(url)


def test_enqueue_runs_them_one_after_another(backend, runs_upstream, tmp_path):
    from tests.conftest import _ServerThread, drop_database, fresh_database_url
    from tests.runs.conftest import client_for, run_settings

    from chatkeep.db.migrate import upgrade

    url = fresh_database_url(backend, "enqueue", tmp_path)
    upgrade(url)
    with _ServerThread(run_settings(url, runs_upstream, run_multitask="enqueue")) as thread:
        with client_for(f"http://127.0.0.1:{thread.port}") as client:
            sid = new_session(client)
            first = start_run(client, sid, "first " + LONG)
            second = start_run(client, sid, "second")
            third = start_run(client, sid, "third")
            assert (second["status"], third["status"]) == ("pending", "pending")
            client.post(f"/v1/sessions/{sid}/runs/{third['id']}/cancel")
            for run in (first, second, third):
                events(client, events_url(sid, run["id"]))
            runs = {r["id"]: r for r in client.get(f"/v1/sessions/{sid}/runs").json()["data"]}
            assert [runs[r["id"]]["status"] for r in (first, second, third)] == ["completed", "completed", "cancelled"]
            assert runs[second["id"]]["started_at"] >= runs[first["id"]]["finished_at"]
            contents = [m["content"] for m in client.get(f"/v1/sessions/{sid}/messages").json()["data"] if m["role"] == "user"]
            assert contents == ["first " + LONG, "second"]
    drop_database(url)
