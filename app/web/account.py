"""/account: the rep's API tokens (a new one shown once; revoke at once); /account/users:
an administrator adds reps and disables them."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.errors import Conflict, InvalidInput
from app.services import accounts
from app.web.deps import AdminUser, Ctx, Form, PageUser, row_id, text
from app.web.render import redirect, render

router = APIRouter(include_in_schema=False)


async def _account(
    request: Request,
    ctx: Ctx,
    user_id: int,
    *,
    new_token: str = "",
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    tokens = await accounts.list_tokens(ctx, user_id=user_id)
    return render(
        request,
        "pages/account.html",
        {"tokens": tokens, "new_token": new_token, "error": error},
        status_code=status,
    )


@router.get("/account")
async def account(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    return await _account(request, ctx, user.id)


@router.post("/account/tokens")
async def create_token(request: Request, ctx: Ctx, form: Form, user: PageUser) -> Response:
    days = text(form, "expires_days").strip()
    try:
        if days and (not days.isdigit() or not 1 <= int(days) <= 3660):
            raise InvalidInput("the expiry is a number of days between 1 and 3660, or empty")
        expires = ctx.clock() + timedelta(days=int(days)) if days else None
        token = await accounts.create_token_for(
            ctx, user_id=user.id, name=text(form, "name") or "api", expires_at=expires
        )
    except InvalidInput as exc:
        return await _account(request, ctx, user.id, error=exc.message, status=422)
    return await _account(request, ctx, user.id, new_token=token, status=201)


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_token(token_id: int, ctx: Ctx, form: Form, user: PageUser) -> Response:
    await accounts.revoke_token(ctx, user_id=user.id, token_id=row_id(token_id))
    return redirect("/account", "revoked")


async def _users(
    request: Request, ctx: Ctx, *, error: str = "", email: str = "", status: int = 200
) -> HTMLResponse:
    users = await accounts.list_users(ctx)
    return render(
        request,
        "pages/users.html",
        {"users": users, "error": error, "email": email},
        status_code=status,
    )


@router.get("/account/users")
async def users(request: Request, ctx: Ctx, user: AdminUser) -> HTMLResponse:
    return await _users(request, ctx)


@router.post("/account/users")
async def add_user(request: Request, ctx: Ctx, form: Form, user: AdminUser) -> Response:
    email = text(form, "email").strip()
    try:
        await accounts.create_user(
            ctx,
            email=email,
            password=text(form, "password"),
            is_admin=text(form, "is_admin") == "yes",
        )
    except (InvalidInput, Conflict) as exc:
        return await _users(request, ctx, error=exc.message, email=email[:320], status=422)
    return redirect("/account/users", "user_added")


@router.post("/account/users/{user_id}/disable")
async def disable_user(
    request: Request, user_id: int, ctx: Ctx, form: Form, user: AdminUser
) -> Response:
    target = next((u for u in await accounts.list_users(ctx) if u.id == row_id(user_id)), None)
    if target is None:
        return render(request, "errors/404.html", status_code=404)
    if target.id == user.id:
        return await _users(request, ctx, error="you cannot disable yourself", status=409)
    enable = text(form, "enable") == "yes"
    await accounts.set_user_disabled(ctx, email=target.email, disabled=not enable)
    return redirect("/account/users", "saved")
