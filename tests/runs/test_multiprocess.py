"""Two (and three) real `chatkeep serve` processes on one PostgreSQL and one Redis: resume a
stream on another process, cancel from another process, and a killed process's run ends as
"interrupted"."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, drop_database, fresh_database_url, new_user
from chatkeep.db.migrate import upgrade
from tests.runs.conftest import LONG
from tests.runs.sse import events, read_events
from tests.runs.test_runs import events_url, wait_for

CHATKEEP = Path(sys.executable).parent / "chatkeep"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, database_url: str, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "CHATKEEP_DATABASE_URL": database_url,
            "CHATKEEP_REDIS_URL": os.environ["CHATKEEP_TEST_REDIS_URL"],
            "CHATKEEP_ADMIN_KEY": ADMIN_KEY,
            "CHATKEEP_BOOTSTRAP_USER": "false",
            "CHATKEEP_ECHO_DELAY_MS": "30",
            "CHATKEEP_RUN_LEASE_SECONDS": "2",
            "CHATKEEP_RUN_HEARTBEAT_SECONDS": "0.2",
            "CHATKEEP_RUN_REAPER_INTERVAL_SECONDS": "0.3",
            "CHATKEEP_LOG_LEVEL": "WARNING",
        }
        self.log = open(log_dir / f"server-{self.port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(CHATKEEP), "serve", "--port", str(self.port)], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: see {self.log.name}")
            time.sleep(0.1)

    def client(self, api_key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Iterator[str]:
    url = fresh_database_url("postgresql", "cluster", tmp_path_factory.mktemp("cluster"))
    upgrade(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def cluster(database, tmp_path_factory) -> Iterator[tuple[Server, Server]]:
    logs = tmp_path_factory.mktemp("cluster-logs")
    a, b = Server(database, logs), Server(database, logs)
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def api_key(cluster) -> str:
    with httpx.Client(base_url=cluster[0].url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        return new_user(admin, "cluster")["api_key"]


def new_session(client: httpx.Client) -> str:
    return client.post("/v1/sessions", json={}).json()["id"]


def test_resume_on_another_process_gives_every_event_once(cluster, api_key):
    a, b = cluster
    with a.client(api_key) as on_a, b.client(api_key) as on_b:
        sid = new_session(on_a)
        run = on_a.post(f"/v1/sessions/{sid}/runs", json={"input": [{"role": "user", "content": LONG}]}).json()
        first_half = events(on_a, events_url(sid, run["id"]), limit=10)
        second_half = events(on_b, events_url(sid, run["id"]), headers={"Last-Event-ID": first_half[-1].id})
        assert second_half[-1].type == "run.completed"
        assert first_half + second_half == events(on_b, events_url(sid, run["id"]))
        assert on_b.get(f"/v1/sessions/{sid}/messages").json()["data"][-1]["id"] == second_half[-1].data["message_ids"][-1]


def test_cancel_through_the_other_process(cluster, api_key):
    a, b = cluster
    with a.client(api_key) as on_a, b.client(api_key) as on_b:
        sid = new_session(on_a)
        run = on_a.post(f"/v1/sessions/{sid}/runs", json={"input": [{"role": "user", "content": LONG + LONG}]}).json()
        with on_a.stream("GET", events_url(sid, run["id"])) as response:
            stream = read_events(response)
            next(stream), next(stream), next(stream)
            asked = time.monotonic()
            assert on_b.post(f"/v1/sessions/{sid}/runs/{run['id']}/cancel").status_code == 202
            rest = list(stream)
            assert rest[-1].type == "run.cancelled" and time.monotonic() - asked < 1.0
        assert on_b.get(f"/v1/sessions/{sid}/runs/{run['id']}").json()["status"] == "cancelled"


def test_a_killed_process_leaves_an_interrupted_run(cluster, database, api_key, tmp_path):
    a, _ = cluster
    doomed = Server(database, tmp_path)
    try:
        with doomed.client(api_key) as on_doomed, a.client(api_key) as on_a:
            sid = new_session(on_doomed)
            run = on_doomed.post(f"/v1/sessions/{sid}/runs", json={"input": [{"role": "user", "content": LONG}]}).json()
            events(on_doomed, events_url(sid, run["id"]), limit=3)
            doomed.stop(signal.SIGKILL)
            assert on_a.get(f"/v1/sessions/{sid}/runs/{run['id']}").json()["status"] == "running"
            ended = wait_for(lambda: (r := on_a.get(f"/v1/sessions/{sid}/runs/{run['id']}").json())["status"] == "error" and r, 15)
            assert "interrupted" in ended["error"]
            assert events(on_a, events_url(sid, run["id"]))[-1].data["code"] == "interrupted"
            assert on_a.get(f"/v1/sessions/{sid}/active-session").json()["status"] == "idle"
            assert on_a.get(f"/v1/sessions/{sid}").json()["active_run_id"] is None
    finally:
        doomed.stop(signal.SIGKILL)
