"""Fixtures for the LangGraph savers: brand-new databases of each backend, savers on them, and
the sync saver seen through the asyncio API (what the conformance suite drives)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy import Engine, create_engine, func, select

from chatkeep.checkpoint import AsyncChatkeepSaver, ChatkeepSaver
from chatkeep.db.engine import sync_url
from chatkeep.db.tables import (
    CheckpointBlobRow,
    CheckpointMessageRow,
    CheckpointRow,
    CheckpointTombstoneRow,
    CheckpointWriteRow,
)
from tests.conftest import drop_database, fresh_database_url

OWNER = "user-conformance"
_names = itertools.count()


class SyncAsAsync(BaseCheckpointSaver):
    """The sync saver behind the asyncio API: every a* method runs the sync one in a thread."""

    def __init__(self, inner: ChatkeepSaver) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner

    def get_next_version(self, current, channel):
        return self.inner.get_next_version(current, channel)

    async def aget_tuple(self, config):
        return await asyncio.to_thread(self.inner.get_tuple, config)

    async def alist(self, config, *, filter=None, before=None, limit=None) -> AsyncIterator:
        items = await asyncio.to_thread(lambda: list(self.inner.list(config, filter=filter, before=before, limit=limit)))
        for item in items:
            yield item

    async def aput(self, config, checkpoint, metadata, new_versions):
        return await asyncio.to_thread(self.inner.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config, writes, task_id, task_path=""):
        await asyncio.to_thread(self.inner.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id):
        await asyncio.to_thread(self.inner.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]):
        await asyncio.to_thread(self.inner.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id, target_thread_id):
        await asyncio.to_thread(self.inner.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids, *, strategy="keep_latest"):
        await asyncio.to_thread(self.inner.prune, thread_ids, strategy=strategy)


@pytest.fixture
def new_database(backend: str, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Brand-new, empty databases (no tables) of the backend; dropped after the test."""
    made: list[str] = []

    def make() -> str:
        url = fresh_database_url(backend, f"cp{next(_names)}", tmp_path)
        made.append(url)
        return url

    yield make
    for url in made:
        drop_database(url)


@pytest.fixture(params=["async", "sync"])
async def saver(request, new_database) -> AsyncIterator[BaseCheckpointSaver]:
    """Each saver through the asyncio API (the sync one via SyncAsAsync)."""
    url = new_database()
    if request.param == "async":
        async with AsyncChatkeepSaver.from_conn_string(url, user_id=OWNER) as inner:
            yield inner
    else:
        with ChatkeepSaver.from_conn_string(url, user_id=OWNER) as inner:
            yield SyncAsAsync(inner)


TABLES = {
    "checkpoints": CheckpointRow,
    "checkpoint_blobs": CheckpointBlobRow,
    "checkpoint_writes": CheckpointWriteRow,
    "checkpoint_messages": CheckpointMessageRow,
    "checkpoint_tombstones": CheckpointTombstoneRow,
}


def engine_for(url: str) -> Engine:
    return create_engine(sync_url(url))


def count_rows(engine: Engine, table: str, thread_id: str | None = None) -> int:
    row = TABLES[table]
    query = select(func.count()).select_from(row)
    if thread_id is not None:
        query = query.where(row.thread_id == thread_id)
    with engine.connect() as conn:
        return conn.scalar(query)


def url_of(saver: Any) -> str:
    inner = getattr(saver, "inner", saver)
    return inner.engine.url.render_as_string(hide_password=False)
