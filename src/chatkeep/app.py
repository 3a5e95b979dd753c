"""create_app(settings): the FastAPI application. Nothing happens at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chatkeep import __version__
from chatkeep.auth.api import router as auth_router
from chatkeep.auth.cookies import secret_key
from chatkeep.auth.jwt_bearer import JWTVerifier
from chatkeep.background import BackgroundTasks
from chatkeep.checkpoint.api import router as checkpoint_router
from chatkeep.config import Settings, load_settings
from chatkeep.db import Database
from chatkeep.gateway.api import router as gateway_router
from chatkeep.health import router as health_router
from chatkeep.http.errors import install_error_handlers
from chatkeep.http.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from chatkeep.llm import LLM
from chatkeep.logs import configure_logging
from chatkeep.maintenance import Maintenance
from chatkeep.runs.api import router as runs_router
from chatkeep.runs.executor import RunExecutor
from chatkeep.streams import make_broker
from chatkeep.sessions.api import router as sessions_router
from chatkeep.sharing.api import router as sharing_router

DESCRIPTION = """Keeps conversations for LLM applications: sessions and messages per user,
behind `Authorization: Bearer <API key>`. Errors are `{"error", "code"}` JSON objects; lists are
`{"data", "has_more", "next_cursor"}`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.secret_key = secret_key(settings)
        app.state.jwt = JWTVerifier.from_settings(settings)
        app.state.database = Database(settings)
        app.state.llm = LLM(settings)
        app.state.background = BackgroundTasks()
        app.state.broker = make_broker(settings)
        app.state.runs = RunExecutor(app.state.database, app.state.llm, app.state.background, app.state.broker, settings)
        app.state.runs.start_reaper()
        app.state.maintenance = Maintenance(app.state.database, settings)
        app.state.maintenance.start()
        try:
            yield
        finally:
            await app.state.maintenance.stop()
            await app.state.runs.stop()
            # Let replies still streaming to a gone client finish and be stored; runs that
            # cannot finish in time end as "interrupted".
            await app.state.background.drain(timeout=settings.shutdown_grace_seconds)
            await app.state.broker.close()
            await app.state.llm.close()
            await app.state.database.dispose()

    app = FastAPI(title="chatkeep", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(sessions_router)
    app.include_router(sharing_router)
    app.include_router(checkpoint_router)
    app.include_router(gateway_router)
    app.include_router(runs_router)
    return app
