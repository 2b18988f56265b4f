"""/webhooks: subscribe a URL (its secret shown once), the endpoints with their delivery
log, retry a delivery, send a test event, remove an endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.errors import Conflict, InvalidInput
from app.services import webhooks as service
from app.web.deps import Ctx, Form, PageUser, row_id, text
from app.web.render import redirect, render

router = APIRouter(include_in_schema=False)


async def _list(
    request: Request,
    ctx: Ctx,
    user_id: int,
    *,
    created: tuple[int, str] | None = None,
    error: str = "",
    values: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    hooks = await service.list_webhooks(ctx, user_id=user_id)
    return render(
        request,
        "pages/webhooks.html",
        {
            "hooks": [service.public_view(h) for h in hooks],
            "event_types": service.known_event_types(),
            "created": created,
            "error": error,
            "values": values or {"url": "", "description": ""},
        },
        status_code=status,
    )


@router.get("/webhooks")
async def webhook_list(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    return await _list(request, ctx, user.id)


@router.post("/webhooks")
async def create(request: Request, ctx: Ctx, form: Form, user: PageUser) -> Response:
    url, description = text(form, "url").strip(), text(form, "description").strip()
    types = [t for t in form.getlist("event_types") if isinstance(t, str)]
    try:
        created = await service.create_webhook(
            ctx, user_id=user.id, url=url, event_types=types or None, description=description
        )
    except InvalidInput as exc:
        values = {"url": url[:2000], "description": description[:500]}
        return await _list(request, ctx, user.id, error=exc.message, values=values, status=422)
    return await _list(request, ctx, user.id, created=created, status=201)


async def _detail(
    request: Request, ctx: Ctx, user_id: int, webhook_id: int, *, error: str = "", status: int = 200
) -> HTMLResponse:
    hook = await service.get_webhook(ctx, user_id=user_id, webhook_id=row_id(webhook_id))
    deliveries = await service.list_deliveries(
        ctx, user_id=user_id, webhook_id=webhook_id, limit=50
    )
    return render(
        request,
        "pages/webhook.html",
        {
            "hook": service.public_view(hook),
            "deliveries": [service.delivery_view(d) for d in deliveries],
            "error": error,
        },
        status_code=status,
    )


@router.get("/webhooks/{webhook_id}")
async def detail(request: Request, webhook_id: int, ctx: Ctx, user: PageUser) -> HTMLResponse:
    return await _detail(request, ctx, user.id, webhook_id)


@router.post("/webhooks/{webhook_id}/test")
async def test(webhook_id: int, ctx: Ctx, form: Form, user: PageUser) -> Response:
    await service.send_test(ctx, user_id=user.id, webhook_id=row_id(webhook_id))
    return redirect(f"/webhooks/{webhook_id}", "tested")


@router.post("/webhooks/{webhook_id}/delete")
async def delete(webhook_id: int, ctx: Ctx, form: Form, user: PageUser) -> Response:
    await service.delete_webhook(ctx, user_id=user.id, webhook_id=row_id(webhook_id))
    return redirect("/webhooks", "deleted")


@router.post("/webhooks/{webhook_id}/enable")
async def enable(webhook_id: int, ctx: Ctx, form: Form, user: PageUser) -> Response:
    await service.enable_webhook(ctx, user_id=user.id, webhook_id=row_id(webhook_id))
    return redirect(f"/webhooks/{webhook_id}", "saved")


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/retry")
async def retry(
    request: Request, webhook_id: int, delivery_id: int, ctx: Ctx, form: Form, user: PageUser
) -> Response:
    try:
        await service.retry_delivery(ctx, user_id=user.id, delivery_id=row_id(delivery_id))
    except Conflict as exc:
        return await _detail(request, ctx, user.id, webhook_id, error=exc.message, status=409)
    return redirect(f"/webhooks/{webhook_id}", "retried")
