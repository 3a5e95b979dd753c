"""HTTP routes for users: the admin's user management and the caller's own identity."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from chatkeep.auth import service, visitors
from chatkeep.auth.schemas import BrowserSession, ClaimResult, User, UserCreate, UserWithKey
from chatkeep.errors import InvalidInput
from chatkeep.http import cookies as http_cookies
from chatkeep.http.deps import AdminPrincipal, CurrentPrincipal, Db, cookie_visitor_id
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


@router.post("/auth/session", tags=["users"])
async def sign_in(request: Request, response: Response, principal: CurrentPrincipal) -> BrowserSession:
    """Sign a browser in: call with `Authorization: Bearer <API key>`; the response sets a signed,
    HttpOnly `chatkeep_session` cookie, so the page calls the API without holding the key. A
    `chatkeep_visitor` cookie sent along is claimed: its anonymous sessions become the user's."""
    if principal.api_key_id is None:
        raise InvalidInput("signing in needs an API key as the bearer credential", code="api_key_required")
    http_cookies.set_session(request, response, principal.api_key_id)
    if getattr(request.state, "claimed_visitor", None):
        http_cookies.clear_claimed(request, response)
    return BrowserSession(user_id=principal.id, claimed_sessions=getattr(request.state, "claimed_sessions", 0))


@router.delete("/auth/session", status_code=status.HTTP_204_NO_CONTENT, tags=["users"], responses=errors(401))
async def sign_out(request: Request) -> Response:
    """Sign the browser out (clears the session cookie). Needs no credentials."""
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    http_cookies.clear_cookie(request, response, "chatkeep_session")
    return response


@router.post("/me/claim", tags=["users"], responses=errors(409))
async def claim(request: Request, response: Response, db: Db, principal: CurrentPrincipal) -> ClaimResult:
    """Move the sessions of this browser's anonymous visitor (`chatkeep_visitor` cookie) to you.
    Once only: a visitor claimed by another user gets 409."""
    count = getattr(request.state, "claimed_sessions", 0)
    visitor_id = cookie_visitor_id(request)
    if visitor_id is not None:
        count += await visitors.claim(db, principal, visitor_id, strict=True)
        http_cookies.clear_claimed(request, response)
    return ClaimResult(claimed_sessions=count)
