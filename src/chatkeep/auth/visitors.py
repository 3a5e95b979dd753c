"""Anonymous visitors and claiming their sessions on login.

A visitor id lives only in a signed cookie; sessions a visitor creates are owned by it. When a
request carries both a user credential and the visitor's cookie, the user claims the visitor:
one row in `visitor_claims` (the first claim wins, for good) and every session of the visitor
moves to the user, in one transaction. A claimed visitor id is dead: its cookie is ignored.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.auth import repository
from chatkeep.auth.principal import VISITOR_PREFIX, Principal
from chatkeep.db.base import utcnow
from chatkeep.errors import Conflict
from chatkeep.ids import new_id
from chatkeep.sessions import service as sessions



def new_visitor() -> Principal:
    return Principal(kind="visitor", id=VISITOR_PREFIX + new_id())


def is_visitor_id(value: str | None) -> bool:
    return bool(value) and value.startswith(VISITOR_PREFIX) and len(value) <= 64


async def live_visitor(db: AsyncSession, visitor_id: str | None) -> Principal | None:
    """The visitor a (verified) cookie names, unless it was claimed."""
    if not is_visitor_id(visitor_id) or await repository.visitor_claimed_by(db, visitor_id) is not None:
        return None
    return Principal(kind="visitor", id=visitor_id)


async def claim(db: AsyncSession, user: Principal, visitor_id: str, *, strict: bool = False) -> int:
    """Give the visitor's sessions to the user, once; returns how many moved.

    A visitor already claimed by this user moves nothing more; one claimed by another user gets
    nothing (409 when `strict`, i.e. an explicit claim)."""
    if user.kind != "user" or not is_visitor_id(visitor_id):
        return 0
    if not await repository.insert_claim(db, visitor_id, user.id, utcnow()):
        if strict and await repository.visitor_claimed_by(db, visitor_id) != user.id:
            raise Conflict("this visitor was already claimed by another user", code="visitor_already_claimed")
        return 0
    return await sessions.give_sessions(db, visitor_id, user.id)
