"""Errors as pages: sign-in redirects, 403 for a missing CSRF token, 404 for what is not
yours, our errors with their message, and a 500 page that shows no traceback."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import (
    AuthError,
    Conflict,
    InvalidInput,
    MailServerError,
    NotFound,
    RadioSilenceError,
    RateLimited,
)
from app.web.deps import CsrfRejected, NotAllowed, SignInRequired
from app.web.render import render

log = logging.getLogger(__name__)


def is_page(request: Request) -> bool:
    """Everything but the API, the docs and the operations endpoints is a page."""
    path = request.url.path
    return not path.startswith(("/api/", "/docs", "/openapi", "/redoc", "/healthz", "/readyz"))


def page_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, SignInRequired):
        return RedirectResponse(f"/login?next={exc.next_path}", status_code=303)
    if isinstance(exc, CsrfRejected):
        return render(
            request,
            "errors/error.html",
            {
                "title": "This form has expired",
                "message": "The form was not sent from this site, or it is too old: go back, "
                "reload the page and try again.",
            },
            status_code=403,
        )
    if isinstance(exc, NotAllowed | NotFound):
        return render(request, "errors/404.html", status_code=404)
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 404:
            return render(request, "errors/404.html", status_code=404)
        return render(
            request,
            "errors/error.html",
            {"title": "That did not work", "message": str(exc.detail)},
            status_code=exc.status_code,
        )
    if isinstance(exc, RadioSilenceError):
        status = 422
        if isinstance(exc, Conflict):
            status = 409
        elif isinstance(exc, RateLimited):
            status = 429
        elif isinstance(exc, AuthError):
            status = 401
        elif not isinstance(exc, InvalidInput | MailServerError):
            status = 500
            log.error("web.unmapped_error %s: %s", type(exc).__name__, exc.message)
        return render(
            request,
            "errors/error.html",
            {"title": "That did not work", "message": exc.message},
            status_code=status,
        )
    log.exception("web.error path=%s", request.url.path, exc_info=exc)
    return render(request, "errors/500.html", status_code=500)
