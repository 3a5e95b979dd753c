"""History benchmark: chatkeep's service layer vs LangChain's SQLChatMessageHistory.

In one run, on SQLite (files in a temp dir) and on PostgreSQL: append throughput (one message per
transaction, like a chat app) and p50/p95 of "show the last 20 messages" for sessions of 100, 10,000
and 100,000 messages, plus chatkeep's same read over real HTTP. The peer cannot read only the last
page: its read is `.messages`, the whole session. On SQLite the peer runs twice, each on its own
file: at its defaults (`connection="sqlite:///file.db"`, as its docs show: rollback journal,
synchronous=FULL), which is what a user gets, and with chatkeep's pragmas (WAL, synchronous=NORMAL).
All sides run alternately in one process, so drift on a shared machine hits them alike. How to run,
and results: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import uvicorn
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url

from common import add_backend_arguments, chosen_backends, machine_line  # noqa: E402  (bench/ is on sys.path)
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

PAGE = 20  # what a chat UI loads first: GET /v1/sessions/{id}/messages?order=desc&limit=20
WARMUP = 3  # untimed rounds (appends: blocks) before the timed ones
BLOCK = 100  # appends alternate between the sides in blocks of this many
SEED_BATCH = 500
PEER_READ_BUDGET_S = 15.0  # per size, the peer's full loads stop after this (at least 5 timed)
PG_DATABASES = {"chatkeep": "ck_bench_chatkeep", "peer": "ck_bench_peer"}
# The peer's variants: on SQLite, its own defaults and chatkeep's pragmas (each on its own file);
# on PostgreSQL, one peer (server settings are shared by every database on the server).
PEERS = {"sqlite": ("peer_defaults", "peer"), "postgresql": ("peer",)}
LABELS = {"chatkeep": "chatkeep", "peer_defaults": "peer (its defaults)", "peer": "peer (same pragmas)"}
SPEEDUP_LABELS = {"peer_defaults": "× defaults", "peer": "× pragmas"}
TEXT = "could you compare keeping chat history in SQLite and in PostgreSQL for a small team of five?"


@dataclass
class Result:
    backend: str
    append: dict[str, float] = field(default_factory=dict)  # side -> messages/s
    reads: dict[str, dict[int, list[float]]] = field(default_factory=dict)  # side -> size -> seconds
    skipped: dict[str, dict[int, str]] = field(default_factory=dict)  # peer side -> size -> why not loaded

    @property
    def peers(self) -> tuple[str, ...]:
        return PEERS[self.backend]

    def label(self, side: str) -> str:
        return "peer" if side == "peer" and len(self.peers) == 1 else LABELS[side]


def text(i: int) -> str:
    return f"message {i}: {TEXT}"


def chatkeep_message(i: int) -> MessageIn:
    return MessageIn(role="user" if i % 2 == 0 else "assistant", content=text(i))


def peer_message(i: int) -> BaseMessage:
    return HumanMessage(text(i)) if i % 2 == 0 else AIMessage(text(i))


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18] if len(samples) > 1 else samples[0]


async def clock(awaitable) -> float:
    t0 = time.perf_counter()
    await awaitable
    return time.perf_counter() - t0


def clock_sync(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


class Chatkeep:
    """chatkeep's service layer in process: each append and each read is its own transaction."""

    def __init__(self, url: str) -> None:
        self.settings = Settings(database_url=url, log_level="WARNING", bootstrap_user=False)
        self.database = Database(self.settings)
        self.sessions: dict[object, str] = {}

    async def start(self) -> None:
        async with session_scope(self.database) as db:
            created = await auth_service.create_user(db, UserCreate(name="bench"))
        self.api_key, self.principal = created.api_key, Principal(kind="user", id=created.user.id)

    async def _append(self, key: object, body: MessageIn | MessageBatch) -> None:
        async with session_scope(self.database) as db:
            if key not in self.sessions:
                self.sessions[key] = (await service.create(db, self.principal, SessionCreate(title=str(key)), self.settings)).id
            await service.append(db, self.principal, self.sessions[key], body, self.settings)

    async def append(self, key: object, i: int) -> None:
        await self._append(key, chatkeep_message(i))

    async def seed(self, key: object, size: int) -> None:  # batches through the same append, not measured
        for start in range(0, size, SEED_BATCH):
            batch = [chatkeep_message(i) for i in range(start, min(size, start + SEED_BATCH))]
            await self._append(key, MessageBatch(messages=batch))

    async def read(self, key: object) -> int:
        async with session_scope(self.database, write=False) as db:
            query = MessageQuery(limit=PAGE, order="desc")
            return len((await service.list_messages(db, self.principal, self.sessions[key], query)).data)


class Peer:
    """LangChain's SQLChatMessageHistory, sync as its docs show.

    tuned: one engine with chatkeep's SQLite pragmas (WAL, synchronous=NORMAL) on every connection.
    Not tuned: `connection="sqlite:///file.db"` per history, exactly as its docs show, so SQLite's
    defaults (rollback journal, synchronous=FULL: an fsync per commit).
    """

    def __init__(self, url: str, *, tuned: bool = True) -> None:
        self.url, self.tuned = url, tuned
        self.engine = create_engine(sync_url(url))
        if tuned and self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", self._pragmas)
        self.histories: dict[object, SQLChatMessageHistory] = {}

    @staticmethod
    def _pragmas(dbapi_connection, _record) -> None:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    def history(self, key: object) -> SQLChatMessageHistory:
        if key not in self.histories:
            connection = self.engine if self.tuned else sync_url(self.url).render_as_string(hide_password=False)
            self.histories[key] = SQLChatMessageHistory(session_id=str(key), connection=connection)
        return self.histories[key]

    def dispose(self) -> None:
        self.engine.dispose()
        for history in self.histories.values():
            if history.engine is not self.engine:
                history.engine.dispose()

    def append(self, key: object, i: int) -> None:
        self.history(key).add_message(peer_message(i))

    def seed(self, key: object, size: int) -> None:  # add_messages in batches, not measured
        for start in range(0, size, SEED_BATCH):
            self.history(key).add_messages([peer_message(i) for i in range(start, min(size, start + SEED_BATCH))])

    def read(self, key: object) -> int:
        return len(self.history(key).messages)


async def measure_appends(ck: Chatkeep, peers: dict[str, Peer], n: int, result: Result) -> None:
    """Blocks of BLOCK appends, alternating sides (the order rotates every block); the first
    WARMUP blocks are not kept."""
    sides = ["chatkeep", *peers]
    spent = dict.fromkeys(sides, 0.0)
    for block, start in enumerate(range(-WARMUP * BLOCK, n, BLOCK)):
        indexes = range(start, min(n, start + BLOCK))
        shift = block % len(sides)
        for side in sides[shift:] + sides[:shift]:
            if side == "chatkeep":
                took = sum([await clock(ck.append("appends", i)) for i in indexes])
            else:
                took = sum(clock_sync(peers[side].append, "appends", i) for i in indexes)
            if block >= WARMUP:
                spent[side] += took
    result.append = {side: n / seconds for side, seconds in spent.items()}


async def measure_reads(ck: Chatkeep, peers: dict[str, Peer], args: argparse.Namespace, result: Result) -> None:
    """Round-robin over sizes and sides; the first WARMUP rounds are not kept."""
    ck_samples = {size: [] for size in args.sizes}
    peer_samples = {side: {size: [] for size in args.sizes if size <= args.peer_max_size} for side in peers}
    for _ in range(WARMUP + args.reads):
        for size in args.sizes:
            ck_samples[size].append(await clock(ck.read(size)))
            for side, peer in peers.items():
                samples = peer_samples[side].get(size)
                if samples is not None and (len(samples) < WARMUP + 5 or sum(samples) < PEER_READ_BUDGET_S):
                    samples.append(clock_sync(peer.read, size))
    result.reads["chatkeep"] = {size: s[WARMUP:] for size, s in ck_samples.items()}
    for side in peers:
        result.reads[side] = {size: s[WARMUP:] for size, s in peer_samples[side].items()}
        result.skipped[side] = {
            size: skipped_note(result.reads[side], size, args.reads) for size in args.sizes if size > args.peer_max_size
        }


def skipped_note(reads: dict[int, list[float]], size: int, n: int) -> str:
    """Extrapolated linearly from the largest session the peer did load."""
    if not reads:
        return "n/a (skipped)"
    largest = max(reads)
    seconds = p50(reads[largest]) * size / largest * n
    return f"skipped (~{seconds:,.0f} s)" if seconds >= 10 else f"skipped (~{seconds:.1f} s)"


async def run_in_process(urls: dict[str, str], args: argparse.Namespace, result: Result) -> tuple[str, dict]:
    """Appends and reads of every side. Returns chatkeep's API key and its size -> session id."""
    ck = Chatkeep(urls["chatkeep"])
    peers = {side: Peer(urls[side], tuned=side != "peer_defaults") for side in result.peers}
    try:
        await ck.start()
        await measure_appends(ck, peers, args.appends, result)
        for size in args.sizes:
            await ck.seed(size, size)
            assert await ck.read(size) == min(PAGE, size)
            if size <= args.peer_max_size:
                for peer in peers.values():
                    peer.seed(size, size)
                    assert peer.read(size) == size
        if not ck.database.is_sqlite:
            analyze(urls)
        await measure_reads(ck, peers, args, result)
        return ck.api_key, {size: ck.sessions[size] for size in args.sizes}
    finally:
        await ck.database.dispose()
        for peer in peers.values():
            peer.dispose()


@contextlib.contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """uvicorn serving chatkeep in a background thread on a pre-bound loopback port; yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(settings), log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("benchmark server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def run_http(url: str, api_key: str, sessions: dict[int, str], reads: int, result: Result) -> None:
    """GET /v1/sessions/{id}/messages?order=desc&limit=20 against a live server, round-robin over sizes."""
    samples: dict[int, list[float]] = {size: [] for size in sessions}
    settings = Settings(database_url=url, log_level="WARNING", bootstrap_user=False)
    with live_server(settings) as base_url, httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}
    ) as client:
        for _ in range(WARMUP + reads):
            for size, session_id in sessions.items():
                get = lambda: client.get(  # noqa: E731
                    f"/v1/sessions/{session_id}/messages", params={"order": "desc", "limit": PAGE}
                ).raise_for_status()
                samples[size].append(clock_sync(get))
    result.reads["http"] = {size: s[WARMUP:] for size, s in samples.items()}


def ms(samples: list[float]) -> str:
    return f"{p50(samples) * 1000:,.2f} / {p95(samples) * 1000:,.2f}"


def print_report(console: Console, result: Result) -> None:
    peers = result.peers
    table = Table(title=f"{result.backend}: chatkeep vs LangChain SQLChatMessageHistory")
    table.add_column("measure", no_wrap=True)
    table.add_column("chatkeep", justify="right")
    for side in peers:
        table.add_column(result.label(side), justify="right")
    for side in peers:
        table.add_column(SPEEDUP_LABELS[side] if len(peers) > 1 else "speed-up ×", justify="right")
    ck = result.append["chatkeep"]
    table.add_row(
        "append, messages/s (1 per transaction)",
        f"{ck:,.0f}",
        *(f"{result.append[side]:,.0f}" for side in peers),
        *(f"{ck / result.append[side]:.2f}×" for side in peers),
    )
    for size, samples in result.reads["chatkeep"].items():
        cells, speedups = [], []
        for side in peers:
            peer_samples = result.reads[side].get(size)
            cell = ms(peer_samples) if peer_samples else result.skipped[side][size]
            if peer_samples and len(peer_samples) < len(samples):
                cell += f" (n={len(peer_samples)})"
            cells.append(cell)
            speedups.append(f"{p50(peer_samples) / p50(samples):,.1f}×" if peer_samples else "n/a")
        table.add_row(f"read last {PAGE} of {size:,}: p50 / p95 ms", ms(samples), *cells, *speedups)
    for size, samples in result.reads["http"].items():
        table.add_row(f"same read over HTTP, {size:,}: p50 / p95 ms", ms(samples), *["—"] * (2 * len(peers)))
    console.print(table)
    notes = [f"  chatkeep read: list_messages(order=desc, limit={PAGE}), the page a chat UI loads first.",
             "  peer read: .messages, the whole session."]
    if any(result.skipped[side] for side in peers):
        notes[-1] += (f" skipped (~N s): {len(result.reads['chatkeep'][max(result.reads['chatkeep'])])} of its loads, "
                      f"extrapolated linearly from {max(result.reads[peers[0]], default=0):,}.")
    if len(peers) > 1:
        notes.append('  peer (its defaults): connection="sqlite:///file.db" as its docs show (rollback journal, '
                     "synchronous=FULL).\n  peer (same pragmas): chatkeep's WAL + synchronous=NORMAL given to the peer.")
    notes.append("  ×" + (" defaults / × pragmas" if len(peers) > 1 else "") +
                 ": chatkeep ÷ peer messages/s for appends, peer p50 ÷ chatkeep p50 for reads.")
    console.print("\n".join(notes))
    print_targets(console, result)


def print_targets(console: Console, result: Result) -> None:
    def line(label: str, value: float, target: str | None, ok: bool = True) -> None:
        verdict = f"(target {target}) " + ("[green]met[/]" if ok else "[red]NOT met[/]") if target else "(for information)"
        console.print(f"  {label}: {value:,.2f} {verdict}")

    # The targets are judged against the peer as a user gets it: on SQLite, at its own defaults.
    ck, target_peer = result.reads["chatkeep"], result.peers[0]
    small, large = min(ck), max(ck)
    flat = p50(ck[large]) / p50(ck[small])
    line(f"chatkeep read p50 at {large:,} ÷ at {small:,}", flat, "≤ 1.5", flat <= 1.5)
    for side in result.peers:
        peer = result.reads[side]
        if 10_000 in ck and 10_000 in peer:
            speedup = p50(peer[10_000]) / p50(ck[10_000])
            target = "≥ 50×" if side == target_peer else None
            line(f"read speed-up at 10,000 (p50) vs {result.label(side)}, ×", speedup, target, speedup >= 50)
    for side in result.peers:
        ratio = result.append["chatkeep"] / result.append[side]
        target = "≥ 2×" if side == target_peer else None
        line(f"append rate chatkeep ÷ {result.label(side)}, ×", ratio, target, ratio >= 2)
    console.print()


def make_databases(backend: str, tmp: Path, postgres_url: str | None) -> dict[str, str]:
    """A fresh database for chatkeep and one per peer side, of the same kind."""
    if backend == "sqlite":
        return {side: f"sqlite:///{tmp / f'{side}.db'}" for side in ("chatkeep", *PEERS["sqlite"])}
    drop_databases(postgres_url, create=True)
    server = make_url(postgres_url)
    return {side: server.set(database=name).render_as_string(hide_password=False) for side, name in PG_DATABASES.items()}


def drop_databases(postgres_url: str, *, create: bool = False) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for name in PG_DATABASES.values():
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if create:
                conn.execute(f'CREATE DATABASE "{name}"')


def analyze(urls: dict[str, str]) -> None:
    """What autovacuum does some time after a bulk load. Without fresh statistics the planner still
    thinks sessions are small and reads a seeded 100,000-message session by bitmap scan + sort."""
    for url in urls.values():
        with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
            conn.execute("ANALYZE")




def run_backend(backend: str, args: argparse.Namespace, console: Console) -> None:
    result = Result(backend)
    with tempfile.TemporaryDirectory(prefix="ck-bench-") as tmp:
        try:
            urls = make_databases(backend, Path(tmp), args.postgres_url)
            upgrade(urls["chatkeep"])
            console.print(f"[dim]{backend}: appends, seeding, reads (chatkeep and peer, alternating)…[/]")
            api_key, sessions = asyncio.run(run_in_process(urls, args, result))
            console.print(f"[dim]{backend}: chatkeep reads over HTTP…[/]")
            run_http(urls["chatkeep"], api_key, sessions, args.reads, result)
        finally:
            if backend == "postgresql":
                drop_databases(args.postgres_url)
    print_report(console, result)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sizes = lambda value: [int(x) for x in value.split(",") if x]  # noqa: E731
    parser.add_argument("--sizes", type=sizes, default=[100, 10_000, 100_000], help="session sizes, comma-separated")
    parser.add_argument("--appends", type=int, default=1000, help="timed appends per side (default 1000)")
    parser.add_argument("--reads", type=int, default=30, help="timed reads per size and side (default 30)")
    parser.add_argument("--peer-max-size", type=int, default=10_000, help="largest session the peer loads")
    add_backend_arguments(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    console = Console(width=150)
    backends = chosen_backends(args, console)
    console.print(f"history benchmark: {machine_line(args.postgres_url if 'postgresql' in backends else None)}")
    console.print(f"sizes {args.sizes}, {args.appends} appends, {args.reads} reads per size, "
                  f"peer loads sessions up to {args.peer_max_size:,}")
    for backend in backends:
        run_backend(backend, args, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
