"""Engines the savers own when built from a connection string: chatkeep's SQLite settings (WAL,
BEGIN IMMEDIATE for writes) and pool sizes."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine

from chatkeep.config import Settings
from chatkeep.db.engine import configure_sqlite, ensure_sqlite_dir, sync_url


def create_sync_engine(database_url: str, settings: Settings) -> Engine:
    """A thread-safe sync engine: one pooled connection per concurrent call."""
    url = sync_url(database_url)
    ensure_sqlite_dir(url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, pool_size=8, max_overflow=8)
        configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
