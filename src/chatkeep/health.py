"""Liveness and readiness probes (no credentials)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The database is unreachable"}})
async def readyz(request: Request) -> JSONResponse:
    """The database answers."""
    try:
        await request.app.state.database.ping()
    except Exception:  # any failure to reach the database means "not ready"
        return JSONResponse(
            {"status": "unavailable", "error": "the database is unreachable", "code": "database_unavailable"},
            status_code=503,
        )
    return JSONResponse({"status": "ok"})
