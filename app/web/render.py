"""The pages' Jinja2 environment (autoescaped, StrictUndefined) and how a page is answered."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

import app as package
from app.resources import templates_dir
from app.services.overview import local_moment
from app.web import sessions

# Notices a redirect may ask the next page to show (by key: no text travels in the URL).
NOTICES = {
    "approved": "Approved: the follow-up is in your Drafts folder, ready to send.",
    "sent": "Sent: the follow-up went out over SMTP, and a copy is in Sent.",
    "downloaded": "Approved: download the .eml and send it from your mail client.",
    "dismissed": "Dismissed: no follow-up for this step.",
    "snoozed": "Snoozed.",
    "saved": "Saved.",
    "closed": "Closed: the thread is no longer watched.",
    "reopened": "Reopened: the thread is watched again from now.",
    "answered": "Noted: the thread counts as answered.",
    "revoked": "Revoked: the token no longer works.",
    "signed_out": "You are signed out.",
    "sync_started": "Reading new mail now.",
    "reconnected": "Reconnected: reading new mail now.",
    "deleted": "Deleted.",
    "retried": "The delivery is queued again.",
    "tested": "A test event is on its way.",
    "user_added": "The user can sign in now.",
}
STATE_LABELS = {
    "quiet": "Quiet — follow-up due",
    "awaiting_reply": "Awaiting reply",
    "replied": "Replied",
    "paused": "Paused",
    "snoozed": "Snoozed",
    "bounced": "Bounced",
    "closed": "Closed",
    "ignored": "Ignored",
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(templates_dir()),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["version"] = package.__version__
    env.globals["state_labels"] = STATE_LABELS
    env.filters["moment"] = _moment
    env.filters["urlquote"] = lambda v: quote(str(v), safe="")
    return env


def render(
    request: Request,
    template: str,
    values: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    notice = NOTICES.get(request.query_params.get("notice", ""), "")
    context = {
        "request": request,
        "user": getattr(request.state, "user", None),
        "csrf_token": sessions.csrf_token(request),
        "notice": notice,
        "now": _now(request),
        "path": request.url.path,
        **(values or {}),
    }
    body = environment().get_template(template).render(context)
    response = HTMLResponse(body, status_code=status_code, headers=headers)
    sessions.set_cookies(request, response)
    # Pages show a user's own data: never stored by a shared cache or the back button's.
    response.headers["Cache-Control"] = "no-store"
    return response


def _moment(value: datetime | str | None, timezone: str, now: datetime) -> str:
    """A stored time (or the API view's ISO text of one) as the mailbox's local moment."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return local_moment(value, timezone, now)


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.context.clock()
    return now


def redirect(url: str, notice: str | None = None) -> RedirectResponse:
    """After a POST: 303 to a page of ours (a GET), with an optional notice key."""
    if notice:
        url += ("&" if "?" in url else "?") + f"notice={notice}"
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None) -> str:
    """A local path to go to after signing in; anything else (another site) becomes /."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
