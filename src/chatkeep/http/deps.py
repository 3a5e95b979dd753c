"""Request dependencies: the unit-of-work `db`, the calling Principal, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.auth import cookies, visitors
from chatkeep.auth import service as auth_service
from chatkeep.auth.jwt_bearer import looks_like_jwt
from chatkeep.auth.principal import Principal
from chatkeep.config import Settings
from chatkeep.db import Database, session_scope
from chatkeep.errors import Unauthorized

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


def get_secret_key(request: Request) -> bytes:
    return request.app.state.secret_key


async def _bearer_principal(request: Request, token: str) -> Principal:
    """An API key, the admin key, or (when configured) an identity provider's JWT."""
    settings = get_settings(request)
    database = get_database(request)
    verifier = getattr(request.app.state, "jwt", None)
    if verifier is not None and looks_like_jwt(token):
        claims = verifier.verify(token)
        async with session_scope(database, write=False) as db:
            user_id = await auth_service.user_for_subject(db, claims)
        if user_id is None:
            try:
                async with session_scope(database) as db:
                    user_id = await auth_service.create_subject_user(db, claims)
            except IntegrityError:  # a concurrent first request created it
                async with session_scope(database, write=False) as db:
                    user_id = await auth_service.user_for_subject(db, claims)
                if user_id is None:
                    raise
        return Principal(kind="user", id=user_id)
    async with session_scope(database, write=False) as db:
        principal, stale = await auth_service.authenticate(db, token, admin_key=settings.admin_key)
    if stale and principal.api_key_id:
        async with session_scope(database) as db:
            await auth_service.touch_key(db, principal.api_key_id)
    return principal


async def optional_user_principal(request: Request, token: str | None) -> Principal | None:
    """The bearer credential's principal (401 if invalid), else the browser session cookie's user
    (ignored when invalid), else None."""
    if token:
        return await _bearer_principal(request, token)
    key_id = cookies.unsign(
        get_secret_key(request), "session", request.cookies.get(cookies.SESSION_COOKIE),
        max_age=get_settings(request).session_cookie_max_age_seconds,
    )
    if key_id is None:
        return None
    async with session_scope(get_database(request), write=False) as db:
        return await auth_service.principal_for_key_id(db, key_id)


def cookie_visitor_id(request: Request) -> str | None:
    """The visitor id of a valid `chatkeep_visitor` cookie (a tampered one is ignored)."""
    return cookies.unsign(
        get_secret_key(request), "visitor", request.cookies.get(cookies.VISITOR_COOKIE),
        max_age=get_settings(request).visitor_cookie_max_age_seconds,
    )


async def claim_cookie_visitor(request: Request, principal: Principal) -> None:
    """A user request that carries a visitor cookie claims that visitor's sessions (once)."""
    visitor_id = cookie_visitor_id(request) if principal.kind == "user" else None
    if visitor_id is None:
        return
    database = get_database(request)
    async with session_scope(database, write=False) as db:
        live = await visitors.live_visitor(db, visitor_id)
    claimed = 0
    if live is not None:
        async with session_scope(database) as db:
            claimed = await visitors.claim(db, principal, visitor_id)
    request.state.claimed_visitor = visitor_id
    request.state.claimed_sessions = claimed


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Who is calling. Uses its own short transactions, so it never holds the request's write
    lock, and endpoints that call a model can avoid holding a transaction at all."""
    principal = await optional_user_principal(request, credentials.credentials if credentials else None)
    if principal is None:
        raise Unauthorized("missing bearer credentials", code="missing_credentials")
    await claim_cookie_visitor(request, principal)
    return principal


async def get_chat_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """A user (API key, JWT or session cookie), else, when anonymous access is on, the visitor of
    the `chatkeep_visitor` cookie or a new visitor (`request.state.new_visitor`)."""
    principal = await optional_user_principal(request, credentials.credentials if credentials else None)
    if principal is not None:
        await claim_cookie_visitor(request, auth_service.require_user(principal))
        return principal
    if not get_settings(request).allow_anonymous:
        raise Unauthorized("missing bearer credentials", code="missing_credentials")
    async with session_scope(get_database(request), write=False) as db:
        principal = await visitors.live_visitor(db, cookie_visitor_id(request))
    if principal is None:
        principal = visitors.new_visitor()
        request.state.new_visitor = True
    return principal


async def get_user_principal(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    return auth_service.require_user(principal)


async def get_admin_principal(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    return auth_service.require_admin(principal)


CurrentPrincipal = Annotated[Principal, Depends(get_user_principal)]
ChatPrincipal = Annotated[Principal, Depends(get_chat_principal)]
AdminPrincipal = Annotated[Principal, Depends(get_admin_principal)]
