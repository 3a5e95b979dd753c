"""Every error leaves as `{"error": <sentence>, "code": <snake_case>}` (plus details)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
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


def error_response(status: int, message: str, code: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, "code": code, **extra}, status_code=status)


# Locations that name a place in the request, and union branch tags (see sessions.schemas.AppendBody).
_NOT_FIELDS = {"body", "query", "path", "header", "single", "batch"}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in _NOT_FIELDS]
    return ".".join(parts) or str(loc[0] if loc else "")


async def _chatkeep_error(_: Request, exc: ChatkeepError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.to_body(), status_code=exc.status, headers=headers)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "request body is not valid JSON", "invalid_json")
    fields = [
        {"field": _field_name(tuple(e.get("loc", ()))), "location": str(e.get("loc", ("",))[0]), "message": e.get("msg", "")}
        for e in errors
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return error_response(422, f"invalid request: {summary}", "validation_error", fields=fields)


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and message == "Not Found":
        message = "no such endpoint"
    return JSONResponse(
        {"error": message, "code": code}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
    # A unique constraint lost a race (e.g. two creates of the same client-chosen id).
    log.info("integrity conflict: %s", type(exc.orig).__name__)
    return error_response(409, "the request conflicts with existing data", "conflict")


async def _database_error(_: Request, exc: OperationalError | InterfaceError) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc.orig).__name__)
    return error_response(503, "the database is unavailable; retry shortly", "database_unavailable")


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return error_response(500, "internal server error", "internal_error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ChatkeepError, _chatkeep_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(InterfaceError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
