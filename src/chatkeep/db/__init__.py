"""The store: engine and sessionmakers, tables, Alembic migrations."""

from chatkeep.db.engine import Database, session_scope

__all__ = ["Database", "session_scope"]
