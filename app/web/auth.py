"""Signing in and out, and the first-run setup of the first (admin) account."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.errors import AuthError, Conflict, InvalidInput, RateLimited
from app.services import accounts
from app.web import sessions
from app.web.deps import Ctx, Form, text
from app.web.render import redirect, render, safe_next

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/login")
async def login_page(request: Request, ctx: Ctx) -> Response:
    token = sessions.session_token(request)
    if token and await accounts.session_user(ctx, token):
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return render(
        request,
        "pages/login.html",
        {
            "next": safe_next(request.query_params.get("next")),
            "error": "",
            "email": "",
            "no_admin": not await accounts.has_admin(ctx),
        },
    )


@router.post("/login")
async def login(request: Request, ctx: Ctx, form: Form) -> Response:
    email, target = text(form, "email"), safe_next(text(form, "next"))
    try:
        user = await accounts.sign_in(
            ctx, email=email, password=text(form, "password"), client=_client(request)
        )
    except (AuthError, RateLimited) as exc:
        limited = isinstance(exc, RateLimited)
        log.info("web.sign_in_refused limited=%s", limited)
        return render(
            request,
            "pages/login.html",
            {"next": target, "error": exc.message, "email": email[:320], "no_admin": False},
            status_code=429 if limited else 401,
            headers={"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None,
        )
    return await _signed_in(request, ctx, user.id, target)


async def _signed_in(request: Request, ctx: Ctx, user_id: int, target: str) -> Response:
    token = await accounts.start_session(ctx, user_id=user_id)
    response = RedirectResponse(target, status_code=303)
    sessions.start(request, response, token, max_age=ctx.settings.session_hours * 3600)
    return response


@router.post("/logout")
async def logout(request: Request, ctx: Ctx, form: Form) -> Response:
    token = sessions.session_token(request)
    if token:
        await accounts.end_session(ctx, token)
    response = redirect("/login", "signed_out")
    sessions.end(response)
    return response


# ----------------------------------------------------------------------------- first run


def _setup_allowed(request: Request, token: str) -> bool:
    expected: str | None = getattr(request.app.state, "setup_token", None)
    return bool(expected) and hmac.compare_digest(token.encode(), str(expected).encode())


@router.get("/setup")
async def setup_page(request: Request, ctx: Ctx) -> HTMLResponse:
    token = request.query_params.get("token", "")
    if await accounts.has_admin(ctx) or not _setup_allowed(request, token):
        return render(request, "errors/404.html", status_code=404)
    return render(request, "pages/setup.html", {"token": token, "error": "", "email": ""})


@router.post("/setup")
async def setup(request: Request, ctx: Ctx, form: Form) -> Response:
    token, email = text(form, "token"), text(form, "email")
    if not _setup_allowed(request, token):
        return render(request, "errors/404.html", status_code=404)
    password = text(form, "password")
    try:
        if password != text(form, "password_again"):
            raise InvalidInput("the two passwords differ")
        user_id = await accounts.create_first_user(ctx, email=email, password=password)
    except Conflict:
        return render(request, "errors/404.html", status_code=404)
    except InvalidInput as exc:
        return render(
            request,
            "pages/setup.html",
            {"token": token, "error": exc.message, "email": email[:320]},
            status_code=422,
        )
    request.app.state.setup_token = None  # used: the link is dead now
    log.info("web.first_user_created id=%s", user_id)
    return await _signed_in(request, ctx, user_id, "/mailboxes/new")
