"""HTTP routes for users: the admin's user management and the caller's own identity."""

from __future__ import annotations

from fastapi import APIRouter, status

from chatkeep.auth import service
from chatkeep.auth.schemas import User, UserCreate, UserWithKey
from chatkeep.http.deps import AdminPrincipal, CurrentPrincipal, Db
from chatkeep.http.docs import errors
from chatkeep.http.routing import JSONRoute
from chatkeep.http.params import Paging
from chatkeep.pagination import Page

router = APIRouter(prefix="/v1", responses=errors(401, 403, 422), route_class=JSONRoute)


@router.post(
    "/admin/users", status_code=status.HTTP_201_CREATED, tags=["admin"], responses=errors(409, 422)
)
async def create_user(body: UserCreate, db: Db, _: AdminPrincipal) -> UserWithKey:
    """Create a user and its first API key (needs `CHATKEEP_ADMIN_KEY`). The key is shown once."""
    return await service.create_user(db, body)


@router.get("/admin/users", tags=["admin"])
async def list_users(db: Db, _: AdminPrincipal, paging: Paging) -> Page[User]:
    return await service.list_users(db, limit=paging.limit, offset=paging.offset, cursor=paging.cursor)


@router.get("/me", tags=["users"])
async def me(db: Db, principal: CurrentPrincipal) -> User:
    """The user the API key belongs to."""
    return await service.get_user(db, principal.id)
