"""Shared fixtures: a real database per backend (SQLite file, PostgreSQL server) and a real
chatkeep server on loopback per backend. Every store test runs on both backends.

PostgreSQL comes from CHATKEEP_TEST_POSTGRES_URL (`make test` starts one). Set
CHATKEEP_TEST_BACKENDS=sqlite to run the SQLite half only while iterating.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from chatkeep.app import create_app
from chatkeep.config import Settings
from chatkeep.db.migrate import upgrade

ADMIN_KEY = "test-admin-key-0123456789"
# Servers started as subprocesses (CLI, multi-process tests) sign cookies with this key instead
# of generating one under the current directory.
os.environ.setdefault("CHATKEEP_SECRET_KEY", "test-secret-key-0123456789")
BACKENDS = [b for b in os.environ.get("CHATKEEP_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def fresh_database_url(backend: str, name: str, tmp_dir: Path) -> str:
    """A new, empty database of the given backend, unique to this worker and name."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir / f'{name}.db'}"
    server = os.environ.get("CHATKEEP_TEST_POSTGRES_URL")
    if not server:
        raise RuntimeError(
            "CHATKEEP_TEST_POSTGRES_URL is not set: run `make test`, or CHATKEEP_TEST_BACKENDS=sqlite"
        )
    # The pid keeps concurrent test runs on one server out of each other's way.
    db_name = f"ck_{name}_{_worker()}_{os.getpid()}".lower()
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    return make_url(server).set(database=db_name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Remove a PostgreSQL database made by fresh_database_url (SQLite files live in tmp dirs)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    with psycopg.connect(os.environ["CHATKEEP_TEST_POSTGRES_URL"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


@dataclass
class LiveServer:
    url: str
    settings: Settings
    backend: str


class _AppThread:
    """uvicorn serving an ASGI app in a background thread, on a pre-bound loopback port."""

    def __init__(self, app) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> _AppThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


class _ServerThread(_AppThread):
    """A chatkeep server with the given settings."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(create_app(settings))


def make_settings(database_url: str, **overrides) -> Settings:
    values = {"admin_key": ADMIN_KEY, "log_level": "WARNING", "bootstrap_user": False}
    return Settings(database_url=database_url, **{**values, **overrides})


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory) -> Iterator[str]:
    url = fresh_database_url(backend, "suite", tmp_path_factory.mktemp(backend))
    upgrade(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def live_server(backend: str, database_url: str) -> Iterator[LiveServer]:
    settings = make_settings(database_url)
    with _ServerThread(settings) as thread:
        yield LiveServer(url=f"http://127.0.0.1:{thread.port}", settings=settings, backend=backend)


@pytest.fixture
def anon(live_server: LiveServer) -> Iterator[httpx.Client]:
    """A client with no credentials."""
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


@pytest.fixture
def admin(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=live_server.url, timeout=30, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as client:
        yield client


_counter = iter(range(1_000_000))


def new_user(admin_client: httpx.Client, prefix: str = "user") -> dict:
    """A fresh user (so tests never see each other's data): {"user": {...}, "api_key": ...}."""
    response = admin_client.post("/v1/admin/users", json={"name": f"{prefix}-{_worker()}-{time.time_ns()}-{next(_counter)}"})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def user_factory(live_server: LiveServer, admin: httpx.Client) -> Iterator:
    clients: list[httpx.Client] = []

    def make(prefix: str = "user") -> httpx.Client:
        created = new_user(admin, prefix)
        client = httpx.Client(
            base_url=live_server.url, timeout=30, headers={"Authorization": f"Bearer {created['api_key']}"}
        )
        client.user = created["user"]  # type: ignore[attr-defined]
        client.api_key = created["api_key"]  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def alice(user_factory) -> httpx.Client:
    return user_factory("alice")


@pytest.fixture
def bob(user_factory) -> httpx.Client:
    return user_factory("bob")
