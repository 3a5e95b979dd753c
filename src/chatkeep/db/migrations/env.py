"""Alembic environment: the URL comes from chatkeep's settings via config.attributes."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from chatkeep.db import tables  # noqa: F401  (registers every table on Base.metadata)
from chatkeep.db.base import Base

config = context.config
url = config.attributes["url"]
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=url.get_backend_name() == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
