"""`create_app(settings)`: the web app; its lifespan opens the database and runs the workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

import app as package
from app import metrics as app_metrics
from app.api import drafts, events, mailboxes, rules, threads, webhooks
from app.api import errors as api_errors
from app.api.tokenfirst import TokenFirst
from app.bodylimit import BodyLimit
from app.config import Settings
from app.runtime import settle_heap
from app.services.context import Context
from app.workers import Workers


def create_app(settings: Settings, *, context: Context | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = context or Context.create(settings)
        app.state.context = ctx
        app.state.background_tasks = set()
        workers = Workers(ctx) if settings.workers_enabled else None
        settle_heap()
        if workers:
            workers.start()
        try:
            yield
        finally:
            if workers:
                await workers.stop()
            for task in list(app.state.background_tasks):
                task.cancel()
            await asyncio.gather(*app.state.background_tasks, return_exceptions=True)
            if context is None:
                await ctx.close()

    app = FastAPI(
        title="Radio Silence",
        version=package.__version__,
        description="Notices when a sales conversation has gone quiet. "
        "Authenticate with `Authorization: Bearer <token>` (`radiosilence token create`).",
        lifespan=lifespan,
    )
    api_errors.install(app)
    for router in (mailboxes.router, rules.router, threads.router, events.router, webhooks.router):
        app.include_router(router, prefix="/api/v1")
    app.include_router(drafts.router, prefix="/api/v1")

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(
            "<!doctype html><title>Radio Silence</title><h1>Radio Silence</h1>"
            '<p>The API is described at <a href="/docs">/docs</a>.</p>'
        )

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """The database answers."""
        try:
            async with app.state.context.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "detail": type(exc).__name__}, 503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        """Prometheus metrics: this process's work, then the stored state (see app.metrics)."""
        ctx = app.state.context
        body = await app_metrics.exposition(ctx.engine, ctx.clock())
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    # Added last, so outermost: the token of an API request is checked before its body is
    # read, then every route's body is held to the limit (pages' forms included).
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(TokenFirst)
    return app
