"""The saver's storage logic, written once: sync functions of a `Connection` inside one
transaction. The sync saver runs them on a sync engine; the async saver runs the very same
functions through `AsyncConnection.run_sync` (SQLAlchemy's greenlet bridge, no thread hops).

Serialisation happens before (put) and after (get, list) these run, so the async saver can
keep heavy (de)serialisation off the event loop.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row

from chatkeep.checkpoint import repository
from chatkeep.config import Settings
from chatkeep.db.base import utcnow
from chatkeep.errors import Conflict
from chatkeep.ids import new_id
from chatkeep.sessions import service as sessions_service
from chatkeep.sessions.schemas import MessageIn

if TYPE_CHECKING:
    from chatkeep.checkpoint.codec import Delta

log = logging.getLogger("chatkeep.checkpoint")

# How long a deleted thread's tombstone outlives it (a graph still running then is gone).
TOMBSTONE_TTL = timedelta(days=1)
# Rows per IN list when deleting garbage blobs.
_CHUNK = 500
# Metadata key LangGraph's DeltaChannel keeps its counters in (its values need ancestors).
_DELTA_CHANNEL_KEY = "counters_since_delta_snapshot"


def watermark(now_ns: int | None = None) -> str:
    """The smallest checkpoint id (uuid6, as LangGraph makes them) of this instant: ids of
    checkpoints made later sort after it, ids of earlier ones before."""
    stamp = (time.time_ns() if now_ns is None else now_ns) // 100 + 0x01B21DD213814000
    value = ((stamp >> 12) & 0xFFFFFFFFFFFF) << 80 | 0x6 << 76 | (stamp & 0x0FFF) << 64 | 0x8 << 60
    return str(uuid.UUID(int=value))


class ThreadOwnerMismatch(Conflict):
    """configurable.user_id names another owner than the thread's session has."""

    code = "thread_owner_mismatch"


@dataclass
class SessionPlan:
    """Who owns a thread's session, and what it is created with."""

    owner_id: str | None
    agent: str
    settings: Settings
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass
class MirrorPlan:
    """Messages of the root `messages` channel that may not be mirrored yet, in order:
    (key, LangChain message)."""

    candidates: list[tuple[str, Any]]
    convert: Callable[[Any], MessageIn | None]


@dataclass
class PutPlan:
    thread_id: str
    ns: str
    checkpoint_id: str
    parent_id: str | None
    checkpoint: dict[str, Any]
    blobs: list[dict[str, Any]]
    deltas: list[Delta]
    session: SessionPlan
    known_owner: str | None = None
    mirror: MirrorPlan | None = None


@dataclass
class PutResult:
    stored: bool
    owner_id: str | None = None
    # Deltas stored as full copies instead (their base was gone): channels.
    full_copies: set[str] = field(default_factory=set)


def _stale_put(conn: Connection, plan: PutPlan, dead_before: str) -> bool:
    """A put for a deleted thread comes from a graph that was running when it was deleted when
    its parent is gone, or (a first checkpoint) it was made before the deletion."""
    if plan.parent_id:
        return not repository.checkpoint_exists(conn, plan.thread_id, plan.ns, plan.parent_id)
    return plan.checkpoint_id < dead_before


def _session_owner(conn: Connection, thread_id: str, plan: SessionPlan) -> str:
    """The owner of the thread's session, creating the session for a new thread."""
    found = sessions_service.thread_session_owner(conn, thread_id)
    if found is None:
        if not plan.owner_id:
            raise ValueError(
                f"thread {thread_id!r} is new: pass configurable.user_id (the chatkeep user who owns "
                "it) or construct the saver with user_id=…"
            )
        sessions_service.create_thread_session(
            conn,
            thread_id,
            plan.owner_id,
            plan.settings,
            agent=plan.agent,
            metadata={"langgraph": True},
            model=plan.model,
            temperature=plan.temperature,
            max_tokens=plan.max_tokens,
        )
        found = sessions_service.thread_session_owner(conn, thread_id)
        assert found is not None
    owner, _ = found
    if plan.owner_id and plan.owner_id != owner:
        raise ThreadOwnerMismatch(f"thread {thread_id!r} belongs to another user", field="user_id")
    return owner


def put(conn: Connection, plan: PutPlan) -> PutResult:
    """Store a checkpoint with its new blobs, and mirror its new messages, in the caller's
    transaction.

    A thread this saver already wrote to (its owner known, the checkpoint has a parent) takes the
    short way: the checkpoint row first, by a statement that also checks for a tombstone and
    that the base of the (usual, single) tail blob is stored, then every blob in one statement,
    then the mirror; nothing else is read. Otherwise (a first checkpoint, an owner to check, a
    thread that was deleted, a missing base) the tombstone and the session are looked at first,
    and a tail whose base is gone is stored whole."""
    if (
        plan.parent_id  # a first checkpoint always checks: the session may be gone since
        and plan.known_owner
        and plan.known_owner == (plan.session.owner_id or plan.known_owner)
    ):
        if len(plan.deltas) <= 1:
            base = (plan.deltas[0].row["channel"], plan.deltas[0].row["base_version"]) if plan.deltas else None
            if repository.upsert_checkpoint_if_alive(conn, plan.checkpoint, base):
                repository.insert_blobs(conn, [*plan.blobs, *(delta.row for delta in plan.deltas)])
                if plan.mirror is not None:
                    mirror(conn, plan.thread_id, plan.known_owner, plan.mirror)
                return PutResult(stored=True, owner_id=plan.known_owner)
        elif repository.upsert_checkpoint_if_alive(conn, plan.checkpoint):
            return _store_values(conn, plan, plan.known_owner)
    dead_before = repository.tombstone(conn, plan.thread_id)
    if dead_before is not None and _stale_put(conn, plan, dead_before):
        log.info("dropped a late checkpoint of deleted thread %s", plan.thread_id)
        return PutResult(stored=False)
    owner = _session_owner(conn, plan.thread_id, plan.session)
    repository.upsert_checkpoint(conn, plan.checkpoint)
    return _store_values(conn, plan, owner)


def _store_values(conn: Connection, plan: PutPlan, owner: str) -> PutResult:
    """The put's blobs (full copies in one statement, tails each against its base) and mirror."""
    result = PutResult(stored=True, owner_id=owner)
    repository.insert_blobs(conn, plan.blobs)
    for delta in plan.deltas:
        if not repository.insert_delta_blob(conn, delta.row):
            type_, blob = delta.full()
            repository.insert_blobs(conn, [{**delta.row, "type": type_, "blob": blob, "base_version": None, "depth": 0}])
            result.full_copies.add(delta.row["channel"])
    if plan.mirror is not None:
        mirror(conn, plan.thread_id, owner, plan.mirror)
    return result


def mirror(conn: Connection, thread_id: str, owner_id: str, plan: MirrorPlan) -> int:
    """Append the candidates not mirrored yet to the session; returns how many were appended."""
    seen: set[str] = set()
    pending: list[tuple[str, str | None, MessageIn | None]] = []
    for key, message in plan.candidates:
        if key in seen:
            continue
        seen.add(key)
        converted = plan.convert(message)
        pending.append((key, new_id() if converted is not None else None, converted))
    new = repository.claim_messages(conn, thread_id, [(key, mid) for key, mid, _ in pending])
    appended = [(mid, msg) for key, mid, msg in pending if key in new and msg is not None and mid is not None]
    if not appended:
        return 0
    if not sessions_service.append_thread_messages(
        conn, owner_id, thread_id, [msg for _, msg in appended], [mid for mid, _ in appended]
    ):
        # The session is in the trash (or gone): nothing is mirrored, nothing is claimed.
        repository.release_messages(conn, thread_id, new)
        return 0
    return len(appended)


def put_writes(conn: Connection, thread_id: str, checkpoint_id: str, rows: list[dict[str, Any]]) -> bool:
    """Store writes (they may come before their checkpoint); False if the thread was deleted
    after their checkpoint was made. One statement (two with special writes) that checks the
    tombstone itself; the tombstone is read only when fewer rows went in than came."""
    if repository.insert_writes_if_alive(conn, rows) >= len(rows):
        return True
    dead_before = repository.tombstone(conn, thread_id)
    if dead_before is not None and checkpoint_id < dead_before:
        log.info("dropped late writes of deleted thread %s", thread_id)
        return False
    return True


# --- reading ---------------------------------------------------------------------------------

# What get(cached_only=True) returns when the values are not all cached.
NEED_BLOBS = object()


@dataclass
class RawTuple:
    """One checkpoint's rows, not deserialised yet."""

    row: Row | repository.CheckpointRecord
    writes: list[Row] | list[repository.WriteRecord]
    blobs: dict[tuple[str, str], Row]


def get(
    conn: Connection,
    thread_id: str,
    ns: str,
    checkpoint_id: str | None,
    have: Callable[[str, str], bool] = lambda channel, version: False,
    cached_only: bool = False,
) -> RawTuple | None | object:
    """The checkpoint (the latest without an id) with its writes and the blobs of its values,
    except those `have(channel, version)` says the caller already holds. With `cached_only`
    (one statement, outside a transaction), NEED_BLOBS when some blob must be read: the caller
    then reads again in a transaction."""
    found = repository.checkpoint_with_writes(conn, thread_id, ns, checkpoint_id)
    if found is None:
        return None
    row, writes = found
    keys = [(c, v) for c, v in row.versions.items() if not have(c, v)]
    if keys and cached_only:
        return NEED_BLOBS
    blobs = {(b.channel, b.version): b for b in repository.blob_chains(conn, thread_id, ns, keys)}
    return RawTuple(row, writes, blobs)


def list_tuples(
    conn: Connection,
    *,
    thread_id: str | None,
    ns: str | None,
    checkpoint_id: str | None,
    filter: dict[str, Any] | None,
    before: str | None,
    limit: int | None,
) -> list[RawTuple]:
    rows = repository.list_checkpoints(
        conn, thread_id=thread_id, ns=ns, checkpoint_id=checkpoint_id, filter=filter, before=before, limit=limit
    )
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        groups[(row.thread_id, row.checkpoint_ns)].append(row)
    writes: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    blobs: dict[tuple[str, str], dict[tuple[str, str], Row]] = {}
    for (tid, cns), members in groups.items():
        for write in repository.writes_of(conn, tid, cns, [r.checkpoint_id for r in members]):
            writes[(tid, cns, write.checkpoint_id)].append(write)
        keys = {(c, v) for r in members for c, v in r.versions.items()}
        blobs[(tid, cns)] = {(b.channel, b.version): b for b in repository.blob_chains(conn, tid, cns, keys)}
    return [
        RawTuple(r, writes[(r.thread_id, r.checkpoint_ns, r.checkpoint_id)], blobs[(r.thread_id, r.checkpoint_ns)])
        for r in rows
    ]


# --- deleting, copying -----------------------------------------------------------------------


def delete_thread(conn: Connection, thread_id: str) -> None:
    """A deleted thread is gone whole: its checkpoints, writes and blobs, its session and the
    session's messages; a tombstone keeps late writes of a graph still running out."""
    repository.forget_thread(conn, thread_id)
    sessions_service.delete_thread_session(conn, thread_id)
    now = utcnow()
    repository.bury_thread(conn, thread_id, watermark(), now, now - TOMBSTONE_TTL)


def forget_session_thread(conn: Connection, thread_id: str) -> None:
    """A hard-deleted session's checkpoint rows; a tombstone if it was a LangGraph thread."""
    if repository.forget_thread(conn, thread_id):
        now = utcnow()
        repository.bury_thread(conn, thread_id, watermark(), now, now - TOMBSTONE_TTL)


def copy_thread(conn: Connection, source: str, target: str, settings: Settings) -> bool:
    """Copy the checkpoint rows; give the target a session like the source's (if it has none).
    True if the target's session exists afterwards (the caller then mirrors its messages)."""
    repository.copy_thread(conn, source, target)
    if sessions_service.thread_session_owner(conn, target) is not None:
        return True
    like = sessions_service.thread_session_settings(conn, source)
    if like is None:
        return False
    owner = like.pop("owner_id")
    agent = like.pop("agent")
    title = like.pop("title")
    metadata = like.pop("metadata")
    sessions_service.create_thread_session(
        conn, target, owner, settings, agent=agent, title=title, metadata={**metadata, "copied_from": source}, **like
    )
    return True


def _blob_links(conn: Connection, thread_id: str, ns: str) -> dict[tuple[str, str], str | None]:
    return {(r.channel, r.version): r.base_version for r in repository.blob_links(conn, thread_id, ns)}


def _garbage_blobs(
    conn: Connection,
    thread_id: str,
    ns: str,
    links: dict[tuple[str, str], str | None],
    referenced: Iterable[tuple[str, str]],
) -> int:
    """Delete the namespace's blobs no checkpoint needs: neither referenced nor the base of one
    that is. `links` must be read before the checkpoints `referenced` comes from: a blob saved
    after that is then not in `links`, and its checkpoint (saved in the same transaction) not
    missed."""
    needed: set[tuple[str, str]] = set()
    for key in referenced:
        while key in links and key not in needed:
            needed.add(key)
            base = links[key]
            if base is None:
                break
            key = (key[0], base)
    garbage = [key for key in links if key not in needed]
    return sum(
        repository.delete_blobs(conn, thread_id, ns, garbage[i : i + _CHUNK]) for i in range(0, len(garbage), _CHUNK)
    )


def delete_for_runs(conn: Connection, run_ids: Sequence[str]) -> int:
    """Delete the checkpoints (and their writes) the runs made, and the blobs only they used."""
    doomed: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in repository.checkpoints_of_runs(conn, run_ids):
        doomed[(row.thread_id, row.checkpoint_ns)].append(row.checkpoint_id)
    deleted = 0
    for (thread_id, ns), ids in doomed.items():
        links = _blob_links(conn, thread_id, ns)
        deleted += repository.delete_checkpoints(conn, thread_id, ns, ids)
        remaining = repository.namespace_checkpoints(conn, thread_id, ns)
        _garbage_blobs(conn, thread_id, ns, links, [(c, v) for r in remaining for c, v in r.versions.items()])
    return deleted


def clear_thread(conn: Connection, thread_id: str) -> int:
    """prune(strategy="delete"): every checkpoint, write and blob; the session stays."""
    deleted = 0
    for ns in repository.thread_namespaces(conn, thread_id):
        deleted += repository.delete_namespace(conn, thread_id, ns)
    return deleted


@dataclass
class Retained:
    """What retention removed (and the namespaces it left alone: DeltaChannel graphs)."""

    threads: int = 0
    checkpoints: int = 0
    blobs: int = 0
    skipped: list[str] = field(default_factory=list)

    def add(self, other: Retained) -> None:
        self.threads += other.threads
        self.checkpoints += other.checkpoints
        self.blobs += other.blobs
        self.skipped += other.skipped


def uses_delta_channels(rows: Iterable[Row]) -> bool:
    return any(_DELTA_CHANNEL_KEY in (r.metadata or {}) for r in rows)


def retain(conn: Connection, thread_id: str, keep_last: int) -> Retained:
    """Keep the newest `keep_last` checkpoints of each namespace of the thread (with their
    writes, and writes of checkpoints not saved yet); delete older ones, their writes and the
    blobs nothing kept needs. A subgraph call's namespace goes with the root checkpoint it ran
    under once that one is pruned. Namespaces of graphs with a DeltaChannel are skipped (their
    values are rebuilt from ancestors)."""
    keep_last = max(int(keep_last), 1)
    done = Retained()
    namespaces = sorted(repository.thread_namespaces(conn, thread_id), key=lambda n: n != "")
    links = {ns: _blob_links(conn, thread_id, ns) for ns in namespaces}
    root = repository.namespace_checkpoints(conn, thread_id, "") if "" in namespaces else []
    root_ids = {r.checkpoint_id for r in root}
    kept_root = {r.checkpoint_id for r in root[:keep_last]}
    for ns in namespaces:
        rows = root if ns == "" else repository.namespace_checkpoints(conn, thread_id, ns)
        if uses_delta_channels(rows):
            done.skipped.append(f"{thread_id}/{ns}")
            continue
        if ns and ":" in ns and rows:
            parent_root = ((rows[0].metadata or {}).get("parents") or {}).get("")
            if parent_root in root_ids and parent_root not in kept_root:
                done.checkpoints += repository.delete_namespace(conn, thread_id, ns)
                continue
        doomed = [r.checkpoint_id for r in rows[keep_last:]]
        if not doomed:
            continue
        done.checkpoints += repository.delete_checkpoints(conn, thread_id, ns, doomed)
        kept = [(c, v) for r in rows[:keep_last] for c, v in r.versions.items()]
        done.blobs += _garbage_blobs(conn, thread_id, ns, links[ns], kept)
    if done.checkpoints:
        done.threads = 1
    return done


def threads_over(conn: Connection, keep_last: int) -> list[str]:
    """Threads with a namespace holding more than `keep_last` checkpoints."""
    return repository.threads_over(conn, keep_last)
