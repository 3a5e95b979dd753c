"""OpenAPI pieces shared by routers: the error body and the responses every endpoint may give."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorBody(BaseModel):
    """Every error: a human sentence and a stable snake_case code (plus details such as `field`)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"error": "session not found", "code": "session_not_found"}]},
    )

    error: str
    code: str


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Malformed request (e.g. invalid JSON)",
        401: "Missing or invalid API key",
        403: "Not allowed for this caller",
        404: "Not found, or not visible to the caller",
        409: "Conflict",
        413: "Too large",
        422: "Invalid input; `fields` lists the bad ones",
    }
    return {s: {"model": ErrorBody, "description": descriptions[s]} for s in statuses}
