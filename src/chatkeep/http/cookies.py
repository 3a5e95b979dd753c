"""Setting and clearing chatkeep's browser cookies on a response (all HttpOnly, SameSite=Lax,
Secure when served over https)."""

from __future__ import annotations

from fastapi import Request, Response

from chatkeep.auth import cookies

THREAD_SUFFIX = "_thread_id"
ANONYMOUS_THREADS_SUFFIX = "_threads_anonymous"
MAX_ANONYMOUS_THREADS = 50


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https")


def set_visitor(request: Request, response: Response, visitor_id: str) -> None:
    settings = request.app.state.settings
    value = cookies.sign(request.app.state.secret_key, "visitor", visitor_id)
    set_cookie(request, response, cookies.VISITOR_COOKIE, value, settings.visitor_cookie_max_age_seconds)


def set_session(request: Request, response: Response, api_key_id: str) -> None:
    settings = request.app.state.settings
    value = cookies.sign(request.app.state.secret_key, "session", api_key_id)
    set_cookie(request, response, cookies.SESSION_COOKIE, value, settings.session_cookie_max_age_seconds)


def anonymous_threads(request: Request, agent: str) -> list[str]:
    raw = request.cookies.get(agent + ANONYMOUS_THREADS_SUFFIX) or ""
    return [t for t in raw.split(",") if t][:MAX_ANONYMOUS_THREADS]


def clear_claimed(request: Request, response: Response) -> None:
    """After a claim: the visitor cookie and every `<agent>_threads_anonymous` list go."""
    if cookies.VISITOR_COOKIE in request.cookies:
        clear_cookie(request, response, cookies.VISITOR_COOKIE)
    for name in request.cookies:
        if name.endswith(ANONYMOUS_THREADS_SUFFIX):
            clear_cookie(request, response, name)
