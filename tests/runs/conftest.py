"""A chatkeep server for runs: a slowly streaming echo model (so runs take a moment), short
leases, and a fake upstream for failures. One per backend, with the in-process broker."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import (
    ADMIN_KEY,
    LiveServer,
    _AppThread,
    _ServerThread,
    drop_database,
    fresh_database_url,
    make_settings,
    new_user,
)
from chatkeep.config import AgentConfig
from chatkeep.db.migrate import upgrade
from tests.gateway.fake_upstream import FakeUpstream

# A user message of 40 words makes the echo reply ~50 words: ~1.5 s at 30 ms per word.
LONG = " ".join(f"word{i}" for i in range(40))


def run_settings(url: str, upstream: str, **overrides):
    values = dict(
        upstream_base_url=upstream,
        upstream_timeout_seconds=5.0,
        echo_delay_ms=30,
        run_lease_seconds=2.0,
        run_heartbeat_seconds=0.2,
        run_reaper_interval_seconds=0.3,
        sse_keepalive_seconds=1.0,
        agents={"words": AgentConfig(graph="chatkeep.examples.word_agent:graph")},
    )
    return make_settings(url, **{**values, **overrides})


@pytest.fixture(scope="session")
def runs_upstream() -> Iterator[str]:
    with _AppThread(FakeUpstream().app) as thread:
        yield f"http://127.0.0.1:{thread.port}/v1"


@pytest.fixture(scope="session")
def runs_server(backend, runs_upstream, tmp_path_factory) -> Iterator[LiveServer]:
    url = fresh_database_url(backend, "runs", tmp_path_factory.mktemp(f"runs-{backend}"))
    upgrade(url)
    settings = run_settings(url, runs_upstream)
    with _ServerThread(settings) as thread:
        yield LiveServer(url=f"http://127.0.0.1:{thread.port}", settings=settings, backend=backend)
    drop_database(url)


def client_for(base_url: str) -> httpx.Client:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        created = new_user(admin, "runs")
    client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {created['api_key']}"}, timeout=30)
    client.api_key = created["api_key"]  # type: ignore[attr-defined]
    return client


@pytest.fixture
def runner(runs_server) -> Iterator[httpx.Client]:
    with client_for(runs_server.url) as client:
        yield client


def new_session(client: httpx.Client, **body) -> str:
    response = client.post("/v1/sessions", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def start_run(client: httpx.Client, sid: str, text: str = LONG, **body) -> dict:
    response = client.post(f"/v1/sessions/{sid}/runs", json={"input": [{"role": "user", "content": text}], **body})
    assert response.status_code == 202, response.text
    return response.json()
