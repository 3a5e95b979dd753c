"""Periodic housekeeping in every server process: purge what is due, in small batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from chatkeep.config import Settings
from chatkeep.db import Database, session_scope
from chatkeep.db.base import utcnow
from chatkeep.sessions import service as sessions

log = logging.getLogger("chatkeep.maintenance")
BATCH = 200


class Maintenance:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.maintenance_interval_seconds)
            try:
                await self.run_once()
            except Exception:  # a database hiccup must not end housekeeping
                log.exception("maintenance failed")

    async def run_once(self) -> int:
        """Purge anonymous sessions never claimed and idle for `anonymous_session_ttl_days`."""
        older_than = utcnow() - timedelta(days=self.settings.anonymous_session_ttl_days)
        purged = 0
        while True:
            async with session_scope(self.database) as db:
                count = await sessions.purge_visitor_sessions(db, older_than=older_than, batch=BATCH)
            purged += count
            if count < BATCH:
                return purged
