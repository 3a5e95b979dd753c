"""SQL for LangGraph checkpoints: every statement is a named constant, every function takes a
sync `Connection` inside the caller's transaction (the async saver reaches them through
`AsyncConnection.run_sync`). Nothing here serialises or knows LangGraph.

The statements of every turn (a put, a put_writes, reading the latest checkpoint) are `Hot`: built
with SQLAlchemy like the others, compiled once per dialect, and run on the DBAPI cursor of the
caller's connection (same transaction), with plain values (str, int, bytes, None; JSON already
dumped). SQLAlchemy's per-execution work costs more than the statement itself on SQLite, and
about as much as the round trip on PostgreSQL.
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    LargeBinary,
    Row,
    String,
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal,
    select,
    true,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg

from chatkeep.db.base import JSONType, UTCDateTime
from chatkeep.db.tables import (
    CheckpointBlobRow,
    CheckpointMessageRow,
    CheckpointRow,
    CheckpointTombstoneRow,
    CheckpointWriteRow,
)

CP = CheckpointRow.__table__
BL = CheckpointBlobRow.__table__
WR = CheckpointWriteRow.__table__
MM = CheckpointMessageRow.__table__
TS = CheckpointTombstoneRow.__table__

# Every table keyed by thread id (what a thread, and a hard-deleted session, owns).
THREAD_TABLES = (WR, BL, CP, MM)

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def _per_dialect(build) -> dict[str, Any]:
    """One prebuilt statement per dialect (upserts are spelled differently)."""
    return {name: build(insert) for name, insert in _INSERTS.items()}


# Dialects the hot statements are compiled for: named parameters (`:name` for sqlite3 and
# aiosqlite, `%(name)s` for psycopg, sync or async).
_HOT_DIALECTS = {"sqlite": sqlite.dialect(paramstyle="named"), "postgresql": pg_psycopg.dialect()}


class Hot:
    """A statement per dialect, compiled once, run on the DBAPI cursor (see the module doc)."""

    def __init__(self, statements: dict[str, Any]) -> None:
        self.statements = statements
        self._compiled: dict[str, tuple[str, dict[str, Any]]] = {}

    def sql(self, dialect: str) -> tuple[str, dict[str, Any]]:
        """The SQL text, and the values of the binds SQLAlchemy made itself (LIMIT 1)."""
        compiled = self._compiled.get(dialect)
        if compiled is None:
            built = self.statements[dialect].compile(dialect=_HOT_DIALECTS[dialect])
            defaults = {
                name: bind.value for bind, name in built.bind_names.items() if not bind.required and bind.value is not None
            }
            compiled = self._compiled[dialect] = (built.string, defaults)
        return compiled


@contextmanager
def autocommit(conn: Connection) -> Iterator[None]:
    """Statements on the DBAPI cursor of `conn` (a Connection with no transaction begun) commit
    one by one: no BEGIN/COMMIT around a single statement, which is atomic by itself. SQLite's
    connections already run so (chatkeep issues BEGIN itself); psycopg's are switched for the
    while (a local setting, no round trip)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    dbapi = conn.connection.dbapi_connection
    dbapi.autocommit = True
    try:
        yield
    finally:
        dbapi.autocommit = False


def _run(conn: Connection, hot: Hot, params: dict[str, Any]) -> Any:
    sql, defaults = hot.sql(conn.dialect.name)
    cursor = conn.connection.cursor()
    cursor.execute(sql, {**defaults, **params} if defaults else params)
    return cursor


def _run_many(conn: Connection, hot: Hot, rows: list[dict[str, Any]]) -> int:
    sql, _ = hot.sql(conn.dialect.name)
    cursor = conn.connection.cursor()
    if len(rows) == 1:
        cursor.execute(sql, rows[0])
    else:
        cursor.executemany(sql, rows)
    count = cursor.rowcount
    cursor.close()
    return count


def _json(value: Any) -> str | None:
    """What SQLAlchemy's JSON type binds (json.dumps), for the hot statements."""
    return None if value is None else json.dumps(value)


def _unjson(value: Any) -> Any:
    """JSON as read by the hot statements: text on SQLite, already decoded by psycopg."""
    return json.loads(value) if isinstance(value, str) else value


# --- put -------------------------------------------------------------------------------------

TOMBSTONE = select(TS.c.watermark).where(TS.c.thread_id == bindparam("tid"))
CHECKPOINT_EXISTS = select(CP.c.checkpoint_id).where(
    CP.c.thread_id == bindparam("tid"), CP.c.checkpoint_ns == bindparam("ns"), CP.c.checkpoint_id == bindparam("cid")
)


def _upsert_checkpoint(insert):
    statement = insert(CP)
    return statement.on_conflict_do_update(
        index_elements=[CP.c.thread_id, CP.c.checkpoint_ns, CP.c.checkpoint_id],
        set_={
            "type": statement.excluded.type,
            "checkpoint": statement.excluded.checkpoint,
            "versions": statement.excluded.versions,
            "metadata": statement.excluded.metadata,
            "run_id": statement.excluded.run_id,
        },
    )


UPSERT_CHECKPOINT = _per_dialect(_upsert_checkpoint)
# A channel version is stored once: the first write of a (thread, ns, channel, version) wins.
INSERT_BLOB = _per_dialect(lambda insert: insert(BL).on_conflict_do_nothing())


def _insert_delta(insert):
    """A tail stored against its base version, only if that base is stored (depth = base + 1)."""
    base = BL.alias("base")
    source = select(
        bindparam("thread_id", type_=String()),
        bindparam("checkpoint_ns", type_=String()),
        bindparam("channel", type_=String()),
        bindparam("version", type_=String()),
        bindparam("type", type_=String()),
        bindparam("blob", type_=LargeBinary()),
        base.c.version,
        base.c.depth + literal(1, Integer()),
    ).where(
        base.c.thread_id == bindparam("thread_id"),
        base.c.checkpoint_ns == bindparam("checkpoint_ns"),
        base.c.channel == bindparam("channel"),
        base.c.version == bindparam("base_version"),
    )
    columns = ["thread_id", "checkpoint_ns", "channel", "version", "type", "blob", "base_version", "depth"]
    return insert(BL).from_select(columns, source).on_conflict_do_nothing().returning(BL.c.version)


INSERT_DELTA_BLOB = _per_dialect(_insert_delta)
RELEASE_MESSAGES = delete(MM).where(MM.c.thread_id == bindparam("tid"), MM.c.lc_id.in_(bindparam("ids", expanding=True)))


# The hot path of a put and a put_writes: each statement checks the thread has no tombstone
# itself (no statement of its own for that).
_ALIVE = ~exists().where(TS.c.thread_id == bindparam("thread_id", type_=String()))
_CHECKPOINT_INSERT = ("thread_id", "checkpoint_ns", "checkpoint_id", "parent_checkpoint_id", "run_id", "type",
                      "checkpoint", "versions", "metadata")


# ... and, for a put with one tail blob, that the tail's base is stored (the tail then goes in
# with the other blobs, no statement of its own either).
_BASE_STORED = exists().where(
    BL.c.thread_id == bindparam("thread_id", type_=String()),
    BL.c.checkpoint_ns == bindparam("checkpoint_ns", type_=String()),
    BL.c.channel == bindparam("base_channel", type_=String()),
    BL.c.version == bindparam("base_version", type_=String()),
)


def _upsert_checkpoint_if_alive(insert, with_base: bool = False):
    """The checkpoint row, unless the thread has a tombstone (or, `with_base`, the base of the
    put's tail is not stored); returns its id when stored."""
    types = {"checkpoint": LargeBinary(), "versions": JSONType, "metadata": JSONType}
    conditions = [_ALIVE, _BASE_STORED] if with_base else [_ALIVE]
    source = select(*(bindparam(name, type_=types.get(name, String())) for name in _CHECKPOINT_INSERT)).where(
        *conditions
    )
    statement = insert(CP).from_select(list(_CHECKPOINT_INSERT), source)
    return statement.on_conflict_do_update(
        index_elements=[CP.c.thread_id, CP.c.checkpoint_ns, CP.c.checkpoint_id],
        set_={name: statement.excluded[name] for name in ("type", "checkpoint", "versions", "metadata", "run_id")},
    ).returning(CP.c.checkpoint_id)


HOT_UPSERT_CHECKPOINT_IF_ALIVE = Hot(_per_dialect(_upsert_checkpoint_if_alive))
HOT_UPSERT_CHECKPOINT_IF_ALIVE_AND_BASE = Hot(
    _per_dialect(lambda insert: _upsert_checkpoint_if_alive(insert, with_base=True))
)
HOT_INSERT_BLOB = Hot(INSERT_BLOB)
HOT_INSERT_DELTA_BLOB = Hot(INSERT_DELTA_BLOB)
_WRITE_INSERT = ("thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx", "channel", "type", "blob", "task_path")


def _insert_writes_if_alive(insert, special: bool):
    """Writes, unless the thread was deleted after their checkpoint was made (its tombstone's
    watermark is later than the checkpoint id). Ordinary writes: the first writer of (task, idx)
    wins. Special writes (negative idx: errors, interrupts, resumes) replace what was there."""
    types = {"idx": Integer(), "blob": LargeBinary()}
    dead = exists().where(
        TS.c.thread_id == bindparam("thread_id", type_=String()),
        TS.c.watermark > bindparam("checkpoint_id", type_=String()),
    )
    source = select(*(bindparam(name, type_=types.get(name, String())) for name in _WRITE_INSERT)).where(~dead)
    statement = insert(WR).from_select(list(_WRITE_INSERT), source)
    if not special:
        return statement.on_conflict_do_nothing()
    return statement.on_conflict_do_update(
        index_elements=[WR.c.thread_id, WR.c.checkpoint_ns, WR.c.checkpoint_id, WR.c.task_id, WR.c.idx],
        set_={name: statement.excluded[name] for name in ("channel", "type", "blob", "task_path")},
    )


HOT_INSERT_WRITES_IF_ALIVE = Hot(_per_dialect(lambda insert: _insert_writes_if_alive(insert, special=False)))
HOT_UPSERT_WRITES_IF_ALIVE = Hot(_per_dialect(lambda insert: _insert_writes_if_alive(insert, special=True)))
# Claims of n messages in one statement (n small: prebuilt up to _CLAIM_PREBUILT, chunks of _CLAIM_CHUNK).
_CLAIM_PREBUILT = 16
_CLAIM_CHUNK = 500
_claims: dict[int, Hot] = {}


def _claim_statement(n: int) -> Hot:
    hot = _claims.get(n)
    if hot is None:
        rows = [
            {"thread_id": bindparam("tid", type_=String()), "lc_id": bindparam(f"lc{i}", type_=String()),
             "message_id": bindparam(f"mid{i}", type_=String())}
            for i in range(n)
        ]
        hot = Hot(_per_dialect(lambda insert: insert(MM).values(rows).on_conflict_do_nothing().returning(MM.c.lc_id)))
        if n <= _CLAIM_PREBUILT:
            _claims[n] = hot
    return hot


def upsert_checkpoint_if_alive(conn: Connection, row: dict[str, Any], base: tuple[str, str] | None = None) -> bool:
    """Store the checkpoint row unless the thread has a tombstone, or `base` (channel, version)
    is given and not stored (then nothing is written)."""
    params = {**row, "versions": _json(row["versions"]), "metadata": _json(row["metadata"])}
    if base is not None:
        params["base_channel"], params["base_version"] = base
    cursor = _run(conn, HOT_UPSERT_CHECKPOINT_IF_ALIVE if base is None else HOT_UPSERT_CHECKPOINT_IF_ALIVE_AND_BASE, params)
    stored = cursor.fetchall()
    cursor.close()
    return bool(stored)


def insert_writes_if_alive(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Store writes unless the thread was deleted after their checkpoint was made; returns the
    rows inserted or replaced (fewer: dropped, or an ordinary write already there)."""
    ordinary = [row for row in rows if row["idx"] >= 0]
    special = [row for row in rows if row["idx"] < 0]
    stored = 0
    if ordinary:
        stored += _run_many(conn, HOT_INSERT_WRITES_IF_ALIVE, ordinary)
    if special:
        stored += _run_many(conn, HOT_UPSERT_WRITES_IF_ALIVE, special)
    return stored


def tombstone(conn: Connection, thread_id: str) -> str | None:
    """The watermark of a deleted thread, or None."""
    return conn.execute(TOMBSTONE, {"tid": thread_id}).scalar_one_or_none()


def checkpoint_exists(conn: Connection, thread_id: str, ns: str, checkpoint_id: str) -> bool:
    return conn.execute(CHECKPOINT_EXISTS, {"tid": thread_id, "ns": ns, "cid": checkpoint_id}).first() is not None


def insert_blobs(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        _run_many(conn, HOT_INSERT_BLOB, rows)


def insert_delta_blob(conn: Connection, row: dict[str, Any]) -> bool:
    """False when the base version is not stored (pruned, or another branch's)."""
    cursor = _run(conn, HOT_INSERT_DELTA_BLOB, row)
    stored = cursor.fetchall()
    cursor.close()
    return bool(stored)


def upsert_checkpoint(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(UPSERT_CHECKPOINT[conn.dialect.name], row)


def claim_messages(conn: Connection, thread_id: str, claims: list[tuple[str, str | None]]) -> set[str]:
    """Record (LangChain id, session message id) pairs; returns the LangChain ids that were new."""
    new: set[str] = set()
    for start in range(0, len(claims), _CLAIM_CHUNK):
        chunk = claims[start : start + _CLAIM_CHUNK]
        params: dict[str, Any] = {"tid": thread_id}
        for i, (lc_id, mid) in enumerate(chunk):
            params[f"lc{i}"], params[f"mid{i}"] = lc_id, mid
        cursor = _run(conn, _claim_statement(len(chunk)), params)
        new.update(row[0] for row in cursor.fetchall())
        cursor.close()
    return new


def release_messages(conn: Connection, thread_id: str, lc_ids: Iterable[str]) -> None:
    conn.execute(RELEASE_MESSAGES, {"tid": thread_id, "ids": list(lc_ids)})


# --- get and list ----------------------------------------------------------------------------

CHECKPOINT_COLUMNS = (
    CP.c.thread_id,
    CP.c.checkpoint_ns,
    CP.c.checkpoint_id,
    CP.c.parent_checkpoint_id,
    CP.c.type,
    CP.c.checkpoint,
    CP.c.versions,
    CP.c.metadata,
)
WRITE_COLUMNS = (WR.c.checkpoint_id, WR.c.task_id, WR.c.idx, WR.c.channel, WR.c.type, WR.c.blob, WR.c.task_path)
WRITES_OF = select(*WRITE_COLUMNS).where(
    WR.c.thread_id == bindparam("tid"),
    WR.c.checkpoint_ns == bindparam("ns"),
    WR.c.checkpoint_id.in_(bindparam("cids", expanding=True)),
)


CheckpointRecord = namedtuple(
    "CheckpointRecord",
    "thread_id checkpoint_ns checkpoint_id parent_checkpoint_id type checkpoint versions metadata",
)
WriteRecord = namedtuple("WriteRecord", "checkpoint_id task_id idx channel type blob task_path")


def _checkpoint_with_writes(latest: bool):
    """One checkpoint (the latest, or by id) joined to its writes: a row per write, or one row
    with no write."""
    query = select(*CHECKPOINT_COLUMNS).where(CP.c.thread_id == bindparam("tid"), CP.c.checkpoint_ns == bindparam("ns"))
    if latest:
        query = query.order_by(CP.c.checkpoint_id.desc()).limit(1)
    else:
        query = query.where(CP.c.checkpoint_id == bindparam("cid"))
    cp = query.subquery("cp")
    on = and_(WR.c.thread_id == cp.c.thread_id, WR.c.checkpoint_ns == cp.c.checkpoint_ns,
              WR.c.checkpoint_id == cp.c.checkpoint_id)
    return select(
        cp, WR.c.task_id, WR.c.idx, WR.c.channel, WR.c.type.label("write_type"), WR.c.blob, WR.c.task_path
    ).select_from(cp.outerjoin(WR, on))


HOT_LATEST_WITH_WRITES = Hot(dict.fromkeys(_INSERTS, _checkpoint_with_writes(latest=True)))
HOT_CHECKPOINT_WITH_WRITES = Hot(dict.fromkeys(_INSERTS, _checkpoint_with_writes(latest=False)))


def checkpoint_with_writes(
    conn: Connection, thread_id: str, ns: str, checkpoint_id: str | None
) -> tuple[CheckpointRecord, list[WriteRecord]] | None:
    """The checkpoint (the latest without an id) and its writes, in one statement."""
    if checkpoint_id:
        cursor = _run(conn, HOT_CHECKPOINT_WITH_WRITES, {"tid": thread_id, "ns": ns, "cid": checkpoint_id})
    else:
        cursor = _run(conn, HOT_LATEST_WITH_WRITES, {"tid": thread_id, "ns": ns})
    rows = cursor.fetchall()
    cursor.close()
    if not rows:
        return None
    first = rows[0]
    row = CheckpointRecord(*first[:6], _unjson(first[6]), _unjson(first[7]))
    writes = [
        WriteRecord(row.checkpoint_id, task_id, idx, channel, type_, blob, task_path)
        for *_, task_id, idx, channel, type_, blob, task_path in rows
        if task_id is not None
    ]
    return row, writes


def _blob_chains(by_key: bool = False):
    """The blobs of the given (channel, version) keys of one thread namespace, and every base
    they extend, each row once: one recursive walk over keys, then one join for the bytes."""
    keys = (
        select(BL.c.channel, BL.c.version)
        .where(
            BL.c.thread_id == bindparam("tid"),
            BL.c.checkpoint_ns == bindparam("ns"),
            # The two IN lists let SQLite look the keys up in the primary key (a row-value IN
            # alone scans every blob of the thread).
            BL.c.channel.in_(bindparam("channels", expanding=True)),
            BL.c.version.in_(bindparam("versions", expanding=True)),
            tuple_(BL.c.channel, BL.c.version).in_(bindparam("keys", expanding=True)),
        )
        .cte("chain", recursive=True)
    )
    link = BL.alias("link")
    columns = (BL.c.channel, BL.c.version, BL.c.type, BL.c.blob, BL.c.base_version, BL.c.depth)
    if not by_key:
        keys = keys.union(
            select(link.c.channel, link.c.base_version)
            .join_from(link, keys, and_(link.c.channel == keys.c.channel, link.c.version == keys.c.version))
            .where(
                link.c.thread_id == bindparam("tid"),
                link.c.checkpoint_ns == bindparam("ns"),
                link.c.base_version.is_not(None),
            )
        )
        return select(*columns).join_from(
            BL, keys, and_(BL.c.channel == keys.c.channel, BL.c.version == keys.c.version)
        ).where(BL.c.thread_id == bindparam("tid"), BL.c.checkpoint_ns == bindparam("ns"))
    # PostgreSQL: every step a primary-key lookup (LATERAL ... LIMIT 1), whatever the planner's
    # statistics say (fresh tables look empty to it, and it would scan the thread's blobs at
    # every step of the walk).
    step = (
        select(link.c.channel, link.c.base_version)
        .where(
            link.c.thread_id == bindparam("tid"),
            link.c.checkpoint_ns == bindparam("ns"),
            link.c.channel == keys.c.channel,
            link.c.version == keys.c.version,
            link.c.base_version.is_not(None),
        )
        .limit(1)  # (keeps the planner from flattening it into a join)
        .lateral("step")
    )
    keys = keys.union(select(step.c.channel, step.c.base_version).select_from(keys).join(step, true()))
    row = (
        select(*columns)
        .where(
            BL.c.thread_id == bindparam("tid"),
            BL.c.checkpoint_ns == bindparam("ns"),
            BL.c.channel == keys.c.channel,
            BL.c.version == keys.c.version,
        )
        .limit(1)
        .lateral("row")
    )
    return select(*row.c).select_from(keys).join(row, true())


BLOB_CHAINS = {"sqlite": _blob_chains(), "postgresql": _blob_chains(by_key=True)}


def _metadata_matches(dialect: str, filter: dict[str, Any]) -> list[Any]:
    """Conditions for `list(filter=...)`: every key equals its value (JSON containment on
    PostgreSQL; on SQLite both sides go through json_extract, so types compare as JSON does)."""
    if not filter:
        return []
    if dialect == "postgresql":
        return [type_coerce(CP.c.metadata, JSONB).contains(filter)]
    conditions = []
    for key, value in filter.items():
        path = '$."' + str(key).replace('"', '\\"') + '"'
        wanted = func.json_extract(literal({key: value}, CP.c.metadata.type), literal(path))
        conditions.append(func.json_extract(CP.c.metadata, literal(path)).op("IS")(wanted))
    return conditions


def list_checkpoints(
    conn: Connection,
    *,
    thread_id: str | None,
    ns: str | None,
    checkpoint_id: str | None,
    filter: dict[str, Any] | None,
    before: str | None,
    limit: int | None,
) -> list[Row]:
    """Newest first."""
    query = select(*CHECKPOINT_COLUMNS)
    if thread_id is not None:
        query = query.where(CP.c.thread_id == thread_id)
    if ns is not None:
        query = query.where(CP.c.checkpoint_ns == ns)
    if checkpoint_id:
        query = query.where(CP.c.checkpoint_id == checkpoint_id)
    if before:
        query = query.where(CP.c.checkpoint_id < before)
    query = query.where(*_metadata_matches(conn.dialect.name, filter or {}))
    query = query.order_by(CP.c.checkpoint_id.desc(), CP.c.thread_id, CP.c.checkpoint_ns)
    if limit is not None:
        query = query.limit(max(int(limit), 0))
    return list(conn.execute(query))


def writes_of(conn: Connection, thread_id: str, ns: str, checkpoint_ids: Sequence[str]) -> list[Row]:
    if not checkpoint_ids:
        return []
    return list(conn.execute(WRITES_OF, {"tid": thread_id, "ns": ns, "cids": list(checkpoint_ids)}))


def blob_chains(conn: Connection, thread_id: str, ns: str, keys: Iterable[tuple[str, str]]) -> list[Row]:
    keys = list(keys)
    if not keys:
        return []
    params = {
        "tid": thread_id,
        "ns": ns,
        "keys": keys,
        "channels": sorted({c for c, _ in keys}),
        "versions": sorted({v for _, v in keys}),
    }
    return list(conn.execute(BLOB_CHAINS[conn.dialect.name], params))


# --- delete, copy ----------------------------------------------------------------------------

DELETE_THREAD_ROWS = tuple(delete(table).where(table.c.thread_id == bindparam("tid")) for table in THREAD_TABLES)
DELETE_TOMBSTONE = delete(TS).where(TS.c.thread_id == bindparam("tid"))
INSERT_TOMBSTONE = _per_dialect(
    lambda insert: (statement := insert(TS)).on_conflict_do_update(
        index_elements=[TS.c.thread_id],
        set_={"deleted_at": statement.excluded.deleted_at, "watermark": statement.excluded.watermark},
    )
)
EXPIRE_TOMBSTONES = delete(TS).where(TS.c.deleted_at < bindparam("before", type_=UTCDateTime()))


def forget_thread(conn: Connection, thread_id: str) -> int:
    """Delete every checkpoint row of a thread (all namespaces); returns how many checkpoints."""
    deleted = 0
    for statement in DELETE_THREAD_ROWS:
        result = conn.execute(statement, {"tid": thread_id})
        if statement.table is CP:
            deleted = result.rowcount
    return deleted


def bury_thread(conn: Connection, thread_id: str, watermark: str, now: datetime, expire_before: datetime) -> None:
    """Leave a tombstone for a deleted thread (and drop tombstones older than `expire_before`)."""
    conn.execute(EXPIRE_TOMBSTONES, {"before": expire_before})
    conn.execute(INSERT_TOMBSTONE[conn.dialect.name], {"thread_id": thread_id, "deleted_at": now, "watermark": watermark})


def _copy(table, insert, key: str):
    columns = [c for c in table.c if c.name != key]
    source = select(bindparam("dst", type_=String()).label(key), *columns).where(table.c[key] == bindparam("src"))
    return insert(table).from_select([key, *(c.name for c in columns)], source).on_conflict_do_nothing()


COPY_THREAD = _per_dialect(lambda insert: tuple(_copy(table, insert, "thread_id") for table in (CP, BL, WR)))


def copy_thread(conn: Connection, source: str, target: str) -> None:
    """Copy every checkpoint, blob and write of `source` to `target` (rows already there win)."""
    for statement in COPY_THREAD[conn.dialect.name]:
        conn.execute(statement, {"src": source, "dst": target})


# --- delete_for_runs and retention -----------------------------------------------------------

CHECKPOINTS_OF_RUNS = select(CP.c.thread_id, CP.c.checkpoint_ns, CP.c.checkpoint_id).where(
    CP.c.run_id.in_(bindparam("runs", expanding=True))
)
NAMESPACE_CHECKPOINTS = (
    select(CP.c.checkpoint_id, CP.c.parent_checkpoint_id, CP.c.versions, CP.c.metadata)
    .where(CP.c.thread_id == bindparam("tid"), CP.c.checkpoint_ns == bindparam("ns"))
    .order_by(CP.c.checkpoint_id.desc())
)
THREAD_NAMESPACES = select(CP.c.checkpoint_ns).where(CP.c.thread_id == bindparam("tid")).distinct()
DELETE_CHECKPOINTS = delete(CP).where(
    CP.c.thread_id == bindparam("tid"),
    CP.c.checkpoint_ns == bindparam("ns"),
    CP.c.checkpoint_id.in_(bindparam("cids", expanding=True)),
)
# Writes go by the checkpoints deleted: writes of a checkpoint not stored yet are kept.
DELETE_WRITES = delete(WR).where(
    WR.c.thread_id == bindparam("tid"),
    WR.c.checkpoint_ns == bindparam("ns"),
    WR.c.checkpoint_id.in_(bindparam("cids", expanding=True)),
)
ORPHAN_PARENTS = (
    update(CP)
    .where(
        CP.c.thread_id == bindparam("tid"),
        CP.c.checkpoint_ns == bindparam("ns"),
        CP.c.parent_checkpoint_id.in_(bindparam("cids", expanding=True)),
    )
    .values(parent_checkpoint_id=None)
)
NAMESPACE_BLOB_LINKS = select(BL.c.channel, BL.c.version, BL.c.base_version).where(
    BL.c.thread_id == bindparam("tid"), BL.c.checkpoint_ns == bindparam("ns")
)
DELETE_BLOBS = delete(BL).where(
    BL.c.thread_id == bindparam("tid"),
    BL.c.checkpoint_ns == bindparam("ns"),
    tuple_(BL.c.channel, BL.c.version).in_(bindparam("keys", expanding=True)),
)
DELETE_NAMESPACE = tuple(
    delete(table).where(table.c.thread_id == bindparam("tid"), table.c.checkpoint_ns == bindparam("ns"))
    for table in (WR, BL, CP)
)
THREADS = select(CP.c.thread_id).distinct().order_by(CP.c.thread_id)
THREADS_OVER = (
    select(CP.c.thread_id)
    .group_by(CP.c.thread_id, CP.c.checkpoint_ns)
    .having(func.count() > bindparam("keep"))
    .distinct()
    .order_by(CP.c.thread_id)
)


def checkpoints_of_runs(conn: Connection, run_ids: Sequence[str]) -> list[Row]:
    if not run_ids:
        return []
    return list(conn.execute(CHECKPOINTS_OF_RUNS, {"runs": list(run_ids)}))


def namespace_checkpoints(conn: Connection, thread_id: str, ns: str) -> list[Row]:
    """(checkpoint_id, parent_checkpoint_id, versions, metadata) of a namespace, newest first."""
    return list(conn.execute(NAMESPACE_CHECKPOINTS, {"tid": thread_id, "ns": ns}))


def thread_namespaces(conn: Connection, thread_id: str) -> list[str]:
    return list(conn.execute(THREAD_NAMESPACES, {"tid": thread_id}).scalars())


def delete_checkpoints(conn: Connection, thread_id: str, ns: str, checkpoint_ids: Sequence[str]) -> int:
    """Delete checkpoints and their writes; children of deleted ones lose their parent link."""
    if not checkpoint_ids:
        return 0
    params = {"tid": thread_id, "ns": ns, "cids": list(checkpoint_ids)}
    conn.execute(DELETE_WRITES, params)
    deleted = conn.execute(DELETE_CHECKPOINTS, params).rowcount
    conn.execute(ORPHAN_PARENTS, params)
    return deleted


def blob_links(conn: Connection, thread_id: str, ns: str) -> list[Row]:
    """(channel, version, base_version) of every blob of a namespace."""
    return list(conn.execute(NAMESPACE_BLOB_LINKS, {"tid": thread_id, "ns": ns}))


def delete_blobs(conn: Connection, thread_id: str, ns: str, keys: list[tuple[str, str]]) -> int:
    if not keys:
        return 0
    return conn.execute(DELETE_BLOBS, {"tid": thread_id, "ns": ns, "keys": keys}).rowcount


def delete_namespace(conn: Connection, thread_id: str, ns: str) -> int:
    deleted = 0
    for statement in DELETE_NAMESPACE:
        result = conn.execute(statement, {"tid": thread_id, "ns": ns})
        if statement.table is CP:
            deleted = result.rowcount
    return deleted


def threads(conn: Connection) -> list[str]:
    return list(conn.execute(THREADS).scalars())


def threads_over(conn: Connection, keep: int) -> list[str]:
    """Threads with a namespace holding more than `keep` checkpoints."""
    return list(conn.execute(THREADS_OVER, {"keep": keep}).scalars())
