"""Checkpoint benchmark: chatkeep's LangGraph saver vs LangGraph's own savers.

One real LangGraph graph (a StateGraph with MessagesState, one node that answers each ~200-character
human message with ~400 characters: a plain function, no model) runs T threads × N turns on
chatkeep's sync `ChatkeepSaver` and, in the same run, on `langgraph-checkpoint-sqlite`'s
`SqliteSaver` (same SQLite settings: WAL, synchronous=NORMAL), on `langgraph-checkpoint-postgres`'s
`PostgresSaver` (a database on the same server as chatkeep's) and on `InMemorySaver` (the ceiling
LangGraph itself sets). Then one thread per saver grows to 200 turns, to see how a turn's cost
grows with the thread's length; its state is read back (`get_state`) and copies of it are deleted
(`delete_thread`). The savers take turns (the order rotating every round), so drift on a shared
machine hits them alike. How to run, and results: bench/README.md.
"""

from __future__ import annotations

import argparse
import copy as copy_module
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, MessagesState, StateGraph
from rich.console import Console
from rich.table import Table
from sqlalchemy import Boolean, Engine, Float, Integer, LargeBinary, Numeric, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.types import JSON

from common import add_backend_arguments, chosen_backends, machine_line  # noqa: E402  (bench/ is on sys.path)
from chatkeep.checkpoint import ChatkeepSaver
from chatkeep.config import Settings
from chatkeep.db.engine import sync_url

OWNER = "user-bench"  # the owner of chatkeep's sessions (any chatkeep user id; none is needed)
PG_DATABASES = {"chatkeep": "ck_bench_cp_chatkeep", "peer": "ck_bench_cp_peer"}
AT_TURNS = (10, 50, 100, 200)  # the long thread's turns reported
WINDOW = 5  # latency and saver time "at turn k": the median of turns k-4..k
WARMUP_TURNS = 3  # a thread per saver, before anything is timed or counted
SAVER_METHODS = ("put", "put_writes", "get_tuple")
# What each saver's tables hold: (table, group, thread column). Groups: "checkpoints" (the
# checkpointer's own tables) and "mirror" (chatkeep's session of the thread and its messages).
CHATKEEP_TABLES = (
    ("checkpoints", "checkpoints", "thread_id"),
    ("checkpoint_blobs", "checkpoints", "thread_id"),
    ("checkpoint_writes", "checkpoints", "thread_id"),
    ("checkpoint_messages", "mirror", "thread_id"),
    ("messages", "mirror", "session_id"),
    ("sessions", "mirror", "id"),
)
SQLITE_PEER_TABLES = (("checkpoints", "checkpoints", "thread_id"), ("writes", "checkpoints", "thread_id"))
PG_PEER_TABLES = (
    ("checkpoints", "checkpoints", "thread_id"),
    ("checkpoint_blobs", "checkpoints", "thread_id"),
    ("checkpoint_writes", "checkpoints", "thread_id"),
)

# --- the workload ------------------------------------------------------------------------------

_VOCABULARY = sorted(set((
    "the a of to and in is it you that for on with as this be are was have not they at or from "
    "by an but what all can your if more when one about which will there their out has so up "
    "would time like just how some could them these other than then into only its now two any "
    "model state graph thread session message reply question answer cost store table index row "
    "query server client cache memory disk write read turn step node tool call value version "
    "list batch stream token window chain copy delta prune keep delete growth latency storage "
    "database team people product design review test release deploy metric error retry limit "
    "budget plan schedule north south river city market price order account invoice report"
).split()))


def prose(seed: int, chars: int) -> str:
    """Text of about `chars` characters from a word list (not one repeated sentence, so it
    compresses like prose, not like a pattern)."""
    rng = random.Random(seed)
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(_VOCABULARY))
    return " ".join(words).capitalize() + "."


QUESTIONS = [prose(i, 200) for i in range(64)]
REPLIES = [prose(10_000 + i, 400) for i in range(64)]


def chat_graph() -> StateGraph:
    """One node replying ~400 characters to each human message (no model: a plain function)."""

    def reply(state: MessagesState) -> dict:
        turn = len(state["messages"]) // 2
        return {"messages": [AIMessage(content=REPLIES[turn % len(REPLIES)])]}

    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    return builder


def turn_input(turn: int) -> dict:
    return {"messages": [HumanMessage(content=QUESTIONS[turn % len(QUESTIONS)])]}


def config_of(thread_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id, "user_id": OWNER}}


# --- the savers --------------------------------------------------------------------------------


class Clock:
    """Time spent inside the saver's put/put_writes/get_tuple (LangGraph calls put in a background
    thread: appends from both threads, list.append is atomic)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def mark(self) -> int:
        return len(self.calls)

    def since(self, mark: int) -> tuple[float, dict[str, int]]:
        calls = self.calls[mark:]
        counts: dict[str, int] = {}
        for name, _ in calls:
            counts[name] = counts.get(name, 0) + 1
        return sum(seconds for _, seconds in calls), counts


def instrument(saver: Any, clock: Clock) -> Any:
    """Time the saver's own methods: a subclass of its class whose put/put_writes/get_tuple
    time the inherited ones (a subclass, not instance attributes, so LangGraph's shallow copies
    of a saver are timed too)."""
    base = type(saver)

    def timed(name: str) -> Callable:
        inner = getattr(base, name)

        def method(self, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return inner(self, *args, **kwargs)
            finally:
                clock.calls.append((name, time.perf_counter() - t0))

        return method

    saver.__class__ = type(f"Timed{base.__name__}", (base,), {name: timed(name) for name in SAVER_METHODS})
    return saver


@dataclass
class Side:
    key: str
    label: str
    backend: str  # sqlite | postgresql | memory
    saver: Any
    engine: Engine | None = None  # a separate engine to count rows and bytes, and to copy threads
    tables: tuple[tuple[str, str, str], ...] = ()
    fresh_saver: Callable[[], Any] | None = None  # another saver instance on the same storage
    copy_thread: Callable[[str, str], None] | None = None
    disk_bytes: Callable[[], int] | None = None
    clock: Clock = field(default_factory=Clock)
    graph: Any = None
    # results
    latencies: list[float] = field(default_factory=list)  # phase 1, per turn
    saver_times: list[float] = field(default_factory=list)  # phase 1, per turn
    calls: dict[str, int] = field(default_factory=dict)  # phase 1, summed
    written: dict[str, tuple[int, int]] = field(default_factory=dict)  # phase 1: group -> (rows, bytes)
    disk_growth: int | None = None
    long_latency: list[float] = field(default_factory=list)
    long_saver: list[float] = field(default_factory=list)
    long_bytes: list[int] = field(default_factory=list)
    long_rows: list[int] = field(default_factory=list)
    get_state_warm: list[float] = field(default_factory=list)
    get_state_fresh: list[float] = field(default_factory=list)
    deletes: list[float] = field(default_factory=list)
    phase1_seconds: float = 0.0
    _sql: dict[tuple[str, bool], Any] = field(default_factory=dict)

    def start(self) -> None:
        instrument(self.saver, self.clock)
        self.graph = chat_graph().compile(checkpointer=self.saver)

    def turn(self, thread_id: str, turn: int) -> tuple[float, float, dict[str, int]]:
        mark = self.clock.mark()
        t0 = time.perf_counter()
        self.graph.invoke(turn_input(turn), config_of(thread_id))
        took = time.perf_counter() - t0
        saver, counts = self.clock.since(mark)
        return took, saver, counts

    # rows and bytes, by group, of the whole database or of one thread
    def stored(self, thread_id: str | None = None) -> dict[str, tuple[int, int]]:
        if self.engine is None:
            return {}
        totals: dict[str, list[int]] = {}
        with self.engine.connect() as conn:
            for table, group, column in self.tables:
                rows, size = conn.execute(self._payload_sql(table, column, thread_id is not None),
                                          {"tid": thread_id}).one()
                total = totals.setdefault(group, [0, 0])
                total[0] += rows
                total[1] += int(size)
        return {group: (rows, size) for group, (rows, size) in totals.items()}

    def _payload_sql(self, table: str, column: str, by_thread: bool):
        key = (table, by_thread)
        if key not in self._sql:
            dialect = self.engine.dialect.name
            parts = [_payload_bytes(dialect, c["name"], c["type"]) for c in inspect(self.engine).get_columns(table)]
            sql = f'SELECT count(*), coalesce(sum({" + ".join(parts)}), 0) FROM "{table}"'
            if by_thread:
                sql += f' WHERE "{column}" = :tid'
            self._sql[key] = text(sql)
        return self._sql[key]


def _payload_bytes(dialect: str, name: str, type_: Any) -> str:
    """A column value's bytes as stored, before any compression the database applies: blobs
    and bytea their length, text and JSON as UTF-8 text, numbers and dates their width."""
    column = f'"{name}"'
    if dialect == "sqlite":
        if isinstance(type_, LargeBinary):
            return f"coalesce(length({column}), 0)"
        if isinstance(type_, (Integer, Float, Numeric, Boolean)):
            return f"(CASE WHEN {column} IS NULL THEN 0 ELSE 8 END)"
        return f"coalesce(length(CAST({column} AS BLOB)), 0)"
    if isinstance(type_, JSON):
        return f"coalesce(octet_length({column}::text), 0)"
    if isinstance(type_, LargeBinary) or type_.__class__.__name__ in ("TEXT", "VARCHAR", "String", "Text"):
        return f"coalesce(octet_length({column}), 0)"
    return f"coalesce(pg_column_size({column}), 0)"


def copy_rows(engine: Engine, tables: tuple[tuple[str, str, str], ...]) -> Callable[[str, str], None]:
    """Copy a thread's rows of the peer's tables under a new thread id (SQL, not timed)."""

    def copy(source: str, target: str) -> None:
        with engine.begin() as conn:
            for table, _, column in tables:
                names = [c["name"] for c in inspect(conn).get_columns(table)]
                columns = ", ".join(f'"{n}"' for n in names)
                values = ", ".join(":dst" if n == column else f'"{n}"' for n in names)
                conn.execute(text(f'INSERT INTO "{table}" ({columns}) SELECT {values} FROM "{table}" WHERE "{column}" = :src'),
                             {"src": source, "dst": target})

    return copy


def copy_memory(saver: InMemorySaver) -> Callable[[str, str], None]:
    """Copy a thread's entries of InMemorySaver's dicts under a new thread id (not timed)."""

    def copy(source: str, target: str) -> None:
        saver.storage[target] = copy_module.deepcopy(saver.storage[source])
        for store in (saver.writes, saver.blobs):
            for key in [k for k in store if k[0] == source]:
                store[(target, *key[1:])] = copy_module.deepcopy(store[key])

    return copy


def sqlite_disk(path: Path) -> Callable[[], int]:
    def size() -> int:
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        wal = path.with_name(path.name + "-wal")
        return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)

    return size


def pg_disk(url: str) -> Callable[[], int]:
    def size() -> int:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]

    return size


def counting_engine(url: str) -> Engine:
    return create_engine(sync_url(url))


@contextmanager
def open_sides(backends: list[str], tmp: Path, postgres_url: str | None) -> Iterator[list[Side]]:
    """chatkeep's saver and the peers on fresh storage; everything closed and dropped after."""
    with ExitStack() as stack:
        sides: list[Side] = []
        for backend in backends:
            if backend == "sqlite":
                ck_url = f"sqlite:///{tmp / 'chatkeep.db'}"
                peer_path = tmp / "peer.db"
            else:
                make_databases(postgres_url)
                stack.callback(drop_databases, postgres_url)
                server = make_url(postgres_url)
                ck_url, peer_url = (server.set(database=PG_DATABASES[side]).render_as_string(hide_password=False)
                                    for side in ("chatkeep", "peer"))
            settings = Settings(database_url=ck_url, log_level="WARNING", bootstrap_user=False)
            saver = stack.enter_context(ChatkeepSaver.from_conn_string(ck_url, settings=settings, user_id=OWNER))
            engine = counting_engine(ck_url)
            stack.callback(engine.dispose)
            name = "SQLite" if backend == "sqlite" else "PostgreSQL"
            sides.append(Side(
                key=f"chatkeep_{backend}", label=f"chatkeep ({name})", backend=backend, saver=saver, engine=engine,
                tables=CHATKEEP_TABLES,
                fresh_saver=lambda s=saver: ChatkeepSaver(s.engine, settings=s.settings, user_id=OWNER),
                copy_thread=saver.copy_thread,
                disk_bytes=sqlite_disk(tmp / "chatkeep.db") if backend == "sqlite" else pg_disk(ck_url),
            ))
            if backend == "sqlite":
                conn = sqlite3.connect(peer_path, check_same_thread=False)  # as its docs show
                stack.callback(conn.close)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # chatkeep's settings
                peer = SqliteSaver(conn)
                peer.setup()
                engine = counting_engine(f"sqlite:///{peer_path}")
                stack.callback(engine.dispose)
                sides.append(Side(
                    key="peer_sqlite", label="SqliteSaver", backend=backend, saver=peer, engine=engine,
                    tables=SQLITE_PEER_TABLES, fresh_saver=lambda c=conn: SqliteSaver(c),
                    copy_thread=copy_rows(engine, SQLITE_PEER_TABLES), disk_bytes=sqlite_disk(peer_path),
                ))
            else:
                peer = stack.enter_context(PostgresSaver.from_conn_string(peer_url))  # as its docs show
                peer.setup()
                engine = counting_engine(peer_url)
                stack.callback(engine.dispose)
                sides.append(Side(
                    key="peer_postgresql", label="PostgresSaver", backend=backend, saver=peer, engine=engine,
                    tables=PG_PEER_TABLES, fresh_saver=lambda p=peer: PostgresSaver(p.conn),
                    copy_thread=copy_rows(engine, PG_PEER_TABLES), disk_bytes=pg_disk(peer_url),
                ))
        memory = InMemorySaver()
        sides.append(Side(key="memory", label="InMemorySaver", backend="memory", saver=memory,
                          copy_thread=copy_memory(memory)))
        for side in sides:
            side.start()
        yield sides


def make_databases(postgres_url: str) -> None:
    drop_databases(postgres_url, create=True)


def drop_databases(postgres_url: str, *, create: bool = False) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for name in PG_DATABASES.values():
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if create:
                conn.execute(f'CREATE DATABASE "{name}"')


# --- the measurements --------------------------------------------------------------------------


def rotated(sides: list[Side], shift: int) -> list[Side]:
    shift %= len(sides)
    return sides[shift:] + sides[:shift]


def warm_up(sides: list[Side]) -> None:
    for side in sides:
        for turn in range(1, WARMUP_TURNS + 1):
            side.turn("warmup", turn)


def run_threads(sides: list[Side], threads: int, turns: int) -> None:
    """T threads × N turns per saver: round r is turn r of every thread, the savers taking the
    round in turn (the order rotating every round)."""
    before = {side.key: side.stored() for side in sides}
    disk = {side.key: side.disk_bytes() for side in sides if side.disk_bytes}
    for turn in range(1, turns + 1):
        for side in rotated(sides, turn):
            for t in range(threads):
                took, saver, counts = side.turn(f"chat-{t}", turn)
                side.latencies.append(took)
                side.saver_times.append(saver)
                side.phase1_seconds += took
                for name, n in counts.items():
                    side.calls[name] = side.calls.get(name, 0) + n
    for side in sides:
        after = side.stored()
        side.written = {group: (rows - before[side.key].get(group, (0, 0))[0], size - before[side.key].get(group, (0, 0))[1])
                        for group, (rows, size) in after.items()}
        if side.disk_bytes:
            side.disk_growth = side.disk_bytes() - disk[side.key]


def run_long_thread(sides: list[Side], turns: int) -> None:
    """One thread per saver grows turn by turn (the savers alternating every turn); its rows and
    bytes are counted after every turn (not timed)."""
    stored = {side.key: 0 for side in sides}
    rows = {side.key: 0 for side in sides}
    for turn in range(1, turns + 1):
        for side in rotated(sides, turn):
            took, saver, _ = side.turn("long", turn)
            side.long_latency.append(took)
            side.long_saver.append(saver)
            now = side.stored("long")
            size = sum(b for _, b in now.values())
            count = sum(r for r, _ in now.values())
            side.long_bytes.append(size - stored[side.key])
            side.long_rows.append(count - rows[side.key])
            stored[side.key], rows[side.key] = size, count


def run_reads(sides: list[Side], reads: int) -> None:
    """get_state of the long thread: on the saver that wrote it, and on a new saver instance of
    the same storage (nothing cached: a new one for every read, made untimed), alternating."""
    for round_ in range(reads + 1):
        for side in rotated(sides, round_):
            fresh = chat_graph().compile(checkpointer=side.fresh_saver()) if side.fresh_saver else None
            warm = clock(lambda: side.graph.get_state(config_of("long")))
            cold = clock(lambda: fresh.get_state(config_of("long"))) if fresh is not None else None
            if round_:  # the first round warms up
                side.get_state_warm.append(warm)
                if cold is not None:
                    side.get_state_fresh.append(cold)


def run_deletes(sides: list[Side], copies: int) -> None:
    """delete_thread of copies of the long thread (made untimed), then of the long thread."""
    for side in sides:
        for i in range(copies):
            side.copy_thread("long", f"long-copy-{i}")
    for i in range(copies):
        for side in rotated(sides, i):
            side.deletes.append(clock(lambda: side.saver.delete_thread(f"long-copy-{i}")))
    for side in sides:
        side.deletes.append(clock(lambda: side.saver.delete_thread("long")))
        assert side.graph.get_state(config_of("long")).values == {}


def clock(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --- the report --------------------------------------------------------------------------------


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18] if len(samples) > 1 else samples[0]


def at(samples: list[float], turn: int) -> float | None:
    """The median of turns turn-4..turn (1-based), None beyond the thread."""
    if turn > len(samples):
        return None
    return statistics.median(samples[max(0, turn - WINDOW):turn])


@dataclass
class Row:
    label: str
    values: dict[str, float | None]
    fmt: Callable[[float], str]
    better: str  # "higher" or "lower": which way a ratio favours chatkeep
    cells: dict[str, str] | None = None  # preformatted cells, overriding fmt


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.2f}"


def kib(size: float) -> str:
    return f"{size / 1024:,.1f}"


def build_rows(sides: list[Side], args: argparse.Namespace) -> list[Row]:
    turns_total = args.threads * args.turns
    rows = [
        Row(f"turns/s ({args.threads} threads × {args.turns} turns)",
            {s.key: turns_total / s.phase1_seconds for s in sides}, lambda v: f"{v:,.0f}", "higher"),
        Row("per-turn latency p50, ms", {s.key: p50(s.latencies) for s in sides}, ms, "lower"),
        Row("per-turn latency p95, ms", {s.key: p95(s.latencies) for s in sides}, ms, "lower"),
        Row("saver's own time per turn, mean ms", {s.key: statistics.fmean(s.saver_times) for s in sides}, ms, "lower"),
    ]
    calls = Row("saver calls per turn (put / put_writes / get_tuple)", {}, str, "none", cells={})
    for s in sides:
        calls.cells[s.key] = " / ".join(f"{s.calls.get(n, 0) / turns_total:.1f}" for n in SAVER_METHODS)
    rows.append(calls)
    stored = [s for s in sides if s.written]
    rows += [
        Row("rows written per turn (checkpoint tables)",
            {s.key: s.written["checkpoints"][0] / turns_total for s in stored}, lambda v: f"{v:,.1f}", "lower"),
        Row("bytes written per turn, KiB (checkpoint tables)",
            {s.key: s.written["checkpoints"][1] / turns_total for s in stored}, kib, "lower"),
        Row("rows / KiB per turn, session mirror (chatkeep only)", {}, str, "none",
            cells={s.key: f"{s.written['mirror'][0] / turns_total:,.1f} / {kib(s.written['mirror'][1] / turns_total)}"
                   for s in stored if "mirror" in s.written}),
        Row("bytes written per turn, KiB (all tables)",
            {s.key: sum(b for _, b in s.written.values()) / turns_total for s in stored}, kib, "lower"),
        Row("database growth per turn, KiB (on disk)",
            {s.key: s.disk_growth / turns_total for s in sides if s.disk_growth is not None}, kib, "lower"),
    ]
    long_turns = args.long_turns
    for k in [k for k in AT_TURNS if k <= long_turns] + ([long_turns] if long_turns not in AT_TURNS else []):
        rows.append(Row(f"long thread, turn {k}: latency, ms", {s.key: at(s.long_latency, k) for s in sides}, ms, "lower"))
    for k in [k for k in AT_TURNS if k <= long_turns]:
        rows.append(Row(f"long thread, turn {k}: saver's own time, ms", {s.key: at(s.long_saver, k) for s in sides}, ms,
                        "lower"))
    for k in [k for k in AT_TURNS if k <= long_turns]:
        rows.append(Row(f"long thread, turn {k}: KiB written", {s.key: s.long_bytes[k - 1] for s in sides if s.engine},
                        kib, "lower"))
    for k in [k for k in AT_TURNS if k <= long_turns]:
        rows.append(Row(f"long thread, turns {k - WINDOW + 1}–{k}: KiB written per turn, mean",
                        {s.key: statistics.fmean(s.long_bytes[k - WINDOW:k]) for s in sides if s.engine}, kib, "lower"))
    rows += [
        Row(f"get_state, {long_turns}-turn thread: p50 ms", {s.key: p50(s.get_state_warm) for s in sides}, ms, "lower"),
        Row(f"get_state, {long_turns}-turn thread, new saver instance: p50 ms",
            {s.key: p50(s.get_state_fresh) for s in sides if s.get_state_fresh}, ms, "lower"),
        Row(f"delete_thread, {long_turns}-turn thread: p50 ms (n={args.deletes + 1})",
            {s.key: p50(s.deletes) for s in sides}, ms, "lower"),
        Row(f"delete_thread, {long_turns}-turn thread: max ms", {s.key: max(s.deletes) for s in sides}, ms, "lower"),
    ]
    return rows


def ratio(row: Row, ck: str, other: str) -> str:
    a, b = row.values.get(ck), row.values.get(other)
    if row.better == "none" or a is None or b is None or a == 0 or b == 0:
        return "—"
    value = a / b if row.better == "higher" else b / a
    return f"{value:,.2f}×"


def print_report(console: Console, sides: list[Side], args: argparse.Namespace) -> dict[str, list[tuple[str, float, str, bool]]]:
    rows = build_rows(sides, args)
    by_key = {s.key: s for s in sides}
    verdicts: dict[str, list[tuple[str, float, str, bool]]] = {}
    for backend in [b for b in ("sqlite", "postgresql") if f"chatkeep_{b}" in by_key]:
        ck, peer, memory = f"chatkeep_{backend}", f"peer_{backend}", "memory"
        columns = [k for k in (ck, peer, memory) if k in by_key]
        table = Table(title=f"{backend}: chatkeep vs {by_key[peer].label} vs InMemorySaver (sync savers, graph.invoke)")
        table.add_column("measure", no_wrap=True)
        for key in columns:
            table.add_column(by_key[key].label, justify="right")
        table.add_column(f"× vs {by_key[peer].label}", justify="right")
        table.add_column("× vs InMemorySaver", justify="right")
        for row in rows:
            cells = []
            for key in columns:
                if row.cells is not None:
                    cells.append(row.cells.get(key, "—"))
                else:
                    value = row.values.get(key)
                    cells.append("—" if value is None else row.fmt(value))
            table.add_row(row.label, *cells, ratio(row, ck, peer), ratio(row, ck, memory))
        console.print(table)
        console.print(
            "  ×: how many times better chatkeep is (its turns/s ÷ the other's; the other's time or bytes ÷ chatkeep's).\n"
            f"  long thread, turn k: latency and saver time are the median of turns k-{WINDOW - 1}..k; "
            "KiB written is that turn's alone.\n"
            "  bytes: payload as stored (blob/bytea lengths, text and JSON as UTF-8), before compression; rows and\n"
            "  bytes are counted in the tables after minus before. chatkeep's session mirror (the thread's session,\n"
            "  its messages, and which LangChain message each mirrors) is counted in 'all tables'."
        )
        verdicts[backend] = targets(by_key[ck], by_key[peer], by_key[memory], args)
        for label, value, target, ok in verdicts[backend]:
            verdict = f"(target {target}) " + ("[green]met[/]" if ok else "[red]NOT met[/]")
            console.print(f"  {label}: {value:,.2f} {verdict}")
        console.print()
    return verdicts


def targets(ck: Side, peer: Side, memory: Side, args: argparse.Namespace) -> list[tuple[str, float, str, bool]]:
    """The issue's targets, for one backend."""
    total = args.threads * args.turns
    rate = {s.key: total / s.phase1_seconds for s in (ck, peer, memory)}
    factor = 1.5 if ck.backend == "sqlite" else 2.0
    ck_bytes = sum(b for _, b in ck.written.values()) / total
    peer_bytes = sum(b for _, b in peer.written.values()) / total
    out = [
        (f"turns/s ÷ {peer.label}", rate[ck.key] / rate[peer.key], f"≥ {factor}×", rate[ck.key] / rate[peer.key] >= factor),
        ("turns/s ÷ InMemorySaver", rate[ck.key] / rate[memory.key], "≥ 0.8×", rate[ck.key] / rate[memory.key] >= 0.8),
        (f"{peer.label} bytes per turn ÷ chatkeep's (all tables, {args.turns}-turn threads)", peer_bytes / ck_bytes, "≥ 10×",
         peer_bytes / ck_bytes >= 10),
    ]
    last = max(k for k in AT_TURNS if k <= args.long_turns) if args.long_turns >= 10 else None
    if last and last > 10:
        saver_growth = at(ck.long_saver, last) / at(ck.long_saver, 10)
        out.append((f"saver's own time at turn {last} ÷ at turn 10", saver_growth, "≤ 1.3", saver_growth <= 1.3))
        window = lambda k: statistics.fmean(ck.long_bytes[k - WINDOW:k])  # noqa: E731
        bytes_growth = window(last) / window(10)
        out.append((f"bytes per turn at turn {last} ÷ at turn 10 (5-turn means)", bytes_growth, "≤ 1.3",
                    bytes_growth <= 1.3))
    worst = max(ck.deletes) * 1000
    out.append((f"delete_thread at {args.long_turns} turns, slowest of {len(ck.deletes)}, ms", worst, "≤ 20 ms",
                worst <= 20))
    return out


# --- main --------------------------------------------------------------------------------------




PEER_PACKAGES = ("langgraph", "langgraph-checkpoint-sqlite", "langgraph-checkpoint-postgres")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8, help="threads (conversations) per saver (default 8)")
    parser.add_argument("--turns", type=int, default=50, help="turns per thread (default 50)")
    parser.add_argument("--long-turns", type=int, default=200, help="turns of the long thread (default 200)")
    parser.add_argument("--reads", type=int, default=20, help="timed get_state calls per saver (default 20)")
    parser.add_argument("--deletes", type=int, default=3, help="copies of the long thread deleted (default 3)")
    add_backend_arguments(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    console = Console(width=170)
    backends = chosen_backends(args, console)
    console.print(f"checkpoint benchmark: {machine_line(args.postgres_url if 'postgresql' in backends else None, PEER_PACKAGES)}")
    console.print(f"{args.threads} threads × {args.turns} turns, a {args.long_turns}-turn thread, "
                  f"{args.reads} get_state, {args.deletes + 1} delete_thread per saver")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ck-bench-cp-") as tmp, open_sides(backends, Path(tmp), args.postgres_url) as sides:
        console.print(f"[dim]savers: {', '.join(s.label for s in sides)}[/]")
        warm_up(sides)
        console.print("[dim]threads × turns…[/]")
        run_threads(sides, args.threads, args.turns)
        console.print(f"[dim]the {args.long_turns}-turn thread…[/]")
        run_long_thread(sides, args.long_turns)
        console.print("[dim]get_state, delete_thread…[/]")
        run_reads(sides, args.reads)
        run_deletes(sides, args.deletes)
        print_report(console, sides, args)
    console.print(f"run time: {time.perf_counter() - started:,.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
