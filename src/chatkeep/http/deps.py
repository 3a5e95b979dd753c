"""Request dependencies: the unit-of-work `db`, the calling Principal, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.auth import service as auth_service
from chatkeep.auth.principal import Principal
from chatkeep.config import Settings
from chatkeep.db import Database, session_scope

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ck_…`")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_database(request: Request) -> Database:
    return request.app.state.database


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the endpoint returns, rolled back on error.

    Scoped to the endpoint function, so the commit happens before the response is sent and a
    failed commit becomes an error response instead of a false success.
    """
    async with session_scope(get_database(request), write=request.method not in SAFE_METHODS) as db:
        yield db


Db = Annotated[AsyncSession, Depends(get_db, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Who is calling. Uses its own short transactions, so it never holds the request's write
    lock, and endpoints that call a model can avoid holding a transaction at all."""
    settings = get_settings(request)
    database = get_database(request)
    token = credentials.credentials if credentials else None
    async with session_scope(database, write=False) as db:
        principal, stale = await auth_service.authenticate(db, token, admin_key=settings.admin_key)
    if stale and principal.api_key_id:
        async with session_scope(database) as db:
            await auth_service.touch_key(db, principal.api_key_id)
    return principal


async def get_user_principal(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    return auth_service.require_user(principal)


async def get_admin_principal(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    return auth_service.require_admin(principal)


CurrentPrincipal = Annotated[Principal, Depends(get_user_principal)]
AdminPrincipal = Annotated[Principal, Depends(get_admin_principal)]
