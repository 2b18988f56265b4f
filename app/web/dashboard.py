"""/ — the dashboard: who waits for the rep's answer, which threads went quiet (each with
its draft one click away), and how many threads are in each state."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.services import overview
from app.web.deps import Ctx, PageUser
from app.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def dashboard(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    board = await overview.dashboard(ctx, user_id=user.id)
    return render(request, "pages/dashboard.html", {"board": board})
