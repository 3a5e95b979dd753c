"""Gateway benchmark: what chatkeep adds to a chat completion, and whether it grows with history.

In one run, on SQLite and on PostgreSQL: a fake OpenAI-compatible upstream that answers at once
(the tests' FakeUpstream, in a thread), and a chatkeep server (uvicorn, in a thread) pointed at it.
The same calls go (a) straight to the fake upstream and (b) through chatkeep's
`POST /v1/chat/completions` with a `session_id` whose session holds 20, 1,000 and 100,000
messages (chatkeep injects the last 20, calls the fake, stores the turn). Sequential calls on one
keep-alive client give p50/p99 per call (added = via chatkeep − direct); each block of them gets
a freshly seeded session where that is cheap, so "20" stays about 20. 8 concurrent clients give
req/s. The clients run in a child process, so their CPU does not share the servers' GIL. Targets
run alternately in blocks, so drift on a shared machine hits them alike. Results: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for tests.*

from common import add_backend_arguments, chosen_backends, machine_line  # noqa: E402  (bench/ is on sys.path)
from chatkeep.auth import service as auth_service  # noqa: E402
from chatkeep.auth.principal import Principal  # noqa: E402
from chatkeep.auth.schemas import UserCreate  # noqa: E402
from chatkeep.db.engine import Database, session_scope  # noqa: E402
from chatkeep.db.migrate import upgrade  # noqa: E402
from chatkeep.sessions import service  # noqa: E402
from chatkeep.sessions.schemas import MessageBatch, MessageIn, SessionCreate  # noqa: E402
from tests.conftest import _AppThread, _ServerThread, drop_database, fresh_database_url, make_settings  # noqa: E402
from tests.gateway.fake_upstream import FakeUpstream  # noqa: E402

MODEL = "fake-bench"  # not configured: passes through to upstream_base_url (the fake)
HISTORY = 20  # chatkeep's default history window (max_history_messages)
SEED_BATCH = 500
BLOCK = 25  # sequential calls alternate between targets in blocks of this many
WARMUP_ROUNDS = 1  # untimed rounds (a block per target) before the timed ones
CONCURRENCY = 8
CONCURRENT_ROUNDS = 3  # timed rounds of concurrent load per target (after one untimed round)
# Sequential blocks each get their own session of the size while the seeding this takes stays under
# this many messages per size; above it (100,000) one session serves every block and grows by 2
# messages per call (by 1 % or so).
SEED_POOL_LIMIT = 50_000
DIRECT = "direct"
TEXT = "could you compare keeping chat history in SQLite and in PostgreSQL for a small team of five?"
ADDED_P50_TARGET_MS = 3.0
FLAT_TARGET = 1.3


class QuietUpstream(FakeUpstream):
    """The tests' fake upstream, keeping only its last few requests: a benchmark sends thousands."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = deque(maxlen=4)  # type: ignore[assignment]
        self.headers = deque(maxlen=4)  # type: ignore[assignment]
        self.sent_at = deque(maxlen=4)  # type: ignore[assignment]


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    sessions: list[str] = field(default_factory=list)  # via chatkeep: sequential round r uses sessions[r % len]

    def session(self, round_: int) -> str | None:
        return self.sessions[round_ % len(self.sessions)] if self.sessions else None


@dataclass
class Result:
    backend: str
    latency: dict[str, list[float]] = field(default_factory=dict)  # target -> seconds per call
    rps: dict[str, float] = field(default_factory=dict)  # target -> requests/s with CONCURRENCY clients
    counts: dict[str, list[int]] = field(default_factory=dict)  # target -> messages of each of its sessions at the end


def body(target: Target, i: int, round_: int = -1) -> dict[str, Any]:
    """The same call for every target; via chatkeep it names a session."""
    payload: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": f"call {i}: {TEXT}"}]}
    session_id = target.session(round_)
    if session_id is not None:
        payload["session_id"] = session_id
    return payload


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98] if len(samples) > 1 else samples[0]


# --- the client side (a child process) ---------------------------------------------------------


def sequential(targets: list[Target], calls: int) -> dict[str, list[float]]:
    """Blocks of BLOCK calls per target, the order rotating every round; first round untimed."""
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    clients = {t.name: httpx.Client(headers=t.headers, timeout=30) for t in targets}
    rounds = WARMUP_ROUNDS + -(-calls // BLOCK)
    i = 0
    try:
        for r in range(rounds):
            shift = r % len(targets)
            for target in targets[shift:] + targets[:shift]:
                client = clients[target.name]
                for _ in range(BLOCK):
                    i += 1
                    payload = body(target, i, r)
                    t0 = time.perf_counter()
                    response = client.post(target.url, json=payload)
                    took = time.perf_counter() - t0
                    if response.status_code != 200:
                        raise RuntimeError(f"{target.name}: HTTP {response.status_code}: {response.text[:300]}")
                    if r >= WARMUP_ROUNDS:
                        samples[target.name].append(took)
    finally:
        for client in clients.values():
            client.close()
    return {name: s[:calls] for name, s in samples.items()}


async def _load(target: Target, requests: int, concurrency: int) -> float:
    """`concurrency` clients, each on its own keep-alive connection, share `requests` calls (via
    chatkeep, all on one session: the last of the target's)."""
    remaining = iter(range(requests))

    async def worker(client: httpx.AsyncClient) -> None:
        for i in remaining:
            response = await client.post(target.url, json=body(target, i))
            if response.status_code != 200:
                raise RuntimeError(f"{target.name}: HTTP {response.status_code}: {response.text[:300]}")

    clients = [httpx.AsyncClient(headers=target.headers, timeout=30) for _ in range(concurrency)]
    try:
        for client in clients:  # open the connections before the clock starts
            await client.post(target.url, json=body(target, -1))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients))
        return time.perf_counter() - t0
    finally:
        for client in clients:
            await client.aclose()


def concurrent(targets: list[Target], requests: int, concurrency: int) -> dict[str, float]:
    """Rounds of `requests` calls per target, the order rotating; the first round is untimed."""
    spent = {t.name: 0.0 for t in targets}
    for r in range(1 + CONCURRENT_ROUNDS):
        shift = r % len(targets)
        for target in targets[shift:] + targets[:shift]:
            took = asyncio.run(_load(target, requests, concurrency))
            if r >= 1:
                spent[target.name] += took
    return {name: requests * CONCURRENT_ROUNDS / seconds for name, seconds in spent.items()}


def client_process(conn, targets: list[Target], calls: int, load_requests: int) -> None:
    try:
        latency = sequential(targets, calls)
        rps = concurrent(targets, load_requests, CONCURRENCY) if load_requests else {}
        conn.send(("ok", latency, rps))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        conn.send(("error", repr(exc), None))
    finally:
        conn.close()


def run_clients(targets: list[Target], calls: int, load_requests: int) -> tuple[dict, dict]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=client_process, args=(child, targets, calls, load_requests), daemon=True)
    process.start()
    child.close()
    try:
        status, latency, rps = parent.recv()
    except EOFError:
        raise RuntimeError(f"benchmark client process died (exit code {process.join(5) or process.exitcode})") from None
    finally:
        process.join(timeout=30)
    if status != "ok":
        raise RuntimeError(f"benchmark client failed: {latency}")
    return latency, rps


# --- the server side --------------------------------------------------------------------------


def chatkeep_message(i: int) -> MessageIn:
    return MessageIn(role="user" if i % 2 == 0 else "assistant", content=f"message {i}: {TEXT}")


async def seed(settings, plan: dict[int, int]) -> tuple[str, dict[int, list[str]]]:
    """A user and plan[size] sessions of each size, filled through chatkeep's own append in
    batches of SEED_BATCH (not measured)."""
    database = Database(settings)
    try:
        async with session_scope(database) as db:
            created = await auth_service.create_user(db, UserCreate(name="bench"))
        principal = Principal(kind="user", id=created.user.id)
        sessions: dict[int, list[str]] = {}
        for size, count in plan.items():
            for n in range(count):
                async with session_scope(database) as db:
                    create = SessionCreate(title=f"bench {size} #{n}", model=MODEL)
                    session_id = (await service.create(db, principal, create, settings)).id
                sessions.setdefault(size, []).append(session_id)
                for start in range(0, size, SEED_BATCH):
                    batch = [chatkeep_message(i) for i in range(start, min(size, start + SEED_BATCH))]
                    async with session_scope(database) as db:
                        await service.append(db, principal, session_id, MessageBatch(messages=batch), settings)
        return created.api_key, sessions
    finally:
        await database.dispose()


def analyze(url: str) -> None:
    """What autovacuum does a while after a bulk load (see bench/README.md, history.py's note)."""
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        conn.execute("ANALYZE")


def message_count(server_url: str, api_key: str, session_id: str) -> int:
    response = httpx.get(f"{server_url}/v1/sessions/{session_id}", headers={"Authorization": f"Bearer {api_key}"})
    response.raise_for_status()
    return response.json()["message_count"]


def check_history_injected(fake: QuietUpstream, target: Target, size: int) -> None:
    """One call through chatkeep: the fake must have received the history window plus the call."""
    response = httpx.post(target.url, headers=target.headers, json=body(target, 0), timeout=30)
    if response.status_code != 200 or response.json().get("session_id") != target.session(-1):
        raise RuntimeError(f"{target.name}: unexpected answer {response.status_code}: {response.text[:300]}")
    sent = len(fake.last()["messages"])
    if sent != min(HISTORY, size) + 1:
        raise RuntimeError(f"{target.name}: the upstream got {sent} messages, expected {min(HISTORY, size) + 1}")


def run_backend(backend: str, args: argparse.Namespace, console: Console) -> Result:
    result = Result(backend)
    with tempfile.TemporaryDirectory(prefix="ck-bench-gw-") as tmp:
        url = fresh_database_url(backend, "bench_gateway", Path(tmp))
        try:
            upgrade(url)
            fake = QuietUpstream()
            with _AppThread(fake.app) as upstream_thread:
                upstream = f"http://127.0.0.1:{upstream_thread.port}/v1"
                settings = make_settings(url, upstream_base_url=upstream)
                rounds = WARMUP_ROUNDS + -(-args.calls // BLOCK)
                plan = {size: rounds if size * rounds <= SEED_POOL_LIMIT else 1 for size in args.sizes}
                console.print(f"[dim]{backend}: seeding "
                              + ", ".join(f"{n} session{'s' * (n > 1)} of {s:,}" for s, n in plan.items()) + "…[/]")
                t0 = time.perf_counter()
                api_key, sessions = asyncio.run(seed(settings, plan))
                if backend == "postgresql":
                    analyze(url)
                console.print(f"[dim]{backend}: seeded in {time.perf_counter() - t0:.0f} s; calls…[/]")
                with _ServerThread(settings) as server_thread:
                    server = f"http://127.0.0.1:{server_thread.port}"
                    auth = {"Authorization": f"Bearer {api_key}"}
                    targets = [Target(DIRECT, f"{upstream}/chat/completions", auth, {})]
                    for size, session_ids in sessions.items():
                        target = Target(f"{size}", f"{server}/v1/chat/completions", auth, session_ids)
                        check_history_injected(fake, target, size)
                        targets.append(target)
                    result.latency, result.rps = run_clients(targets, args.calls, args.load_requests)
                    for size, session_ids in sessions.items():
                        result.counts[str(size)] = [message_count(server, api_key, sid) for sid in session_ids]
        finally:
            drop_database(url)
    return result


# --- the report -------------------------------------------------------------------------------


def print_report(console: Console, result: Result, args: argparse.Namespace) -> None:
    direct = result.latency[DIRECT]
    table = Table(title=f"{result.backend}: POST /v1/chat/completions, direct to the fake upstream vs through chatkeep")
    for name, justify in [("calls", "left"), ("p50 ms", "right"), ("p99 ms", "right"), ("added p50 ms", "right"),
                          ("added p99 ms", "right"), (f"req/s ({CONCURRENCY} clients)", "right"), ("req/s ÷ direct", "right")]:
        table.add_column(name, justify=justify, no_wrap=name == "calls")
    rps_direct = result.rps.get(DIRECT)

    def rps_cells(name: str) -> list[str]:
        if name not in result.rps:
            return ["—", "—"]
        return [f"{result.rps[name]:,.0f}", f"{result.rps[name] / rps_direct:.2f}×" if name != DIRECT else "1.00×"]

    table.add_row("direct to the fake upstream", f"{p50(direct) * 1000:.2f}", f"{p99(direct) * 1000:.2f}", "—", "—",
                  *rps_cells(DIRECT))
    for size in args.sizes:
        samples = result.latency[str(size)]
        table.add_row(
            f"via chatkeep, session of {size:,}",
            f"{p50(samples) * 1000:.2f}",
            f"{p99(samples) * 1000:.2f}",
            f"{(p50(samples) - p50(direct)) * 1000:.2f}",
            f"{(p99(samples) - p99(direct)) * 1000:.2f}",
            *rps_cells(str(size)),
        )
    console.print(table)

    def grown(size: str, counts: list[int]) -> str:
        if len(counts) == 1:
            return f"    {int(size):,}: 1 session, now {counts[0]:,}"
        lo, hi = min(counts[:-1]), max(counts[:-1])
        span = f"{lo:,}" + (f"–{hi:,}" if hi != lo else "")
        return f"    {int(size):,}: {len(counts)} sessions, now {span}; the one that also took the load: {counts[-1]:,}"

    notes = [
        f"  {len(direct)} sequential calls per row: one keep-alive client, blocks of {BLOCK}, rows alternating, "
        "a session per block.",
        f"  req/s: {CONCURRENCY} clients sharing one session per row, {args.load_requests} calls × {CONCURRENT_ROUNDS} rounds.",
        f"  added = via chatkeep − direct, per percentile. Through chatkeep a call injects the last {HISTORY} messages,",
        "  calls the fake upstream and stores the turn (2 messages). Messages per session at the end:",
        *(grown(k, c) for k, c in result.counts.items()),
    ]
    console.print("\n".join(notes), soft_wrap=True)

    def line(label: str, value: float, target: str, ok: bool) -> None:
        console.print(f"  {label}: {value:,.2f} (target {target}) " + ("[green]met[/]" if ok else "[red]NOT met[/]"))

    added = {size: (p50(result.latency[str(size)]) - p50(direct)) * 1000 for size in args.sizes}
    small, large = min(args.sizes), max(args.sizes)
    for size in args.sizes:
        line(f"added p50 at {size:,} messages, ms", added[size], f"≤ {ADDED_P50_TARGET_MS:g} ms",
             added[size] <= ADDED_P50_TARGET_MS)
    if small != large:
        ratio = added[large] / added[small] if added[small] > 0 else float("inf")
        line(f"added p50 at {large:,} ÷ at {small:,}", ratio, f"≤ {FLAT_TARGET}", ratio <= FLAT_TARGET)
    console.print()




def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sizes = lambda value: [int(x) for x in value.split(",") if x]  # noqa: E731
    parser.add_argument("--sizes", type=sizes, default=[20, 1_000, 100_000], help="session sizes, comma-separated")
    parser.add_argument("--calls", type=int, default=600, help="timed sequential calls per row (default 600)")
    parser.add_argument("--load-requests", type=int, default=300,
                        help=f"calls per round of concurrent load per row ({CONCURRENCY} clients; 0 skips; default 300)")
    add_backend_arguments(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    console = Console(width=130)
    backends = chosen_backends(args, console)
    if args.postgres_url:  # the tests' fresh_database_url / drop_database read it from here
        os.environ["CHATKEEP_TEST_POSTGRES_URL"] = args.postgres_url
    console.print(f"gateway benchmark: {machine_line(args.postgres_url if 'postgresql' in backends else None)}")
    console.print(f"sessions of {', '.join(f'{s:,}' for s in args.sizes)} messages, {args.calls} sequential calls "
                  f"per row, {CONCURRENCY} clients × {args.load_requests} calls × {CONCURRENT_ROUNDS} rounds for req/s")
    for backend in backends:
        print_report(console, run_backend(backend, args, console), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
