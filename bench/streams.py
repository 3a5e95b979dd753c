"""Streams benchmark (issue 5): broker throughput, resume latency, the front-end status endpoints.

1. Broker: events/s and publish-to-receive latency through one stream and across 100 concurrent
   streams (one publisher + one follower each, one asyncio loop), MemoryBroker vs RedisBroker in
   alternating rounds, through Broker.publish / Broker.follow. A publisher yields to the loop after
   each event, as a run does while it awaits the model's next chunk.
2. Resume: GET .../runs/{run_id}/events with Last-Event-ID = the middle event of a finished
   ~500-event echo run: time to the first replayed event and to the last, over HTTP, against a
   memory-broker and a Redis-broker server (SQLite) alternately. Every replay is checked.
3. Front-end: active-session and task-status with 10,000 sessions and 1,000 runs of one user
   seeded, on SQLite and PostgreSQL alternately. Those servers use a Redis broker on a Redis db of
   their own, watched with MONITOR: these requests must send Redis nothing (so no KEYS/SCAN).
Servers run in threads of this process (uvicorn, loopback); the client is sequential httpx.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import platform
import shlex
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import redis
import redis.asyncio as aioredis
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for tests.*

from chatkeep.db.base import utcnow  # noqa: E402
from chatkeep.db.migrate import upgrade  # noqa: E402
from chatkeep.db.tables import ChatSessionRow, RunRow  # noqa: E402
from chatkeep.ids import new_id  # noqa: E402
from chatkeep.streams.memory import MemoryBroker  # noqa: E402
from chatkeep.streams.redis import KEY_PREFIX, RedisBroker  # noqa: E402
from tests.conftest import ADMIN_KEY, _ServerThread, drop_database, fresh_database_url, make_settings, new_user  # noqa: E402
from tests.runs.sse import events, read_events  # noqa: E402

END = frozenset({"end"})
SEED_TARGET_MS, OUR_TARGET_MS = 200.0, 10.0
WARMUP = 5  # untimed requests per target before the timed ones
OUT, RECORD = Console(width=130), Console(width=130, record=True, file=io.StringIO())


def show(renderable) -> None:
    for console in (OUT, RECORD):
        console.print(renderable, soft_wrap=isinstance(renderable, str))


def pct(samples: list[float], q: int) -> float:
    return statistics.median(samples) if q == 50 else statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def ms(samples: list[float]) -> str:
    return f"{pct(samples, 50) * 1000:.2f} / {pct(samples, 95) * 1000:.2f}"


def alternate(kinds: list[str], i: int) -> list[str]:
    """The targets in an order that rotates every round, so drift hits all alike."""
    return kinds[i % len(kinds):] + kinds[:i % len(kinds)]


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    out = Table(title=title)
    for i, name in enumerate(columns):
        out.add_column(name, justify="right" if i else "left", no_wrap=not i)
    for row in rows:
        out.add_row(*row)
    show(out)


# --- 1. brokers ---------------------------------------------------------------------------------


async def pair(broker, name: str, count: int) -> list[float]:
    """One publisher and one follower on one stream: the publish-to-receive latencies."""
    await broker.publish(name, "start", {})  # follow() takes a stream that doesn't exist for expired
    latencies: list[float] = []

    async def follower() -> None:
        async for event in broker.follow(name, None, terminal=END, idle=10):
            if event is not None and event.type == "tick":
                latencies.append(time.perf_counter() - event.data["t"])

    async def publisher() -> None:
        for _ in range(count):
            await broker.publish(name, "tick", {"t": time.perf_counter()})
            await asyncio.sleep(0)
        await broker.publish(name, "end", {})

    await asyncio.gather(follower(), publisher())
    if len(latencies) != count:
        raise RuntimeError(f"{name}: {len(latencies)} of {count} events received")
    return latencies


async def broker_round(kind: str, url: str | None, streams: int, count: int, tag: str, pool: int | None = None):
    """`streams` publisher/follower pairs at once: (seconds until all are done, latencies)."""
    broker = MemoryBroker() if kind == "memory" else RedisBroker(url)
    if pool:  # RedisBroker's own client, with a larger connection pool than redis-py's default
        broker.client = aioredis.Redis.from_url(url, max_connections=pool)
    names = [f"bench-streams:{os.getpid()}:{tag}:{i}" for i in range(streams)]
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(pair(broker, name, count)) for name in names]
    try:
        found = await asyncio.gather(*tasks)
        return time.perf_counter() - t0, [x for latencies in found for x in latencies]
    finally:
        for task in tasks:  # after a failure: stop the others before removing their streams
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if kind == "redis":
            with redis.Redis.from_url(url) as client:  # its own connection: the broker's pool may be spent
                client.delete(*(KEY_PREFIX + name for name in names))
        await broker.close()


def bench_brokers(args, kinds: list[str]) -> None:
    failure = None
    try:  # can RedisBroker as shipped carry this many publishers and followers at once?
        if "redis" in kinds:
            asyncio.run(broker_round("redis", args.redis_url, args.streams, 20, "probe"))
    except Exception as exc:  # noqa: BLE001 - reported below
        failure = f"{type(exc).__name__}: {exc}"
    pool = 2 * args.streams + 10 if failure else None
    workloads = [(1, n) for n in args.stream_events] + [(args.streams, args.events_per_stream)]
    spent = {(w, k): 0.0 for w in workloads for k in kinds}
    latency: dict = {key: [] for key in spent}
    for r in range(1 + args.rounds):  # round 0: a small untimed warm-up
        for w in workloads:
            for kind in alternate(kinds, r):
                count = w[1] if r else 20
                took, found = asyncio.run(broker_round(kind, args.redis_url, w[0], count, f"{r}-{w}-{kind}", pool))
                if r:
                    spent[w, kind] += took
                    latency[w, kind] += found
    rows, rate = [], {}
    for w in workloads:
        rate[w] = {k: w[0] * w[1] * args.rounds / spent[w, k] for k in kinds}
        ratio = f"{rate[w]['redis'] / rate[w]['memory']:.2f}×" if "redis" in kinds else "—"
        rows.append([f"{w[0]} stream{'s' * (w[0] > 1)} × {w[1]:,} events",
                     *(c for k in kinds for c in (f"{rate[w][k]:,.0f}", ms(latency[w, k]))), ratio])
    columns = ["workload", *(f"{k} {m}" for k in kinds for m in ("events/s", "p50 / p95 ms")), "redis ÷ memory, ev/s"]
    table("1. broker: publish → follow (events/s; publish-to-receive latency p50 / p95 ms)", columns, rows)
    show(f"  {args.rounds} timed rounds per cell, brokers alternating; events/s = events ÷ wall time until every "
         "follower got its last event.")
    if len(args.stream_events) > 1:  # does a longer stream cost more per event?
        first, last = workloads[0], workloads[len(args.stream_events) - 1]
        falls = ", ".join(f"{rate[first][k] / rate[last][k]:.1f} ({k})" for k in kinds)
        show(f"  One stream, events/s at {first[1]:,} events ÷ at {last[1]:,}: {falls}; a flat cost per event gives 1.0.")
    if failure:
        show(f"  [red]RedisBroker as shipped fails with {args.streams} concurrent streams[/]: {failure} (redis-py's "
             "default asyncio pool holds 100 connections; each follower holds one through its blocking XREAD). "
             f"The redis figures above use the same broker with a pool of {pool} connections.")
    show("")


def serve(stack: contextlib.ExitStack, db_url: str, **settings) -> tuple[httpx.Client, str]:
    """A live chatkeep server (a thread) and a client of a new user of it: (client, user id)."""
    base_url = f"http://127.0.0.1:{stack.enter_context(_ServerThread(make_settings(db_url, **settings))).port}"
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        created = new_user(admin, "bench")
    client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {created['api_key']}"}, timeout=60)
    stack.callback(client.close)
    return client, created["user"]["id"]


# --- 2. resume ----------------------------------------------------------------------------------


def finished_run(client: httpx.Client, count: int) -> tuple[str, str, list]:
    """A completed echo run of about `count` events: (its run id, its events URL, its events)."""
    sid = client.post("/v1/sessions", json={}).raise_for_status().json()["id"]
    words = " ".join(f"word{i}" for i in range(max(1, count - 10)))  # the reply adds ~10 events
    run = client.post(f"/v1/sessions/{sid}/runs", json={"input": [{"role": "user", "content": words}]})
    url = f"/v1/sessions/{sid}/runs/{run.raise_for_status().json()['id']}/events"
    return run.json()["id"], url, events(client, url)  # follows it to the end


def resume_once(client: httpx.Client, url: str, everything: list) -> tuple[float, float]:
    """Resume after the middle event: (seconds to the first replayed event, to the last)."""
    mid = len(everything) // 2
    t0 = time.perf_counter()
    first, got = None, []
    with client.stream("GET", url, headers={"Last-Event-ID": everything[mid - 1].id}) as response:
        for event in read_events(response):
            first = first or time.perf_counter() - t0
            got.append(event)
    total = time.perf_counter() - t0
    if got != everything[mid:]:
        raise RuntimeError(f"resume of {url} replayed {len(got)} events, not the {len(everything) - mid} expected")
    return first, total


def bench_resume(args, kinds: list[str], tmp: Path) -> None:
    targets, samples = {}, {k: ([], []) for k in kinds}
    with contextlib.ExitStack() as stack:
        for kind in kinds:
            db_url = fresh_database_url("sqlite", f"resume_{kind}", tmp)
            upgrade(db_url)
            client, _ = serve(stack, db_url, echo_delay_ms=0, redis_url=args.redis_url if kind == "redis" else None)
            targets[kind] = (client, [finished_run(client, args.run_events) for _ in range(args.resume_runs)])
        if "redis" in kinds:
            keys = [KEY_PREFIX + f"run:{run[0]}" for run in targets["redis"][1]]
            stack.callback(redis.Redis.from_url(args.redis_url).delete, *keys)
        for i in range(WARMUP + args.resumes):
            for kind in alternate(kinds, i):
                client, runs = targets[kind]
                first, total = resume_once(client, *runs[i % len(runs)][1:])
                if i >= WARMUP:
                    samples[kind][0].append(first)
                    samples[kind][1].append(total)
    n = len(targets[kinds[0]][1][0][2])
    rows = []
    for i, label in enumerate(["request → first replayed event", f"request → last of {n - n // 2} replayed events"]):
        ratio = f"{pct(samples['redis'][i], 50) / pct(samples['memory'][i], 50):.2f}×" if "redis" in kinds else "—"
        rows.append([label, *(ms(samples[k][i]) for k in kinds), ratio])
    table(f"2. resume a finished run of {n} events after its middle event, over HTTP (p50 / p95 ms)",
          ["measure", *kinds, "redis ÷ memory, p50"], rows)
    show(f"  {args.resumes} resumes per broker over {args.resume_runs} runs, servers alternating; every replay "
         "equals the run's events after the cursor (no gap, no duplicate).\n")


# --- 3. front-end endpoints ---------------------------------------------------------------------


def seed(db_url: str, owner: str, args) -> dict[str, list[str]]:
    """`args.sessions` sessions of `owner` (and as many of 10 other owners); `args.runs` runs in half
    as many sessions: an older completed run, then a running/completed/error/cancelled one."""
    now, statuses = utcnow(), ("running", "completed", "error", "cancelled")
    found = {"runs": [new_id() for _ in range(args.runs // 2)]}
    found["none"] = [new_id() for _ in range(args.sessions - len(found["runs"]))]
    sids = found["runs"] + found["none"] + [new_id() for _ in range(args.sessions)]
    owners = [owner] * args.sessions + [f"other-{i % 10}" for i in range(args.sessions)]
    runs, active = [], {}
    for i, sid in enumerate(found["runs"]):
        for age, status in ((7200, "completed"), (600, statuses[i % 4])):
            start = now - timedelta(seconds=age, milliseconds=i)
            done = None if status == "running" else start + timedelta(seconds=5)
            runs.append(dict(id=new_id(), session_id=sid, owner_id=owner, agent="chat", model="echo", status=status,
                             tokens=200, cursor=f"{int(start.timestamp() * 1000)}-0", message_ids=[], worker="bench",
                             lease_until=now + timedelta(days=1), created_at=start, started_at=start,
                             last_activity_at=done or now, finished_at=done))
            active[sid] = runs[-1]["id"] if status == "running" else None
    sessions = [dict(id=sid, owner_id=who, agent="chat", model="echo", max_history_messages=20, summarization=False,
                     metadata={}, pinned=False, archived=False, created_at=now - timedelta(days=1, seconds=i),
                     updated_at=now - timedelta(seconds=i), message_count=0, prompt_tokens=0, completion_tokens=0,
                     total_cost=0.0, active_run_id=active.get(sid)) for i, (sid, who) in enumerate(zip(sids, owners))]
    url = make_url(db_url)
    engine = create_engine(url.set(drivername="postgresql+psycopg") if url.get_backend_name() == "postgresql" else url)
    with engine.begin() as conn:
        conn.execute(insert(ChatSessionRow.__table__), sessions)
        conn.execute(insert(RunRow.__table__), runs)
        conn.execute(text("ANALYZE"))  # as autovacuum would, a while after a bulk load
    engine.dispose()
    return found


@contextlib.contextmanager
def redis_commands(url: str) -> Iterator[list[str]]:
    """The commands sent to `url`'s Redis db while the block runs (MONITOR, in a thread); the list
    ends with "(stopped)" if the monitor saw the block end."""
    db, marker, seen = int(urlsplit(url).path.strip("/") or 0), f"bench-stop-{os.getpid()}", []
    client = redis.Redis.from_url(url)
    client.ping()  # connected (and SELECTed) before MONITOR starts: the stop marker adds no command
    with redis.Redis.from_url(url, socket_timeout=None).monitor() as monitor:  # redis-py 8 defaults to 5 s

        def listen() -> None:
            for cmd in monitor.listen():
                if cmd["command"].lower() == f"echo {marker}":
                    return seen.append("(stopped)")
                if cmd["db"] == db:
                    seen.append(cmd["command"].split(" ")[0].upper())

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        try:
            yield seen
        finally:
            client.echo(marker)
            thread.join(10)
            client.close()


def bench_endpoints(args, tmp: Path) -> None:
    paths, samples, targets = ("", "/active-session", "/task-status"), {}, {}
    monitor_url = urlsplit(args.redis_url)._replace(path=f"/{args.monitor_db}").geturl() if args.redis_url else None
    with contextlib.ExitStack() as stack:
        for backend in args.backends:
            db_url = fresh_database_url(backend, f"bench_streams_{backend}", tmp)
            stack.callback(drop_database, db_url)
            upgrade(db_url)
            client, owner = serve(stack, db_url, redis_url=monitor_url)
            targets[backend] = (client, seed(db_url, owner, args))
        watch = stack.enter_context(redis_commands(monitor_url)) if monitor_url else None
        for i in range(WARMUP + args.requests):
            for backend in alternate(args.backends, i):
                client, sids = targets[backend]
                for path in paths:
                    for kind in ("runs", "none"):
                        sid = sids[kind][(i * 7919) % len(sids[kind])]
                        t0 = time.perf_counter()
                        response = client.get(f"/v1/sessions/{sid}{path}")
                        samples.setdefault((backend, path, kind), []).append(time.perf_counter() - t0)
                        if response.status_code != (200 if kind == "runs" or not path else 404):
                            raise RuntimeError(f"{backend} {path}: {response.status_code} {response.text[:200]}")
    report_endpoints(args, {key: found[WARMUP:] for key, found in samples.items()}, paths, watch)


def report_endpoints(args, samples: dict, paths: tuple[str, ...], watch: list[str] | None) -> None:
    both = args.backends == ["sqlite", "postgresql"]
    rows = []
    for path in paths:
        for kind, which in (("runs", "with runs (200)"), ("none", f"without a run ({404 if path else 200})")):
            cells = [ms(samples[b, path, kind]) for b in args.backends]
            if both:
                cells.append(f"{pct(samples['postgresql', path, kind], 50) / pct(samples['sqlite', path, kind], 50):.2f}×")
            rows.append([f"GET /v1/sessions/{{id}}{path}, session {which}", *cells])
    title = f"3. front-end endpoints, {args.sessions:,} sessions + {args.runs:,} runs of one user, over HTTP (p50 / p95 ms)"
    table(title, ["request", *args.backends, *(["postgresql ÷ sqlite, p50"] if both else [])], rows)
    show(f"  {args.requests} requests per cell, backends and rows alternating, sessions spread over the seeded ones.\n"
         "  GET /v1/sessions/{id} is the floor to compare with: the same auth and session read, without the run lookup.")
    for backend in args.backends:
        worst = max(pct(samples[backend, p, k], 95) for p in paths[1:] for k in ("runs", "none")) * 1000
        for label, target in (("seed target", SEED_TARGET_MS), ("our target", OUR_TARGET_MS)):
            verdict = "[green]met[/]" if worst < target else "[red]NOT met[/]"
            show(f"  {backend}: worst p95 of active-session and task-status {worst:.2f} ms "
                 f"({label} < {target:g} ms) {verdict}")
    if watch is not None:
        stopped, commands = watch[-1:] == ["(stopped)"], [c for c in watch if c != "(stopped)"]
        scans = sum(c in ("KEYS", "SCAN") for c in commands)
        verdict = "[red]MONITOR failed[/]" if not stopped else "[green]met[/]" if scans == 0 else "[red]NOT met[/]"
        show(f"  Redis MONITOR on db {args.monitor_db} during these requests: {len(commands)} commands "
             f"({', '.join(sorted(set(commands))) or 'none'}); KEYS/SCAN: {scans} {verdict}\n")


# --- the run ------------------------------------------------------------------------------------


def machine_line(args) -> str:
    line = f"{len(os.sched_getaffinity(0))} cores (nproc), Python {platform.python_version()}"
    line += f", SQLite {sqlite3.sqlite_version}"
    if "postgresql" in args.backends:
        with psycopg.connect(args.postgres_url) as conn:
            line += f", PostgreSQL {conn.execute('SHOW server_version').fetchone()[0]}"
    if args.redis_url:
        with redis.Redis.from_url(args.redis_url) as client:
            line += f", Redis {client.info('server')['redis_version']} (redis-py {redis.__version__})"
    return line


def parse_args() -> argparse.Namespace:
    ints = lambda value: [int(x) for x in value.split(",") if x]  # noqa: E731
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--rounds", type=int, default=2, help="timed broker rounds per cell (default 2)")
    add("--stream-events", type=ints, default=[1_000, 5_000], help="events through one stream (default 1000,5000)")
    add("--streams", type=int, default=100, help="concurrent streams (default 100)")
    add("--events-per-stream", type=int, default=200, help="events per concurrent stream (default 200)")
    add("--run-events", type=int, default=500, help="events of each finished run to resume (default 500)")
    add("--resume-runs", type=int, default=3, help="finished runs per broker (default 3)")
    add("--resumes", type=int, default=100, help="timed resumes per broker (default 100)")
    add("--sessions", type=int, default=10_000, help="sessions of the user (default 10,000)")
    add("--runs", type=int, default=1_000, help="runs of the user (default 1,000)")
    add("--requests", type=int, default=120, help="timed requests per endpoint cell (default 120)")
    add("--backends", type=lambda v: [b for b in v.split(",") if b], default=["sqlite", "postgresql"])
    add("--postgres-url", default=os.environ.get("CHATKEEP_TEST_POSTGRES_URL"), help="($CHATKEEP_TEST_POSTGRES_URL)")
    add("--redis-url", default=os.environ.get("CHATKEEP_TEST_REDIS_URL"), help="default $CHATKEEP_TEST_REDIS_URL")
    add("--monitor-db", type=int, default=9, help="the endpoint servers' Redis db, watched with MONITOR (default 9)")
    add("--out", default="", help="also write the tables to this markdown file")
    return parser.parse_args()


def write_results(path: str, machine: str, seconds: float, load: str) -> None:
    command = shlex.join([os.path.relpath(sys.executable), *sys.argv])
    Path(path).write_text(
        f"# Streams benchmark (bench/streams.py)\n\n- Date: {date.today().isoformat()}\n- Command: `{command}`\n"
        f"- Machine: {machine}\n- Load average (1 min) at start / end: {load}\n- Run time: {seconds:.0f} s\n\n"
        f"```text\n{RECORD.export_text().rstrip()}\n```\n"
    )


def main() -> int:
    args, started, load = parse_args(), time.monotonic(), f"{os.getloadavg()[0]:.1f}"
    if "postgresql" in args.backends and not args.postgres_url:
        OUT.print("[yellow]postgresql skipped: no --postgres-url and no CHATKEEP_TEST_POSTGRES_URL[/]")
        args.backends.remove("postgresql")
    if args.postgres_url:  # the tests' fresh_database_url / drop_database read it from here
        os.environ["CHATKEEP_TEST_POSTGRES_URL"] = args.postgres_url
    kinds = ["memory", "redis"] if args.redis_url else ["memory"]
    machine = machine_line(args)
    OUT.print(f"streams benchmark: {machine}\n")
    with tempfile.TemporaryDirectory(prefix="ck-bench-streams-") as tmp:
        bench_brokers(args, kinds)
        bench_resume(args, kinds, Path(tmp))
        bench_endpoints(args, Path(tmp))
    if args.out:
        write_results(args.out, machine, time.monotonic() - started, f"{load} / {os.getloadavg()[0]:.1f}")
        OUT.print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
