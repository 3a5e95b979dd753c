"""Engines and sessionmakers for SQLite (aiosqlite) and PostgreSQL (psycopg 3).

SQLite runs in WAL mode. Write transactions start with BEGIN IMMEDIATE so concurrent writers
queue on the database lock (busy_timeout) instead of failing when a read lock cannot be upgraded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from chatkeep.config import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


def sync_url(url: str) -> URL:
    """The URL for synchronous drivers (Alembic, the LangGraph saver's sync half)."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite")
    return parsed.set(drivername="postgresql+psycopg")


def async_url(url: str) -> URL:
    parsed = sync_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    return parsed


def ensure_sqlite_dir(url: URL) -> None:
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def configure_sqlite(sync_engine) -> None:
    """Pragmas on every connection, and explicit BEGIN so we choose DEFERRED or IMMEDIATE."""

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn) -> None:
        write = conn.get_execution_options().get("chatkeep_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """The async engine plus two sessionmakers: `read` (deferred) and `write` (immediate on SQLite)."""

    def __init__(self, settings: Settings) -> None:
        url = async_url(settings.database_url)
        ensure_sqlite_dir(url)
        self.is_sqlite = url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            self.engine: AsyncEngine = create_async_engine(url, pool_size=8, max_overflow=8)
            configure_sqlite(self.engine.sync_engine)
        else:
            self.engine = create_async_engine(
                url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                # No pre-ping (a round trip per transaction): a connection broken by a database
                # restart fails one request with 503, and the pool then drops all its connections.
            )
        self.read = async_sessionmaker(self.engine, expire_on_commit=False)
        self.write = async_sessionmaker(
            self.engine.execution_options(chatkeep_write=True), expire_on_commit=False
        )

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


@asynccontextmanager
async def session_scope(database: Database, *, write: bool = True) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on error (the CLI's and jobs' `db`)."""
    maker = database.write if write else database.read
    async with maker() as db:
        try:
            yield db
            await db.commit()
        except BaseException:
            await db.rollback()
            raise
