"""A chatkeep server wired to a fake upstream model (a real HTTP server), per backend."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from chatkeep.config import ModelConfig
from chatkeep.db.migrate import upgrade
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
from tests.gateway.fake_upstream import FakeUpstream

# A model with a tiny context window and known prices, to test trimming and costs.
SMALL_MODEL = "fake-small"
SMALL_CONTEXT = 400
PRICES = {"input_price_per_1m": 2.0, "output_price_per_1m": 8.0}


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream()
    with _AppThread(fake.app) as thread:
        yield fake, f"http://127.0.0.1:{thread.port}/v1"


@pytest.fixture(scope="session")
def gateway_server(backend, fake_upstream, tmp_path_factory) -> Iterator[LiveServer]:
    fake, upstream_url = fake_upstream
    url = fresh_database_url(backend, "gateway", tmp_path_factory.mktemp(f"gw-{backend}"))
    upgrade(url)
    settings = make_settings(
        url,
        upstream_base_url=upstream_url,
        upstream_api_key="sk-upstream-secret",
        upstream_timeout_seconds=2.0,
        default_reply_reserve_tokens=50,
        context_margin_tokens=10,
        models={
            SMALL_MODEL: ModelConfig(context_window=SMALL_CONTEXT, **PRICES),
            "fake-priced": ModelConfig(upstream_model="fake-upstream-name", **PRICES),
        },
    )
    with _ServerThread(settings) as thread:
        yield LiveServer(url=f"http://127.0.0.1:{thread.port}", settings=settings, backend=backend)
    drop_database(url)


@pytest.fixture
def fake(fake_upstream) -> FakeUpstream:
    upstream = fake_upstream[0]
    upstream.requests.clear()
    upstream.headers.clear()
    upstream.sent_at.clear()
    return upstream


def _user_client(server: LiveServer, prefix: str) -> httpx.Client:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30) as admin:
        created = new_user(admin, prefix)
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {created['api_key']}"}, timeout=30)
    client.api_key = created["api_key"]  # type: ignore[attr-defined]
    return client


@pytest.fixture
def gw_user(gateway_server) -> Iterator[httpx.Client]:
    """A fresh user on the gateway server: an httpx client with its key (and `.api_key`)."""
    with _user_client(gateway_server, "gw") as client:
        yield client


@pytest.fixture
def gw_other(gateway_server) -> Iterator[httpx.Client]:
    """A second fresh user on the gateway server (for access checks)."""
    with _user_client(gateway_server, "gw-other") as client:
        yield client


@pytest.fixture
def oai(gateway_server, gw_user) -> openai.OpenAI:
    """The official openai client pointed at chatkeep (no retries: we test single attempts)."""
    return openai.OpenAI(base_url=f"{gateway_server.url}/v1", api_key=gw_user.api_key, max_retries=0, timeout=30)
