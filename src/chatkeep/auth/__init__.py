"""Users, API keys, and the Principal (who is calling)."""

from chatkeep.auth.principal import Principal

__all__ = ["Principal"]
