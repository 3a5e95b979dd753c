"""What the sync and the async saver share: options, config parsing, turning a put into rows
(serialisation) and rows into checkpoint tuples (deserialisation), and the transaction bodies
both run (through a sync Connection)."""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from sqlalchemy import Connection

from chatkeep.checkpoint import repository, store
from chatkeep.checkpoint.codec import SMALL_VALUE, Codec, Known, PreparedBlobs, ValueCache, cacheable
from chatkeep.checkpoint.mirror import message_key, to_message_in
from chatkeep.config import Settings
from chatkeep.ids import CLIENT_ID_PATTERN
from chatkeep.sessions import service as sessions_service

# A retention pass (keep_last) runs for a thread every this many checkpoints at least.
RETAIN_EVERY = 10
_ABSENT = object()


class _Owners:
    """Owners of sessions this process has written to (skips a lookup per checkpoint)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, thread_id: str) -> str | None:
        with self._lock:
            return self._owners.get(thread_id)

    def set(self, thread_id: str, owner: str) -> None:
        with self._lock:
            self._owners[thread_id] = owner
            self._owners.move_to_end(thread_id)
            while len(self._owners) > self.size:
                self._owners.popitem(last=False)

    def forget(self, thread_id: str) -> None:
        with self._lock:
            self._owners.pop(thread_id, None)


@dataclass
class PreparedPut:
    plan: store.PutPlan
    blobs: PreparedBlobs
    next_config: RunnableConfig


class ChatkeepSaverBase(BaseCheckpointSaver[str]):
    """Options shared by ChatkeepSaver and AsyncChatkeepSaver.

    Args:
        serde: LangGraph serializer (default: LangGraph's JsonPlusSerializer).
        settings: chatkeep settings (server defaults of sessions the saver creates).
        user_id: owner of new threads whose config has no `configurable.user_id`.
        agent: agent of new threads whose config has no `configurable.agent`.
        messages_channel: the channel mirrored into session messages (None: no mirror).
        keep_last: keep only the newest K checkpoints per thread namespace (None: keep all).
        cache_size: channel values remembered, one per (thread, namespace, channel): lists for
            tail deltas, small values so the checkpoint just written is read back without them.
    """

    def __init__(
        self,
        *,
        serde: SerializerProtocol | None = None,
        settings: Settings | None = None,
        user_id: str | None = None,
        agent: str = "langgraph",
        messages_channel: str | None = "messages",
        keep_last: int | None = None,
        cache_size: int = 1024,
    ) -> None:
        super().__init__(serde=serde)
        if keep_last is not None and keep_last < 1:
            raise ValueError("keep_last must be at least 1")
        self.settings = settings or Settings()
        self.user_id = user_id
        self.agent = agent
        self.messages_channel = messages_channel
        self.keep_last = keep_last
        self.codec = Codec(self.serde, ValueCache(cache_size))
        self._owners = _Owners()
        self._since_retention: dict[str, int] = {}
        self._retention_lock = threading.Lock()

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> ChatkeepSaverBase:
        clone = super().with_allowlist(extra_allowlist)
        if clone is not self:
            clone.codec = Codec(clone.serde, self.codec.cache)  # type: ignore[attr-defined]
        return clone  # type: ignore[return-value]

    def get_next_version(self, current: str | int | None, channel: None) -> str:
        """Versions unique per write (a random suffix): two forks of one checkpoint never
        store different values under one version. "<12 digits>.<8 hex digits>": a version is
        stored ~12 times per turn (checkpoint, versions, blob keys), so its length counts. They
        sort as LangGraph needs (as strings, by number), and after the 32-digit ones of earlier
        chatkeep releases and of LangGraph's savers (whose leading 20 digits are zeros)."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(str(current).split(".")[0])
        return f"{number + 1:012}.{random.getrandbits(32):08x}"

    # --- put ---------------------------------------------------------------------------------

    def _prepare_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> PreparedPut:
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        if not CLIENT_ID_PATTERN.match(thread_id):
            raise ValueError("thread_id must be 1–128 characters of A-Z a-z 0-9 . _ : - (it is the session id)")
        ns = conf.get("checkpoint_ns") or ""
        parent_id = conf.get("checkpoint_id")
        meta = dict(get_serializable_checkpoint_metadata(config, metadata))
        values = checkpoint["channel_values"]
        blobs = self.codec.blobs(thread_id, ns, values, new_versions)
        plan = store.PutPlan(
            thread_id=thread_id,
            ns=ns,
            checkpoint_id=checkpoint["id"],
            parent_id=parent_id,
            checkpoint=self.codec.checkpoint_row(thread_id, ns, checkpoint, parent_id, meta),
            blobs=blobs.rows,
            deltas=blobs.deltas,
            session=store.SessionPlan(
                owner_id=_text(conf.get("user_id")) or self.user_id,
                agent=_text(conf.get("agent"))[:128] or self.agent,
                settings=self.settings,
                model=_text(conf.get("model_name"))[:200] or None,
                temperature=_number(conf.get("temperature"), float),
                max_tokens=_number(conf.get("max_tokens"), int),
            ),
            known_owner=self._owners.get(thread_id),
            mirror=self._mirror_plan(ns, values, new_versions, blobs),
        )
        next_config: RunnableConfig = {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}
        }
        return PreparedPut(plan, blobs, next_config)

    def _mirror_plan(
        self, ns: str, values: dict[str, Any], new_versions: ChannelVersions, blobs: PreparedBlobs
    ) -> store.MirrorPlan | None:
        channel = self.messages_channel
        if channel is None or ns != "" or channel not in new_versions:
            return None
        messages = values.get(channel)
        if not isinstance(messages, list):
            return None
        if channel in blobs.tails:
            tail = blobs.tails[channel]
            start = len(messages) - len(tail)
            candidates = [(message_key(m, start + i), m) for i, m in enumerate(tail)]
        else:
            candidates = [(message_key(m, i), m) for i, m in enumerate(messages)]
        return store.MirrorPlan(candidates, to_message_in) if candidates else None

    def _after_put(self, prepared: PreparedPut, result: store.PutResult) -> bool:
        """Remember what was stored; True when the thread is due for a retention pass."""
        plan = prepared.plan
        if not result.stored:
            self.codec.cache.forget(plan.thread_id)
            self._owners.forget(plan.thread_id)
            return False
        if result.owner_id:
            self._owners.set(plan.thread_id, result.owner_id)
        for channel, known in prepared.blobs.known:
            if channel in result.full_copies:
                known = Known(known.version, known.items, 0)
            self.codec.cache.remember(plan.thread_id, plan.ns, channel, known)
        if self.keep_last is None:
            return False
        with self._retention_lock:
            count = self._since_retention.get(plan.thread_id, 0) + 1
            due = count >= max(self.keep_last, RETAIN_EVERY)
            self._since_retention[plan.thread_id] = 0 if due else count
        return due

    def _write_rows(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
    ) -> tuple[str, str, list[dict[str, Any]]]:
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        checkpoint_id = conf["checkpoint_id"]
        rows = self.codec.write_rows(thread_id, conf.get("checkpoint_ns") or "", checkpoint_id, task_id, task_path, writes)
        return thread_id, checkpoint_id, rows

    # --- get and list ------------------------------------------------------------------------

    @staticmethod
    def _target(config: RunnableConfig) -> tuple[str, str, str | None]:
        conf = config["configurable"]
        return str(conf["thread_id"]), conf.get("checkpoint_ns") or "", get_checkpoint_id(config)

    def _get_tx(
        self,
        conn: Connection,
        thread_id: str,
        ns: str,
        checkpoint_id: str | None,
        hits: dict[str, Known],
        cached_only: bool = False,
    ) -> store.RawTuple | None | object:
        hits.clear()

        def have(channel: str, version: str) -> bool:
            known = self.codec.cache.get(thread_id, ns, channel)
            if known is not None and known.version == version:
                hits[channel] = known
                return True
            return False

        return store.get(conn, thread_id, ns, checkpoint_id, have, cached_only)

    def _get_cached(
        self, conn: Connection, thread_id: str, ns: str, checkpoint_id: str | None, hits: dict[str, Known]
    ) -> store.RawTuple | None | object:
        """The usual read of a thread this saver is writing: one statement (the checkpoint and its
        writes), every value from the cache; NEED_BLOBS otherwise."""
        with repository.autocommit(conn):
            return self._get_tx(conn, thread_id, ns, checkpoint_id, hits, cached_only=True)

    @staticmethod
    def _single_writes(rows: list[dict[str, Any]]) -> bool:
        """Writes that go in one statement (all ordinary or all special) need no transaction."""
        return len({row["idx"] < 0 for row in rows}) == 1

    @staticmethod
    def _put_writes_single(conn: Connection, thread_id: str, checkpoint_id: str, rows: list[dict[str, Any]]) -> bool:
        with repository.autocommit(conn):
            return store.put_writes(conn, thread_id, checkpoint_id, rows)

    def _load(
        self, raw: store.RawTuple, memo: dict | None = None, hits: dict[str, Known] | None = None, remember: bool = False
    ) -> CheckpointTuple:
        row = raw.row
        values = self.codec.values(row.versions, raw.blobs, {} if memo is None else memo, hits)
        checkpoint = self.codec.checkpoint(row.type, row.checkpoint, values)
        if remember:
            for channel, version in checkpoint["channel_versions"].items():
                if not cacheable(version) or (hits is not None and channel in hits):
                    continue
                value = values.get(channel, _ABSENT)
                blob = raw.blobs.get((channel, str(version)))
                if type(value) is list:
                    known = Known(version, tuple(value), blob.depth if blob is not None else 0)
                elif blob is not None and blob.base_version is None and len(blob.blob or b"") <= SMALL_VALUE:
                    known = Known(version, (), 0, (blob.type, blob.blob))
                else:
                    continue
                self.codec.cache.remember(row.thread_id, row.checkpoint_ns, channel, known)
        target = {"thread_id": row.thread_id, "checkpoint_ns": row.checkpoint_ns}
        return CheckpointTuple(
            config={"configurable": {**target, "checkpoint_id": row.checkpoint_id}},
            checkpoint=checkpoint,
            metadata=row.metadata,
            parent_config=(
                {"configurable": {**target, "checkpoint_id": row.parent_checkpoint_id}}
                if row.parent_checkpoint_id
                else None
            ),
            pending_writes=self.codec.writes(raw.writes),
        )

    def _load_all(self, raws: list[store.RawTuple]) -> list[CheckpointTuple]:
        memos: dict[tuple[str, str], dict] = {}
        return [self._load(raw, memos.setdefault((raw.row.thread_id, raw.row.checkpoint_ns), {})) for raw in raws]

    @staticmethod
    def _list_args(
        config: RunnableConfig | None, filter: dict[str, Any] | None, before: RunnableConfig | None, limit: int | None
    ) -> dict[str, Any]:
        conf = (config or {}).get("configurable", {})
        return {
            "thread_id": str(conf["thread_id"]) if conf.get("thread_id") is not None else None,
            "ns": conf.get("checkpoint_ns"),
            "checkpoint_id": conf.get("checkpoint_id"),
            "filter": filter,
            "before": get_checkpoint_id(before) if before else None,
            "limit": limit,
        }

    # --- the other transaction bodies --------------------------------------------------------

    def _delete_tx(self, conn: Connection, thread_id: str) -> None:
        store.delete_thread(conn, thread_id)

    def _copy_tx(self, conn: Connection, source: str, target: str) -> None:
        if not store.copy_thread(conn, source, target, self.settings) or self.messages_channel is None:
            return
        raw = store.get(conn, target, "", None)
        if raw is None or self.messages_channel not in raw.row.versions:
            return
        channel = self.messages_channel
        values = self.codec.values({channel: raw.row.versions[channel]}, raw.blobs, {})
        messages = values.get(channel)
        found = sessions_service.thread_session_owner(conn, target)
        if isinstance(messages, list) and found is not None:
            candidates = [(message_key(m, i), m) for i, m in enumerate(messages)]
            store.mirror(conn, target, found[0], store.MirrorPlan(candidates, to_message_in))

    def _forget_local(self, thread_id: str) -> None:
        self.codec.cache.forget(thread_id)
        self._owners.forget(thread_id)
        with self._retention_lock:
            self._since_retention.pop(thread_id, None)

    @staticmethod
    def _prune_args(thread_ids: Sequence[str], strategy: str) -> list[str]:
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids must be a sequence of thread ids, not a str")
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy: {strategy!r}")
        return [str(t) for t in thread_ids]

    @staticmethod
    def _check_retained(retained: store.Retained) -> None:
        if retained.skipped:
            raise NotImplementedError(
                "keep_latest can't prune namespaces of graphs that use a DeltaChannel: " + ", ".join(retained.skipped)
            )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return kind(value)
