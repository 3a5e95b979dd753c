"""Run the Alembic migrations that ship inside the package (works from any directory)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from chatkeep.db.engine import ensure_sqlite_dir, sync_url


def alembic_config(database_url: str) -> Config:
    url = sync_url(database_url)
    ensure_sqlite_dir(url)
    config = Config()
    config.set_main_option("script_location", "chatkeep.db:migrations")
    config.attributes["url"] = url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to `revision`. Idempotent: at head it does nothing."""
    command.upgrade(alembic_config(database_url), revision)
