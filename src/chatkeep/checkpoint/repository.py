"""SQL for LangGraph checkpoints: every statement is a named constant, every function takes a
sync `Connection` inside the caller's transaction (the async saver reaches them through
`AsyncConnection.run_sync`). Nothing here serialises or knows LangGraph.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
    func,
    literal,
    select,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from chatkeep.db.base import UTCDateTime
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
# Ordinary writes: the first writer of (task, idx) wins. Special writes (negative idx: errors,
# interrupts, resumes) replace what was there.
INSERT_WRITE = _per_dialect(lambda insert: insert(WR).on_conflict_do_nothing())


def _upsert_write(insert):
    statement = insert(WR)
    return statement.on_conflict_do_update(
        index_elements=[WR.c.thread_id, WR.c.checkpoint_ns, WR.c.checkpoint_id, WR.c.task_id, WR.c.idx],
        set_={
            "channel": statement.excluded.channel,
            "type": statement.excluded.type,
            "blob": statement.excluded.blob,
            "task_path": statement.excluded.task_path,
        },
    )


UPSERT_WRITE = _per_dialect(_upsert_write)
# Claim LangChain message ids for the mirror: the rows that come back were not mirrored yet.
CLAIM_MESSAGES = _per_dialect(lambda insert: insert(MM).on_conflict_do_nothing().returning(MM.c.lc_id))
RELEASE_MESSAGES = delete(MM).where(MM.c.thread_id == bindparam("tid"), MM.c.lc_id.in_(bindparam("ids", expanding=True)))


def tombstone(conn: Connection, thread_id: str) -> str | None:
    """The watermark of a deleted thread, or None."""
    return conn.execute(TOMBSTONE, {"tid": thread_id}).scalar_one_or_none()


def checkpoint_exists(conn: Connection, thread_id: str, ns: str, checkpoint_id: str) -> bool:
    return conn.execute(CHECKPOINT_EXISTS, {"tid": thread_id, "ns": ns, "cid": checkpoint_id}).first() is not None


def insert_blobs(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(INSERT_BLOB[conn.dialect.name], rows)


def insert_delta_blob(conn: Connection, row: dict[str, Any]) -> bool:
    """False when the base version is not stored (pruned, or another branch's)."""
    return conn.execute(INSERT_DELTA_BLOB[conn.dialect.name], row).first() is not None


def upsert_checkpoint(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(UPSERT_CHECKPOINT[conn.dialect.name], row)


def insert_writes(conn: Connection, rows: list[dict[str, Any]]) -> None:
    ordinary = [row for row in rows if row["idx"] >= 0]
    special = [row for row in rows if row["idx"] < 0]
    if ordinary:
        conn.execute(INSERT_WRITE[conn.dialect.name], ordinary)
    if special:
        conn.execute(UPSERT_WRITE[conn.dialect.name], special)


def claim_messages(conn: Connection, thread_id: str, claims: list[tuple[str, str | None]]) -> set[str]:
    """Record (LangChain id, session message id) pairs; returns the LangChain ids that were new."""
    if not claims:
        return set()
    rows = [{"thread_id": thread_id, "lc_id": lc_id, "message_id": mid} for lc_id, mid in claims]
    return set(conn.execute(CLAIM_MESSAGES[conn.dialect.name], rows).scalars())


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
GET_CHECKPOINT = select(*CHECKPOINT_COLUMNS).where(
    CP.c.thread_id == bindparam("tid"), CP.c.checkpoint_ns == bindparam("ns"), CP.c.checkpoint_id == bindparam("cid")
)
GET_LATEST_CHECKPOINT = (
    select(*CHECKPOINT_COLUMNS)
    .where(CP.c.thread_id == bindparam("tid"), CP.c.checkpoint_ns == bindparam("ns"))
    .order_by(CP.c.checkpoint_id.desc())
    .limit(1)
)
WRITE_COLUMNS = (WR.c.checkpoint_id, WR.c.task_id, WR.c.idx, WR.c.channel, WR.c.type, WR.c.blob, WR.c.task_path)
WRITES_OF = select(*WRITE_COLUMNS).where(
    WR.c.thread_id == bindparam("tid"),
    WR.c.checkpoint_ns == bindparam("ns"),
    WR.c.checkpoint_id.in_(bindparam("cids", expanding=True)),
)


def _blob_chains():
    """The blobs of the given (channel, version) keys of one thread namespace, and every base
    they extend, each row once: one recursive walk over keys, then one join for the bytes."""
    keys = (
        select(BL.c.channel, BL.c.version)
        .where(
            BL.c.thread_id == bindparam("tid"),
            BL.c.checkpoint_ns == bindparam("ns"),
            tuple_(BL.c.channel, BL.c.version).in_(bindparam("keys", expanding=True)),
        )
        .cte("chain", recursive=True)
    )
    link = BL.alias("link")
    keys = keys.union(
        select(link.c.channel, link.c.base_version)
        .join_from(link, keys, and_(link.c.channel == keys.c.channel, link.c.version == keys.c.version))
        .where(
            link.c.thread_id == bindparam("tid"),
            link.c.checkpoint_ns == bindparam("ns"),
            link.c.base_version.is_not(None),
        )
    )
    return select(BL.c.channel, BL.c.version, BL.c.type, BL.c.blob, BL.c.base_version, BL.c.depth).join_from(
        BL, keys, and_(BL.c.channel == keys.c.channel, BL.c.version == keys.c.version)
    ).where(BL.c.thread_id == bindparam("tid"), BL.c.checkpoint_ns == bindparam("ns"))


BLOB_CHAINS = _blob_chains()


def get_checkpoint(conn: Connection, thread_id: str, ns: str, checkpoint_id: str | None) -> Row | None:
    if checkpoint_id:
        return conn.execute(GET_CHECKPOINT, {"tid": thread_id, "ns": ns, "cid": checkpoint_id}).first()
    return conn.execute(GET_LATEST_CHECKPOINT, {"tid": thread_id, "ns": ns}).first()


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
    return list(conn.execute(BLOB_CHAINS, {"tid": thread_id, "ns": ns, "keys": keys}))


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
