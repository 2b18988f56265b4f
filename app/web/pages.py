"""Puts the pages on the app: routers, static files, security headers, error pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.config import Settings
from app.web import (
    account,
    auth,
    dashboard,
    docs,
    drafts,
    errors,
    mailboxes,
    oauth2,
    threads,
    webhooks,
)
from app.web.deps import CsrfRejected, NotAllowed, SignInRequired
from app.web.headers import SecurityHeaders
from app.web.sessions import Keys

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI, settings: Settings) -> None:
    app.state.settings = settings
    app.state.web_keys = Keys.of(settings)
    app.state.setup_token = None
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, dashboard, threads, drafts, mailboxes, oauth2, webhooks, account, docs):
        app.include_router(module.router)

    async def on_page_error(request: Request, exc: Exception) -> Response:
        return errors.page_error(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if errors.is_page(request):
            return errors.page_error(request, exc)
        return JSONResponse(
            {"detail": exc.detail, "code": "http_error"}, exc.status_code, headers=exc.headers
        )

    async def on_crash(request: Request, exc: Exception) -> Response:
        if errors.is_page(request):
            return errors.page_error(request, exc)
        return JSONResponse({"detail": "internal error", "code": "server_error"}, 500)

    for kind in (SignInRequired, CsrfRejected, NotAllowed):
        app.add_exception_handler(kind, on_page_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_crash)
