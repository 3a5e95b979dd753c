"""The ChatkeepError tree. Each class has a stable `code` and the HTTP status it maps to.

Services raise these; the HTTP edge turns them into `{"error", "code"}` bodies.
Imports nothing of ours.
"""

from __future__ import annotations

from typing import Any


class ChatkeepError(Exception):
    """Base of every error chatkeep reports to a client."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = headers or {}
        self.extra = extra

    def to_body(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, **self.extra}


class BadRequest(ChatkeepError):
    """The request is malformed (e.g. not JSON)."""

    status = 400
    code = "bad_request"


class Unauthorized(ChatkeepError):
    """No credentials, or credentials that do not identify anyone."""

    status = 401
    code = "unauthorized"


class Forbidden(ChatkeepError):
    """The caller can see the resource but may not do this to it."""

    status = 403
    code = "forbidden"


class NotFound(ChatkeepError):
    """The resource does not exist or the caller may not see it (never leak existence)."""

    status = 404
    code = "not_found"


class Conflict(ChatkeepError):
    """The request conflicts with the current state (duplicate id, reused idempotency key)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(ChatkeepError):
    """A body, message or field is over its configured limit."""

    status = 413
    code = "payload_too_large"


class InvalidInput(ChatkeepError):
    """The body parsed but its values are not acceptable."""

    status = 422
    code = "validation_error"


class ServiceUnavailable(ChatkeepError):
    """A dependency (the database) is unreachable; retry later."""

    status = 503
    code = "service_unavailable"


class RateLimited(ChatkeepError):
    """Too many requests (ours, or the upstream model's); see Retry-After."""

    status = 429
    code = "rate_limited"


class UpstreamError(ChatkeepError):
    """The upstream model failed (5xx, bad response, connection error) or refused the request.

    `status` is 502 for failures, or the upstream's own 4xx status when it refused the request.
    """

    status = 502
    code = "upstream_error"

    def __init__(self, message: str, *, status: int = 502, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.status = status


class UpstreamTimeout(ChatkeepError):
    """The upstream model did not answer in time."""

    status = 504
    code = "upstream_timeout"
