"""ChatkeepSaver: the synchronous LangGraph checkpointer on chatkeep's store.

Thread-safe: every call takes its own connection from the engine's pool, in its own
transaction. The async methods run the sync ones in a worker thread (for the asyncio API with
a sync engine; AsyncChatkeepSaver is the native async twin).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from sqlalchemy import Connection, Engine

from chatkeep.checkpoint import store
from chatkeep.checkpoint.base import ChatkeepSaverBase
from chatkeep.checkpoint.engine import create_sync_engine
from chatkeep.config import Settings
from chatkeep.db.migrate import upgrade

T = TypeVar("T")


class ChatkeepSaver(ChatkeepSaverBase):
    """LangGraph checkpointer whose threads are chatkeep sessions (sync).

    ```python
    with ChatkeepSaver.from_conn_string("sqlite:///data/chatkeep.db") as saver:
        graph = builder.compile(checkpointer=saver)
        graph.invoke(inputs, {"configurable": {"thread_id": "t-1", "user_id": user_id}})
    ```
    """

    def __init__(self, engine: Engine, **options: Any) -> None:
        super().__init__(**options)
        self.engine = engine
        self._writer = engine.execution_options(chatkeep_write=True)
        # SQLite has one writer at a time: writers of this process queue on a lock (handed over
        # at once) rather than on SQLite's busy handler (which sleeps and retries).
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()

    @classmethod
    @contextmanager
    def from_conn_string(cls, conn_string: str, **options: Any) -> Iterator[ChatkeepSaver]:
        """A saver that owns its engine: migrates the database, disposes of the engine on exit."""
        settings = options.pop("settings", None) or Settings(database_url=conn_string)
        upgrade(conn_string)
        engine = create_sync_engine(conn_string, settings)
        try:
            yield cls(engine, settings=settings, **options)
        finally:
            engine.dispose()

    def setup(self) -> None:
        """Bring the database to chatkeep's latest schema (idempotent)."""
        upgrade(self.engine.url.render_as_string(hide_password=False))

    def _tx(self, body: Callable[..., T], *args: Any, write: bool = True) -> T:
        if not write:
            with self.engine.begin() as conn:
                return body(conn, *args)
        with self._write_lock, self._writer.begin() as conn:
            return body(conn, *args)

    def _single(self, body: Callable[..., T], *args: Any, write: bool = True) -> T:
        """`body` runs one statement by itself: a connection with no transaction begun."""
        with self._write_lock if write else nullcontext(), self.engine.connect() as conn:
            return body(conn, *args)

    # --- BaseCheckpointSaver -------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, ns, checkpoint_id = self._target(config)
        hits: dict = {}
        raw = self._single(self._get_cached, thread_id, ns, checkpoint_id, hits, write=False)
        if raw is store.NEED_BLOBS:
            raw = self._tx(self._get_tx, thread_id, ns, checkpoint_id, hits, write=False)
        return None if raw is None else self._load(raw, hits=hits, remember=True)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        args = self._list_args(config, filter, before, limit)
        raws = self._tx(lambda conn: store.list_tuples(conn, **args), write=False)
        yield from self._load_all(raws)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        prepared = self._prepare_put(config, checkpoint, metadata, new_versions)
        result = self._tx(store.put, prepared.plan)
        if self._after_put(prepared, result):
            self._tx(store.retain, prepared.plan.thread_id, self.keep_last)
        return prepared.next_config

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        thread_id, checkpoint_id, rows = self._write_rows(config, writes, task_id, task_path)
        if rows and self._single_writes(rows):
            self._single(self._put_writes_single, thread_id, checkpoint_id, rows)
        elif rows:
            self._tx(store.put_writes, thread_id, checkpoint_id, rows)

    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread whole: checkpoints, writes, blobs, AND its chatkeep session with the
        session's messages (a hard delete). A tombstone drops late checkpoints and writes of a
        graph still running for it; a new run on the same thread id starts a new session."""
        thread_id = str(thread_id)
        self._forget_local(thread_id)
        self._tx(self._delete_tx, thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata.run_id is one of `run_ids`;
        sessions and their messages stay."""
        if run_ids:
            self._tx(store.delete_for_runs, [str(r) for r in run_ids])

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write; the target gets a session like the source's (same
        owner and settings) whose messages mirror the copied state."""
        self._tx(self._copy_tx, str(source_thread_id), str(target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """`keep_latest`: the newest checkpoint of each namespace stays (with its writes and
        blobs), one transaction per thread. `delete`: every checkpoint row of the threads goes;
        their sessions and messages stay (delete_thread removes those too)."""
        ids = self._prune_args(thread_ids, strategy)
        if strategy == "delete":
            self._tx(lambda conn: [store.clear_thread(conn, t) for t in ids])
            for thread_id in ids:
                self.codec.cache.forget(thread_id)
            return
        self._check_retained(self.retain(1, ids))

    def retain(self, keep_last: int, thread_ids: Sequence[str] | None = None) -> store.Retained:
        """Keep the newest `keep_last` checkpoints of each namespace of the threads (all threads
        by default), one transaction per thread; returns what was removed."""
        done = store.Retained()
        ids = list(thread_ids) if thread_ids is not None else self._tx(_threads_over, keep_last, write=False)
        for thread_id in ids:
            done.add(self._tx(store.retain, str(thread_id), keep_last))
        return done

    # --- asyncio API: the sync methods in a worker thread ----------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        items = await asyncio.to_thread(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)


def _threads_over(conn: Connection, keep_last: int) -> list[str]:
    return store.threads_over(conn, keep_last)
