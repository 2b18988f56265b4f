"""The one place where our errors become HTTP answers. Bodies: {"detail": str, "code": str}."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from app.errors import (
    AuthError,
    ConfigError,
    Conflict,
    InvalidInput,
    MailAuthError,
    MailConnectionError,
    MailHostRefused,
    MailServerError,
    MailTLSError,
    NotFound,
    RadioSilenceError,
    RateLimited,
)

log = logging.getLogger(__name__)

# OpenAPI `responses=` fragments for a router's error answers: OpenAPI's own open JSON shape.
OpenApiResponses = dict[int | str, dict[str, Any]]

_STATUS: list[tuple[type[RadioSilenceError], int, str]] = [
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (InvalidInput, 422, "invalid_input"),
    (AuthError, 401, "unauthorized"),
    (RateLimited, 429, "rate_limited"),
    # The rep's mail server said no: the request named bad credentials or an unusable server.
    (MailAuthError, 422, "imap_auth_failed"),
    (MailTLSError, 422, "imap_tls_failed"),
    (MailConnectionError, 422, "imap_connection_failed"),
    (MailHostRefused, 422, "mail_host_refused"),
    (MailServerError, 422, "imap_error"),
]


def _answer(exc: RadioSilenceError) -> JSONResponse:
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            if isinstance(exc, RateLimited):
                headers = {"Retry-After": str(exc.retry_after)}
            return JSONResponse({"detail": exc.message, "code": code}, status, headers=headers)
    log.error("api.unmapped_error %s: %s", type(exc).__name__, exc.message)
    return JSONResponse({"detail": exc.message, "code": "server_error"}, 500)


IsPage = Callable[[Request], bool]
PageError = Callable[[Request, Exception], Response]


def install(app: FastAPI, *, is_page: IsPage | None = None, page: PageError | None = None) -> None:
    """Our errors as JSON for the API; the errors of a page (`is_page`) go to `page`."""

    async def on_ours(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RadioSilenceError)
        if is_page is not None and page is not None and is_page(request):
            return page(request, exc)
        if isinstance(exc, ConfigError):
            log.error("api.config_error %s", exc.message)
            return JSONResponse({"detail": exc.message, "code": "server_misconfigured"}, 503)
        return _answer(exc)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"] if p != "body") or "body"
            problems.append(f"{where}: {error['msg']}")
        return JSONResponse(
            {
                "detail": "; ".join(problems),
                "code": "invalid_request",
                "errors": [
                    {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors()
                ],
            },
            422,
        )

    app.add_exception_handler(RadioSilenceError, on_ours)
    app.add_exception_handler(RequestValidationError, on_validation)


def error_response(exc: RadioSilenceError) -> JSONResponse:
    """The answer to one of our errors, for middleware that answers before any route."""
    return _answer(exc)
