"""Every error leaves as `{"error": <sentence>, "code": <snake_case>}` (plus details)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from chatkeep.errors import ChatkeepError

log = logging.getLogger("chatkeep.errors")

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


# Endpoints that OpenAI clients call: their errors use OpenAI's shape so the clients parse them.
OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")
OPENAI_ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}


def _is_openai_path(request: Request) -> bool:
    return request.url.path.startswith(OPENAI_PATHS)


def error_response(
    request: Request, status: int, message: str, code: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    if _is_openai_path(request):
        status = 400 if status == 422 else status  # OpenAI answers invalid requests with 400
        error_type = OPENAI_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        body: dict[str, Any] = {"error": {"message": message, "type": error_type, "param": extra.get("field"), "code": code}}
    else:
        body = {"error": message, "code": code, **extra}
    return JSONResponse(body, status_code=status, headers=headers or None)


# Locations that name a place in the request, and union branch tags (see sessions.schemas.AppendBody).
_NOT_FIELDS = {"body", "query", "path", "header", "single", "batch"}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in _NOT_FIELDS]
    return ".".join(parts) or str(loc[0] if loc else "")


async def _chatkeep_error(request: Request, exc: ChatkeepError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer", **exc.headers} if exc.status == 401 else exc.headers
    return error_response(request, exc.status, exc.message, exc.code, headers, **exc.extra)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(request, 400, "request body is not valid JSON", "invalid_json")
    fields = [
        {
            "field": _field_name(tuple(e.get("loc", ()))),
            "location": str(e.get("loc", ("",))[0]),
            "message": str(e.get("msg", "")).removeprefix("Value error, "),
        }
        for e in errors
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    if _is_openai_path(request):
        return error_response(request, 422, f"invalid request: {summary}", "invalid_request", field=fields[0]["field"] if fields else None)
    return error_response(request, 422, f"invalid request: {summary}", "validation_error", fields=fields)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and message == "Not Found":
        message = "no such endpoint"
    return error_response(request, exc.status_code, message, code, getattr(exc, "headers", None))


async def _integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
    # A unique constraint lost a race (e.g. two creates of the same client-chosen id).
    log.info("integrity conflict: %s", type(exc.orig).__name__)
    return error_response(request, 409, "the request conflicts with existing data", "conflict")


async def _data_error(request: Request, exc: DataError) -> JSONResponse:
    # A value the database refuses (e.g. a NUL character in text on PostgreSQL).
    log.info("data refused by the database: %s", type(exc.orig).__name__)
    return error_response(request, 422, "the request contains a value that cannot be stored", "invalid_value")


async def _database_error(request: Request, exc: OperationalError | InterfaceError) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc.orig).__name__)
    return error_response(request, 503, "the database is unavailable; retry shortly", "database_unavailable")


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return error_response(request, 500, "internal server error", "internal_error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ChatkeepError, _chatkeep_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(InterfaceError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
