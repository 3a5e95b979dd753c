"""AsyncChatkeepSaver: the asyncio LangGraph checkpointer on chatkeep's store.

It runs the same storage functions as the sync saver, on chatkeep's async engine, through
`AsyncConnection.run_sync` (no thread hops). Serialising a large value (a full copy of a long
list, a big state) or deserialising a large checkpoint happens in a worker thread, so the event
loop stays free; the usual per-step work (a tail of a few messages) stays on the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkeep.checkpoint import store
from chatkeep.checkpoint.base import ChatkeepSaverBase
from chatkeep.config import Settings
from chatkeep.db.engine import Database
from chatkeep.db.migrate import upgrade

T = TypeVar("T")

# Values with more items than this to serialise, or checkpoints with more bytes than this to
# deserialise, are (de)serialised in a worker thread.
HEAVY_ITEMS = 256
HEAVY_BYTES = 256 * 1024


class AsyncChatkeepSaver(ChatkeepSaverBase):
    """LangGraph checkpointer whose threads are chatkeep sessions (asyncio).

    ```python
    async with AsyncChatkeepSaver.from_conn_string("postgresql://…/chatkeep") as saver:
        graph = builder.compile(checkpointer=saver)
        await graph.ainvoke(inputs, {"configurable": {"thread_id": "t-1", "user_id": user_id}})
    ```
    Inside the chatkeep server, `AsyncChatkeepSaver(app.state.database)` shares its engine.
    """

    def __init__(self, database: Database | AsyncEngine, **options: Any) -> None:
        super().__init__(**options)
        self.engine: AsyncEngine = database.engine if isinstance(database, Database) else database
        self._writer = self.engine.execution_options(chatkeep_write=True)
        # SQLite has one writer at a time: this process's writers queue on an asyncio lock
        # rather than on SQLite's busy handler (which sleeps and retries).
        self._write_lock = asyncio.Lock() if self.engine.dialect.name == "sqlite" else None
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    @classmethod
    @asynccontextmanager
    async def from_conn_string(cls, conn_string: str, **options: Any) -> AsyncIterator[AsyncChatkeepSaver]:
        """A saver that owns its engine: migrates the database, disposes of the engine on exit."""
        settings = options.pop("settings", None) or Settings(database_url=conn_string)
        await asyncio.to_thread(upgrade, conn_string)
        database = Database(settings)
        try:
            yield cls(database, settings=settings, **options)
        finally:
            await database.dispose()

    async def setup(self) -> None:
        """Bring the database to chatkeep's latest schema (idempotent)."""
        await asyncio.to_thread(upgrade, self.engine.url.render_as_string(hide_password=False))

    async def _tx(self, body: Callable[..., T], *args: Any, write: bool = True) -> T:
        if not write or self._write_lock is None:
            async with (self._writer if write else self.engine).begin() as conn:
                return await conn.run_sync(body, *args)
        async with self._write_lock, self._writer.begin() as conn:
            return await conn.run_sync(body, *args)

    async def _single(self, body: Callable[..., T], *args: Any, write: bool = True) -> T:
        """`body` runs one statement by itself: a connection with no transaction begun."""
        if write and self._write_lock is not None:
            async with self._write_lock, self.engine.connect() as conn:
                return await conn.run_sync(body, *args)
        async with self.engine.connect() as conn:
            return await conn.run_sync(body, *args)

    # --- BaseCheckpointSaver (async) -----------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, ns, checkpoint_id = self._target(config)
        hits: dict = {}
        raw = await self._single(self._get_cached, thread_id, ns, checkpoint_id, hits, write=False)
        if raw is store.NEED_BLOBS:
            raw = await self._tx(self._get_tx, thread_id, ns, checkpoint_id, hits, write=False)
        if raw is None:
            return None
        if _size(raw.blobs.values()) > HEAVY_BYTES:
            return await asyncio.to_thread(self._load, raw, None, hits, True)
        return self._load(raw, hits=hits, remember=True)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        args = self._list_args(config, filter, before, limit)
        raws = await self._tx(lambda conn: store.list_tuples(conn, **args), write=False)
        if sum(_size(raw.blobs.values()) for raw in raws) > HEAVY_BYTES:
            tuples = await asyncio.to_thread(self._load_all, raws)
        else:
            tuples = self._load_all(raws)
        for item in tuples:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        if self._heavy(checkpoint, new_versions):
            prepared = await asyncio.to_thread(self._prepare_put, config, checkpoint, metadata, new_versions)
        else:
            prepared = self._prepare_put(config, checkpoint, metadata, new_versions)
        result = await self._tx(store.put, prepared.plan)
        if self._after_put(prepared, result):
            await self._tx(store.retain, prepared.plan.thread_id, self.keep_last)
        return prepared.next_config

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        if len(writes) > HEAVY_ITEMS:
            thread_id, checkpoint_id, rows = await asyncio.to_thread(self._write_rows, config, writes, task_id, task_path)
        else:
            thread_id, checkpoint_id, rows = self._write_rows(config, writes, task_id, task_path)
        if rows and self._single_writes(rows):
            await self._single(self._put_writes_single, thread_id, checkpoint_id, rows)
        elif rows:
            await self._tx(store.put_writes, thread_id, checkpoint_id, rows)

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete the thread whole: checkpoints, writes, blobs, AND its chatkeep session with the
        session's messages (a hard delete). A tombstone drops late checkpoints and writes of a
        graph still running for it; a new run on the same thread id starts a new session."""
        thread_id = str(thread_id)
        self._forget_local(thread_id)
        await self._tx(self._delete_tx, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata.run_id is one of `run_ids`;
        sessions and their messages stay."""
        if run_ids:
            await self._tx(store.delete_for_runs, [str(r) for r in run_ids])

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write; the target gets a session like the source's (same
        owner and settings) whose messages mirror the copied state."""
        await self._tx(self._copy_tx, str(source_thread_id), str(target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """`keep_latest`: the newest checkpoint of each namespace stays (with its writes and
        blobs), one transaction per thread. `delete`: every checkpoint row of the threads goes;
        their sessions and messages stay (adelete_thread removes those too)."""
        ids = self._prune_args(thread_ids, strategy)
        if strategy == "delete":
            await self._tx(lambda conn: [store.clear_thread(conn, t) for t in ids])
            for thread_id in ids:
                self.codec.cache.forget(thread_id)
            return
        self._check_retained(await self.aretain(1, ids))

    async def aretain(self, keep_last: int, thread_ids: Sequence[str] | None = None) -> store.Retained:
        """Keep the newest `keep_last` checkpoints of each namespace of the threads (all threads
        by default), one transaction per thread; returns what was removed."""
        done = store.Retained()
        ids = list(thread_ids) if thread_ids is not None else await self._tx(store.threads_over, keep_last, write=False)
        for thread_id in ids:
            done.add(await self._tx(store.retain, str(thread_id), keep_last))
        return done

    def _heavy(self, checkpoint: Checkpoint, new_versions: ChannelVersions) -> bool:
        values = checkpoint["channel_values"]
        items = 0
        for channel in new_versions:
            value = values.get(channel)
            if isinstance(value, (list, dict, tuple)):
                items += len(value)
            elif isinstance(value, (str, bytes)):
                items += len(value) // 1024
        return items > HEAVY_ITEMS

    # --- sync API: the async methods on the saver's event loop, from another thread --------

    def _sync(self, coroutine: Any) -> Any:
        if self.loop is None:
            coroutine.close()
            raise RuntimeError("this AsyncChatkeepSaver was made outside an event loop: use ChatkeepSaver")
        try:
            if asyncio.get_running_loop() is self.loop:
                coroutine.close()
                raise asyncio.InvalidStateError(
                    "synchronous calls to AsyncChatkeepSaver from its event loop would block it: "
                    "use the a* methods (graph.ainvoke) or ChatkeepSaver"
                )
        except RuntimeError:
            pass
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._sync(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        async def collect() -> list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._sync(collect())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._sync(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self._sync(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._sync(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._sync(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._sync(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._sync(self.aprune(thread_ids, strategy=strategy))


def _size(rows: Any) -> int:
    return sum(len(row.blob or b"") for row in rows)
