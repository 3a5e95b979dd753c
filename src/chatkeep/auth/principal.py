"""Who is calling: a user, an anonymous visitor, or the operator with the admin key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PrincipalKind = Literal["user", "visitor", "admin"]
# Anonymous visitor ids start with this (they own sessions like user ids do).
VISITOR_PREFIX = "visitor_"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    # The user id or visitor id; "admin" for the admin key.
    id: str
    api_key_id: str | None = None

    @property
    def owner_id(self) -> str:
        """The id sessions created by this caller belong to."""
        return self.id
