"""`create_app(settings)`: the web app; its lifespan opens the database and runs the workers."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

import app as package
from app.api import drafts, events, mailboxes, rules, threads, tokens, webhooks
from app.api import errors as api_errors
from app.api.tokenfirst import TokenFirst
from app.bodylimit import BodyLimit
from app.config import Settings
from app.runtime import settle_heap
from app.services import accounts, database
from app.services import metrics as app_metrics
from app.services.context import Context
from app.web import errors as web_errors
from app.web import pages
from app.workers import Workers

log = logging.getLogger("radiosilence")


def create_app(settings: Settings, *, context: Context | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = context or Context.create(settings)
        app.state.context = ctx
        app.state.background_tasks = set()
        workers = Workers(ctx) if settings.workers_enabled else None
        await _announce_sign_in(app, ctx)
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
        docs_url=None,  # served by app.web.docs from installed files, not a CDN
        redoc_url=None,
    )
    api_errors.install(app, is_page=web_errors.is_page, page=web_errors.page_error)
    pages.install(app, settings)
    for router in (mailboxes.router, rules.router, threads.router, events.router, webhooks.router):
        app.include_router(router, prefix="/api/v1")
    app.include_router(drafts.router, prefix="/api/v1")
    app.include_router(tokens.router, prefix="/api/v1")

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """The database answers."""
        try:
            await database.check_ready(app.state.context)
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


async def _announce_sign_in(app: FastAPI, ctx: Context) -> None:
    """Tell whoever started the server where to go next: with no administrator yet (a new
    installation, or one that only ran the demo), a one-time setup link that creates the
    first one; else the sign-in page."""
    base = ctx.settings.base_url
    if await accounts.has_admin(ctx):
        log.info("web.ready sign in at %s/login", base)
        return
    app.state.setup_token = secrets.token_urlsafe(24)
    log.warning(
        "web.setup no administrator exists yet: open %s/setup?token=%s to create the first "
        "one; the link works once",
        base,
        app.state.setup_token,
    )
