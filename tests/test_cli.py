"""The real `chatkeep` command in a subprocess, against a fresh database of each backend."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from chatkeep.db.engine import sync_url
from tests.conftest import _ServerThread, fresh_database_url, make_settings

CHATKEEP = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "chatkeep"
KEY = re.compile(r"ck_[A-Za-z0-9_-]{22,}")


def cli_env(database_url: str) -> dict[str, str]:
    # COLUMNS=80: what rich assumes for a pipe, pinned so the run does not depend on the terminal.
    return {**os.environ, "CHATKEEP_DATABASE_URL": database_url, "COLUMNS": "80"}


def chatkeep(database_url: str, *args: str, ok: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(CHATKEEP), *args], env=cli_env(database_url), cwd=cwd, capture_output=True, text=True, timeout=120
    )
    if ok:
        assert result.returncode == 0, f"chatkeep {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def status_with(server: _ServerThread, api_key: str) -> int:
    headers = {"Authorization": f"Bearer {api_key}"}
    return httpx.get(f"http://127.0.0.1:{server.port}/v1/me", headers=headers, timeout=30).status_code


@pytest.fixture
def cli_db(backend: str, tmp_path: Path) -> str:
    return fresh_database_url(backend, "cli", tmp_path)


def test_migrate_is_idempotent(cli_db, tmp_path):
    chatkeep(cli_db, "migrate", cwd=tmp_path)
    chatkeep(cli_db, "migrate", cwd=tmp_path)
    engine = create_engine(sync_url(cli_db))
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
            assert conn.scalar(text("SELECT count(*) FROM users")) == 0
    finally:
        engine.dispose()


def test_users_and_keys_lifecycle(cli_db):
    chatkeep(cli_db, "migrate")
    created = json.loads(chatkeep(cli_db, "users", "create", "alice", "--email", "alice@example.com", "--json").stdout)
    assert set(created) == {"user_id", "api_key"}
    user_id, first_key = created["user_id"], created["api_key"]
    assert KEY.fullmatch(first_key)

    listed = chatkeep(cli_db, "users", "list").stdout
    assert "alice" in listed and "alice@example.com" in listed

    by_name = chatkeep(cli_db, "keys", "create", "alice").stdout
    by_id = chatkeep(cli_db, "keys", "create", user_id).stdout
    (name_key,), (id_key,) = KEY.findall(by_name), KEY.findall(by_id)
    name_key_id = re.search(r"key id (\S+)", by_name).group(1)
    keys = [first_key, name_key, id_key]
    assert len(set(keys)) == 3

    keys_list = chatkeep(cli_db, "keys", "list", "alice").stdout
    assert all(key[:10] in keys_list for key in keys), keys_list
    assert not any(key in keys_list for key in keys)
    assert KEY.search(keys_list) is None

    with _ServerThread(make_settings(cli_db)) as server:
        assert [status_with(server, key) for key in keys] == [200, 200, 200]
        revoked = chatkeep(cli_db, "keys", "revoke", name_key_id).stdout
        assert name_key[:10] in revoked
        assert [status_with(server, key) for key in keys] == [200, 401, 200]


def test_keys_list_shows_the_ids_that_keys_revoke_takes(cli_db):
    """The first key of `users create` has no printed id: `keys list` is where you find it."""
    created = json.loads(chatkeep(cli_db, "users", "create", "dave", "--json").stdout)
    keys_list = chatkeep(cli_db, "keys", "list", "dave").stdout
    ids = re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", keys_list)
    assert len(ids) == 1, f"no whole key id in `keys list` output:\n{keys_list}"
    chatkeep(cli_db, "keys", "revoke", ids[0])
    with _ServerThread(make_settings(cli_db)) as server:
        assert status_with(server, created["api_key"]) == 401


@pytest.mark.parametrize(
    "args,message",
    [
        (("keys", "create", "nobody"), "no user with id or name 'nobody'"),
        (("keys", "list", "nobody"), "no user with id or name 'nobody'"),
        (("keys", "revoke", "no-such-key"), "API key not found"),
        (("users", "create", "erin"), "a user named 'erin' already exists"),
    ],
)
def test_bad_references_exit_non_zero_with_a_clear_message(cli_db, args, message):
    chatkeep(cli_db, "users", "create", "erin")
    result = chatkeep(cli_db, *args, ok=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_from_another_directory_prints_a_working_first_key(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = cli_env(f"sqlite:///{tmp_path / 'data' / 'serve.db'}")
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [str(CHATKEEP), "serve", "--port", str(port)], env=env, cwd=tmp_path, stdout=stdout, stderr=stderr
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"serve exited:\n{out.read_text()}\n{err.read_text()}"
            assert time.monotonic() < deadline, f"serve never answered /healthz:\n{err.read_text()}"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        keys = KEY.findall(out.read_text())
        assert keys, out.read_text()
        response = httpx.get(f"{base}/v1/sessions", headers={"Authorization": f"Bearer {keys[0]}"}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["data"] == []
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells how it ended.
    assert returncode in (0, -signal.SIGTERM), err.read_text()
    assert "Application shutdown complete" in err.read_text()
