"""Alembic migrations from an empty database, on both backends, against the ORM's metadata."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text

from chatkeep.db import Database, tables  # noqa: F401  (tables registers every table on Base.metadata)
from chatkeep.db.base import Base
from chatkeep.db.engine import sync_url
from chatkeep.db.migrate import alembic_config, upgrade
from tests.conftest import fresh_database_url, make_settings

TABLES = {"users", "api_keys", "sessions", "messages", "idempotency_keys"}


@pytest.fixture
def migrated(backend: str, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url = fresh_database_url(backend, "migrations", tmp_path)
    upgrade(url)
    engine = create_engine(sync_url(url))
    yield url, engine
    engine.dispose()


def head_revision(url: str) -> str:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def test_upgrade_from_empty_creates_every_table(migrated):
    url, engine = migrated
    assert TABLES | {"alembic_version"} <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.scalars(text("SELECT version_num FROM alembic_version")).all() == [head_revision(url)]


def test_upgrade_again_is_a_no_op(migrated):
    url, engine = migrated
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO users (id, name, preferences, created_at) VALUES ('u1', 'keep', '{}', :t)"),
            {"t": "2026-01-01 00:00:00"},
        )
    before = inspect(engine).get_table_names()
    upgrade(url)
    assert inspect(engine).get_table_names() == before
    with engine.connect() as conn:
        assert conn.scalars(text("SELECT version_num FROM alembic_version")).all() == [head_revision(url)]
        assert conn.scalars(text("SELECT name FROM users")).all() == ["keep"]


def test_metadata_matches_the_migrated_schema(migrated):
    _, engine = migrated
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, Base.metadata) == []


def test_indexes_for_paging_exist(migrated):
    _, engine = migrated
    inspector = inspect(engine)
    unique = [c["column_names"] for c in inspector.get_unique_constraints("messages")]
    unique += [i["column_names"] for i in inspector.get_indexes("messages") if i["unique"]]
    assert ["session_id", "seq"] in unique
    listing = {i["name"]: i for i in inspector.get_indexes("sessions")}["ix_sessions_owner_listing"]
    assert listing["column_names"] == ["owner_id", "archived", "pinned", "updated_at", "id"]
    where = listing["dialect_options"].get(f"{engine.dialect.name}_where")
    assert "deleted_at IS NULL" in str(where)


def test_sqlite_runs_in_wal_mode(tmp_path):
    url = f"sqlite:///{tmp_path / 'wal.db'}"
    upgrade(url)

    async def journal_mode() -> str:
        database = Database(make_settings(url))
        try:
            async with database.engine.connect() as conn:
                return (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
        finally:
            await database.dispose()

    assert asyncio.run(journal_mode()) == "wal"
