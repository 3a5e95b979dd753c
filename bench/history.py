"""History benchmark: chatkeep's service layer vs LangChain's SQLChatMessageHistory.

In one run, on SQLite (WAL, a file under a temp dir) and on PostgreSQL: append throughput (one
message per transaction, like a chat app) and p50/p95 of "show the last 20 messages" for sessions
of 100, 10,000 and 100,000 messages, plus chatkeep's same read over real HTTP. The peer has no
way to read only the last page: its read is `.messages`, the whole session. See bench/README.md.

    .venv/bin/python bench/history.py --postgres-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import uvicorn
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url

from chatkeep.app import create_app
from chatkeep.auth import service as auth_service
from chatkeep.auth.principal import Principal
from chatkeep.auth.schemas import UserCreate
from chatkeep.config import Settings
from chatkeep.db.engine import Database, session_scope, sync_url
from chatkeep.db.migrate import upgrade
from chatkeep.sessions import service
from chatkeep.sessions.schemas import MessageBatch, MessageIn, MessageQuery, SessionCreate

warnings.filterwarnings("ignore", category=DeprecationWarning)  # langchain-community's sunset notice
from langchain_community.chat_message_histories import SQLChatMessageHistory  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage  # noqa: E402

PAGE = 20  # what a chat UI loads first: GET .../messages?order=desc&limit=20
WARMUP = 20
SEED_BATCH = 500
PEER_READ_BUDGET_S = 15.0  # per size: stop sampling the peer's full loads after this (min 5 samples)
PG_DATABASES = {"chatkeep": "ck_bench_chatkeep", "peer": "ck_bench_peer"}
TEXT = "could you compare keeping chat history in SQLite and in PostgreSQL for a small team of five?"


def text(i: int) -> str:
    return f"message {i}: {TEXT}"


@dataclass
class Result:
    backend: str
    append: dict[str, float] = field(default_factory=dict)  # side -> messages/s
    reads: dict[str, dict[int, list[float]]] = field(default_factory=dict)  # side -> size -> seconds
    skipped: dict[int, str] = field(default_factory=dict)  # size -> why the peer did not run it


# --- timing -----------------------------------------------------------------------------------


def timed(fn: Callable[[], object], n: int, budget_s: float | None = None) -> list[float]:
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < n and (budget_s is None or len(samples) < 5 or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


async def atimed(fn: Callable[[], Awaitable[object]], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - t0)
    return samples


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18] if len(samples) > 1 else samples[0]


# --- databases --------------------------------------------------------------------------------


def make_databases(backend: str, tmp: Path, postgres_url: str) -> dict[str, str]:
    """A fresh chatkeep database and a fresh peer database of the same kind."""
    if backend == "sqlite":
        return {side: f"sqlite:///{tmp / f'{side}.db'}" for side in PG_DATABASES}
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for name in PG_DATABASES.values():
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    server = make_url(postgres_url)
    return {side: server.set(database=name).render_as_string(hide_password=False) for side, name in PG_DATABASES.items()}


def drop_databases(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for name in PG_DATABASES.values():
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_versions(postgres_url: str | None) -> str:
    line = f"{len(os.sched_getaffinity(0))} cores (nproc), Python {'.'.join(map(str, sys.version_info[:3]))}, SQLite {sqlite3.sqlite_version}"
    if postgres_url:
        with psycopg.connect(postgres_url) as conn:
            line += f", PostgreSQL {conn.execute('SHOW server_version').fetchone()[0]}"
    return line


# --- chatkeep, in process ---------------------------------------------------------------------


async def run_chatkeep(url: str, args: argparse.Namespace, result: Result) -> tuple[str, dict[int, str]]:
    """Appends and last-page reads through the service layer. Returns (api key, size -> session id)."""
    settings = Settings(database_url=url, log_level="WARNING", bootstrap_user=False)
    database = Database(settings)
    try:
        async with session_scope(database) as db:
            created = await auth_service.create_user(db, UserCreate(name="bench"))
        principal = Principal(kind="user", id=created.user.id)

        async def new_session(title: str) -> str:
            async with session_scope(database) as db:
                return (await service.create(db, principal, SessionCreate(title=title), settings)).id

        async def append(session_id: str, body: MessageIn | MessageBatch) -> None:
            async with session_scope(database) as db:
                await service.append(db, principal, session_id, body, settings)

        def message(i: int) -> MessageIn:
            return MessageIn(role="user" if i % 2 == 0 else "assistant", content=text(i))

        session_id = await new_session("appends")
        for i in range(WARMUP):
            await append(session_id, message(i))
        counter = itertools.count(WARMUP)
        samples = await atimed(lambda: append(session_id, message(next(counter))), args.appends)
        result.append["chatkeep"] = args.appends / sum(samples)

        async def read_last_page(session_id: str) -> None:
            async with session_scope(database, write=False) as db:
                await service.list_messages(db, principal, session_id, MessageQuery(limit=PAGE, order="desc"))

        sessions, reads = {}, {}
        for size in args.sizes:
            sessions[size] = session_id = await new_session(f"{size} messages")
            for start in range(0, size, SEED_BATCH):  # seeding: batched appends, not measured
                batch = [message(i) for i in range(start, min(size, start + SEED_BATCH))]
                await append(session_id, MessageBatch(messages=batch))
            await atimed(lambda: read_last_page(session_id), 3)
            reads[size] = await atimed(lambda: read_last_page(session_id), args.reads)
        result.reads["chatkeep"] = reads
        return created.api_key, sessions
    finally:
        await database.dispose()


# --- chatkeep, over HTTP ----------------------------------------------------------------------


class ServerThread:
    """uvicorn serving chatkeep in a background thread on a pre-bound loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(settings), log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("benchmark server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def run_http(url: str, api_key: str, sessions: dict[int, str], args: argparse.Namespace, result: Result) -> None:
    settings = Settings(database_url=url, log_level="WARNING", bootstrap_user=False)
    headers = {"Authorization": f"Bearer {api_key}"}
    reads = result.reads.setdefault("http", {})
    with ServerThread(settings) as server, httpx.Client(base_url=server.url, headers=headers) as client:
        for size, session_id in sessions.items():

            def get() -> None:
                response = client.get(f"/v1/sessions/{session_id}/messages", params={"order": "desc", "limit": PAGE})
                response.raise_for_status()

            timed(get, 3)
            reads[size] = timed(get, args.reads)


# --- the peer: LangChain SQLChatMessageHistory (sync, as its docs show) -----------------------


def peer_engine(url: str):
    engine = create_engine(sync_url(url))
    if engine.dialect.name == "sqlite":  # the same pragmas chatkeep uses

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def peer_message(i: int) -> BaseMessage:
    return HumanMessage(text(i)) if i % 2 == 0 else AIMessage(text(i))


def run_peer(url: str, args: argparse.Namespace, result: Result) -> None:
    engine = peer_engine(url)
    try:
        history = SQLChatMessageHistory(session_id="appends", connection=engine)
        for i in range(WARMUP):
            history.add_message(peer_message(i))
        counter = itertools.count(WARMUP)
        samples = timed(lambda: history.add_message(peer_message(next(counter))), args.appends)
        result.append["peer"] = args.appends / sum(samples)

        reads: dict[int, list[float]] = {}
        for size in args.sizes:
            if size > args.peer_max_size:
                continue
            history = SQLChatMessageHistory(session_id=f"size-{size}", connection=engine)
            for start in range(0, size, SEED_BATCH):  # seeding, not measured
                history.add_messages([peer_message(i) for i in range(start, min(size, start + SEED_BATCH))])
            loaded = history.messages  # also the warm-up
            assert len(loaded) == size, (len(loaded), size)
            reads[size] = timed(lambda: history.messages, args.reads, PEER_READ_BUDGET_S)
        result.reads["peer"] = reads
        for size in args.sizes:
            if size > args.peer_max_size:
                result.skipped[size] = skipped_note(reads, size, args.reads)
    finally:
        engine.dispose()


def skipped_note(reads: dict[int, list[float]], size: int, n: int) -> str:
    """Extrapolate linearly from the largest size the peer did run."""
    if not reads:
        return "n/a (skipped)"
    largest = max(reads)
    seconds = p50(reads[largest]) * size / largest * n
    return f"n/a (skipped: would take ~{seconds:,.0f} s)"


# --- report -----------------------------------------------------------------------------------


def ms(samples: list[float]) -> str:
    return f"{p50(samples) * 1000:,.2f} / {p95(samples) * 1000:,.2f}"


def print_report(console: Console, result: Result, machine: str) -> None:
    table = Table(title=f"{result.backend}: chatkeep vs LangChain SQLChatMessageHistory  ({machine})")
    table.add_column("measure")
    table.add_column("chatkeep", justify="right")
    table.add_column("peer", justify="right")
    table.add_column("speed-up × (chatkeep vs peer)", justify="right")
    ck, peer = result.append["chatkeep"], result.append["peer"]
    table.add_row("append, 1 message per transaction (messages/s)", f"{ck:,.0f}", f"{peer:,.0f}", f"{ck / peer:.1f}×")
    for size, samples in result.reads["chatkeep"].items():
        peer_samples = result.reads["peer"].get(size)
        peer_cell = ms(peer_samples) if peer_samples else result.skipped[size]
        if peer_samples and len(peer_samples) < len(samples):
            peer_cell += f" (n={len(peer_samples)})"
        speedup = f"{p50(peer_samples) / p50(samples):,.0f}×" if peer_samples else "n/a"
        table.add_row(f"read last {PAGE} of {size:,}, p50 / p95 ms (peer: whole session)", ms(samples), peer_cell, speedup)
    for size, samples in result.reads.get("http", {}).items():
        table.add_row(f"same read over HTTP, {size:,} messages, p50 / p95 ms", ms(samples), "—", "—")
    console.print(table)
    print_targets(console, result)


def print_targets(console: Console, result: Result) -> None:
    def verdict(ok: bool) -> str:
        return "[green]met[/]" if ok else "[red]NOT met[/]"

    ck = result.reads["chatkeep"]
    small, large = min(ck), max(ck)
    flat = p50(ck[large]) / p50(ck[small])
    console.print(f"  chatkeep read p50 at {large:,} / at {small:,} messages: {flat:.2f} (target ≤ 1.5) {verdict(flat <= 1.5)}")
    if 10_000 in ck and 10_000 in result.reads["peer"]:
        speedup = p50(result.reads["peer"][10_000]) / p50(ck[10_000])
        console.print(f"  read speed-up at 10,000 messages (p50): {speedup:,.0f}× (target ≥ 50×) {verdict(speedup >= 50)}")
    ratio = result.append["chatkeep"] / result.append["peer"]
    console.print(f"  append rate chatkeep / peer: {ratio:.2f}× (target ≥ 2×) {verdict(ratio >= 2)}\n")


# --- main -------------------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace, machine: str, console: Console) -> None:
    result = Result(backend)
    with tempfile.TemporaryDirectory(prefix="ck-bench-") as tmp:
        try:
            urls = make_databases(backend, Path(tmp), args.postgres_url)
            upgrade(urls["chatkeep"])
            console.print(f"[dim]{backend}: chatkeep appends, seeding and reads…[/]")
            api_key, sessions = asyncio.run(run_chatkeep(urls["chatkeep"], args, result))
            console.print(f"[dim]{backend}: chatkeep over HTTP…[/]")
            run_http(urls["chatkeep"], api_key, sessions, args, result)
            console.print(f"[dim]{backend}: SQLChatMessageHistory appends, seeding and reads…[/]")
            run_peer(urls["peer"], args, result)
        finally:
            if backend == "postgresql":
                drop_databases(args.postgres_url)
    print_report(console, result, machine)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    parser.add_argument("--sizes", type=ints, default=[100, 10_000, 100_000], help="session sizes (messages)")
    parser.add_argument("--appends", type=int, default=1000, help="timed appends per side")
    parser.add_argument("--reads", type=int, default=30, help="timed reads per size and side")
    parser.add_argument("--peer-max-size", type=int, default=10_000, help="largest session the peer loads")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--postgres-url", default=os.environ.get("CHATKEEP_TEST_POSTGRES_URL"),
                        help="a server database to connect to (default $CHATKEEP_TEST_POSTGRES_URL)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    console = Console()
    backends = [b for b in args.backends.split(",") if b]
    if "postgresql" in backends and not args.postgres_url:
        console.print("[yellow]postgresql skipped: no --postgres-url and no CHATKEEP_TEST_POSTGRES_URL[/]")
        backends.remove("postgresql")
    machine = server_versions(args.postgres_url if "postgresql" in backends else None)
    console.print(f"history benchmark — {machine}")
    for backend in backends:
        run_backend(backend, args, machine, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
