"""/mailboxes: connect one (presets, "test connection", the first sync's progress), see its
status, tune its rules with a preview and a back-test, sync it now, remove it."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import available_timezones

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.domain.backtest import Backtest
from app.domain.model import Rules
from app.errors import Conflict, InvalidInput, MailServerError
from app.services import backtest as backtest_service
from app.services import mailboxes as service
from app.services import oauth2 as oauth2_service
from app.services import rules as rules_service
from app.services import sync as sync_service
from app.services.rules import RulesPreview
from app.services.rules_schema import RulesBody
from app.web.deps import Ctx, Form, PageUser, row_id, text
from app.web.oauth2 import form_headers
from app.web.render import redirect, render

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, kw_only=True)
class Preset:
    key: str
    label: str
    host: str
    port: int
    security: str
    help: str


PRESETS = (
    Preset(
        key="gmail",
        label="Gmail / Google Workspace",
        host="imap.gmail.com",
        port=993,
        security="tls",
        help="Use an app password (Google Account → Security → 2-Step Verification → App "
        "passwords), not your Google password; your administrator must allow IMAP.",
    ),
    Preset(
        key="microsoft365",
        label="Microsoft 365 / Outlook",
        host="outlook.office365.com",
        port=993,
        security="tls",
        help="Microsoft 365 accepts no passwords over IMAP: use “Connect with Microsoft” where "
        "your operator set it up. Outlook.com accounts take an app password.",
    ),
    Preset(
        key="fastmail",
        label="Fastmail",
        host="imap.fastmail.com",
        port=993,
        security="tls",
        help="Create an app password under Settings → Privacy & Security → "
        "Manage app passwords, with IMAP access.",
    ),
    Preset(
        key="icloud",
        label="iCloud Mail",
        host="imap.mail.me.com",
        port=993,
        security="tls",
        help="Use an app-specific password from account.apple.com (Sign-In and Security); "
        "the username is your address without @icloud.com for older accounts.",
    ),
    Preset(
        key="yahoo",
        label="Yahoo Mail",
        host="imap.mail.yahoo.com",
        port=993,
        security="tls",
        help="Generate an app password under Account Info → Account Security.",
    ),
    Preset(
        key="other",
        label="Other (IMAP)",
        host="",
        port=993,
        security="tls",
        help="Your provider's IMAP server, usually on port 993 with TLS.",
    ),
)
_PRESETS = {p.key: p for p in PRESETS}
_TIMEZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectForm:
    """What the connect form shows (never the password: a password field is not filled back)."""

    preset: str
    name: str
    email: str
    username: str
    host: str
    port: str
    security: str
    aliases: str
    timezone: str
    holiday_country: str


def _form_values(form: FormData | None, preset: Preset) -> ConnectForm:
    """The preset's server, or what was sent."""
    if form is None:
        return ConnectForm(
            preset=preset.key,
            name="Work",
            email="",
            username="",
            host=preset.host,
            port=str(preset.port),
            security=preset.security,
            aliases="",
            timezone="UTC",
            holiday_country="",
        )

    def sent(key: str) -> str:
        return text(form, key).strip()[:500]

    return ConnectForm(
        preset=preset.key,
        name=sent("name"),
        email=sent("email"),
        username=sent("username"),
        host=sent("host"),
        port=sent("port"),
        security=sent("security"),
        aliases=sent("aliases"),
        timezone=sent("timezone"),
        holiday_country=text(form, "holiday_country").strip()[:8],
    )


def _input(form: FormData) -> service.MailboxInput:
    email = text(form, "email").strip()
    aliases = [a.strip() for a in text(form, "aliases").replace(",", "\n").splitlines()]
    port = text(form, "port").strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput("the port must be a number between 1 and 65535, e.g. 993")
    security = text(form, "security")
    if security not in ("tls", "starttls", "plain"):
        raise InvalidInput("pick the security: TLS, STARTTLS or none")
    if not email:
        raise InvalidInput("give your e-mail address")
    password = text(form, "password")
    if not password:
        raise InvalidInput("give the password (or app password) of the mailbox")
    return service.MailboxInput(
        name=text(form, "name").strip() or "Work",
        host=text(form, "host").strip(),
        port=int(port),
        security=security,  # type: ignore[arg-type]  # checked just above
        username=text(form, "username").strip() or email,
        secret=password,
        auth_method="password",
        addresses=[email, *(a for a in aliases if a)],
        timezone=text(form, "timezone").strip() or "UTC",
        holiday_country=text(form, "holiday_country").strip().upper() or None,
    )


async def _connect_page(
    request: Request,
    ctx: Ctx,
    preset: Preset,
    values: ConnectForm,
    *,
    result: str = "",
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "pages/mailbox_new.html",
        {
            "presets": PRESETS,
            "preset": preset,
            "values": values,
            "result": result,
            "error": error,
            "timezones": _TIMEZONES,
            "sign_ins": oauth2_service.choices(ctx),
        },
        status_code=status,
        headers=await form_headers(ctx),
    )


@router.get("/mailboxes")
async def mailbox_list(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    found = await service.list_mailboxes(ctx, user_id=user.id)
    return render(request, "pages/mailboxes.html", {"mailboxes": found})


@router.get("/mailboxes/new")
async def connect_page(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    preset = _PRESETS.get(request.query_params.get("preset", ""), _PRESETS["other"])
    return await _connect_page(request, ctx, preset, _form_values(None, preset))


@router.post("/mailboxes/new")
async def connect(request: Request, ctx: Ctx, form: Form, user: PageUser) -> Response:
    preset = _PRESETS.get(text(form, "preset"), _PRESETS["other"])
    values = _form_values(form, preset)
    try:
        data = _input(form)
        if text(form, "action") == "test":
            folders = await service.check_connection(ctx, data, user_id=user.id)
            shown = ", ".join(folders[:8]) + (" …" if len(folders) > 8 else "")
            return await _connect_page(
                request,
                ctx,
                preset,
                values,
                result=f"Signed in to {data.host}: {len(folders)} folders found ({shown}). "
                "Enter the password again and connect.",
            )
        mailbox_id = await service.create_mailbox(ctx, user_id=user.id, data=data)
    except MailServerError as exc:
        return await _connect_page(request, ctx, preset, values, error=exc.message, status=422)
    except (InvalidInput, Conflict) as exc:
        return await _connect_page(request, ctx, preset, values, error=exc.message, status=422)
    sync_service.start_sync(ctx, request.app.state.background_tasks, mailbox_id, user_id=user.id)
    return redirect(f"/mailboxes/{mailbox_id}/first-sync")


@router.get("/mailboxes/{mailbox_id}/first-sync")
async def first_sync(request: Request, mailbox_id: int, ctx: Ctx, user: PageUser) -> Response:
    """The first sync's progress; the dashboard once it is done (the page reloads itself,
    no JavaScript needed)."""
    mailbox = await service.get_mailbox(ctx, user_id=user.id, mailbox_id=row_id(mailbox_id))
    if mailbox.status == "ok" and mailbox.last_sync_at is not None:
        return redirect("/")
    if mailbox.status == "failed":
        return redirect(f"/mailboxes/{mailbox_id}")
    return render(request, "pages/first_sync.html", {"mailbox": mailbox})


async def _detail(
    request: Request,
    ctx: Ctx,
    user_id: int,
    mailbox_id: int,
    *,
    preview: RulesPreview | None = None,
    backtest: Backtest | None = None,
    rules: RulesForm | None = None,
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    mailbox = await service.get_mailbox(ctx, user_id=user_id, mailbox_id=row_id(mailbox_id))
    folders = await service.folders_read(ctx, user_id=user_id, mailbox_id=mailbox_id)
    saved = await rules_service.get_rules(ctx, user_id=user_id, mailbox_id=mailbox_id)
    sign_in = next(
        (c for c in oauth2_service.choices(ctx) if c.key == mailbox.oauth2_provider), None
    )
    return render(
        request,
        "pages/mailbox.html",
        {
            "mailbox": mailbox,
            "folders": folders,
            "rules": rules or _rules_form(saved),
            "preview": preview,
            "backtest": backtest,
            "error": error,
            "timezones": _TIMEZONES,
            "sign_in": sign_in,
        },
        status_code=status,
        headers=await form_headers(ctx) if sign_in else None,
    )


@router.get("/mailboxes/{mailbox_id}")
async def mailbox_detail(request: Request, mailbox_id: int, ctx: Ctx, user: PageUser) -> Response:
    return await _detail(request, ctx, user.id, mailbox_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class RulesForm:
    """The rules form's text fields, as shown (the saved rules, or what was sent)."""

    wait_business_days: str
    cadence_business_days: str
    max_followups: str
    auto_reply_pause_business_days: str
    response_time_business_hours: str
    work_start: str
    work_end: str
    time_off: str


def _rules_form(rules: Rules) -> RulesForm:
    """Stored rules as the form's text fields."""
    return RulesForm(
        wait_business_days=str(rules.wait_business_days),
        cadence_business_days=", ".join(str(d) for d in rules.cadence_business_days),
        max_followups=str(rules.max_followups),
        auto_reply_pause_business_days=str(rules.auto_reply_pause_business_days),
        response_time_business_hours=f"{rules.response_time_business_hours:g}",
        work_start=rules.work_day_start.strftime("%H:%M"),
        work_end=rules.work_day_end.strftime("%H:%M"),
        time_off="\n".join(f"{t.start.isoformat()} to {t.end.isoformat()}" for t in rules.time_off),
    )


def _rules_of_form(form: FormData) -> tuple[RulesForm, Rules]:
    """The form's text (to show again) and the rules it states, checked like the API's."""

    def sent(key: str) -> str:
        return text(form, key).strip()[:2000]

    shown = RulesForm(
        wait_business_days=sent("wait_business_days"),
        cadence_business_days=sent("cadence_business_days"),
        max_followups=sent("max_followups"),
        auto_reply_pause_business_days=sent("auto_reply_pause_business_days"),
        response_time_business_hours=sent("response_time_business_hours"),
        work_start=sent("work_start"),
        work_end=sent("work_end"),
        time_off=sent("time_off"),
    )
    time_off = []
    for line in shown.time_off.splitlines():
        if not line.strip():
            continue
        start, _, end = line.replace("–", " to ").partition(" to ")
        time_off.append({"start": start.strip(), "end": (end or start).strip()})
    cadence = [c.strip() for c in shown.cadence_business_days.split(",") if c.strip()]
    # The form's text, as JSON would bring it: the body's schema parses and checks it.
    body = {
        "wait_business_days": shown.wait_business_days,
        "cadence_business_days": cadence,
        "max_followups": shown.max_followups,
        "auto_reply_pause_business_days": shown.auto_reply_pause_business_days,
        "response_time_business_hours": shown.response_time_business_hours,
        "working_hours": {"start": shown.work_start, "end": shown.work_end},
        "time_off": time_off,
    }
    try:
        rules = RulesBody.model_validate(body).to_rules()
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'rules'}: {e['msg']}" for e in exc.errors()
        ]
        raise InvalidInput("; ".join(problems)) from None
    return shown, rules


@router.post("/mailboxes/{mailbox_id}/rules")
async def save_rules(
    request: Request, mailbox_id: int, ctx: Ctx, form: Form, user: PageUser
) -> Response:
    shown: RulesForm | None = None
    try:
        shown, rules = _rules_of_form(form)
        changes = service.MailboxEdit(
            timezone=text(form, "timezone").strip() or "UTC",
            holiday_country=text(form, "holiday_country").strip().upper() or None,
        )
        if text(form, "action") == "preview":
            preview = await rules_service.preview_rules(
                ctx, user_id=user.id, mailbox_id=row_id(mailbox_id), rules=rules
            )
            return await _detail(request, ctx, user.id, mailbox_id, preview=preview, rules=shown)
        await service.update_mailbox(
            ctx, user_id=user.id, mailbox_id=row_id(mailbox_id), changes=changes
        )
        await rules_service.put_rules(ctx, user_id=user.id, mailbox_id=mailbox_id, rules=rules)
    except InvalidInput as exc:
        return await _detail(
            request, ctx, user.id, mailbox_id, rules=shown, error=exc.message, status=422
        )
    return redirect(f"/mailboxes/{mailbox_id}", "saved")


@router.post("/mailboxes/{mailbox_id}/backtest")
async def run_backtest(
    request: Request, mailbox_id: int, ctx: Ctx, form: Form, user: PageUser
) -> Response:
    await service.get_mailbox(ctx, user_id=user.id, mailbox_id=row_id(mailbox_id))  # yours?
    report = await backtest_service.backtest_mailbox(ctx, mailbox_id, days=90)
    return await _detail(request, ctx, user.id, mailbox_id, backtest=report)


@router.post("/mailboxes/{mailbox_id}/sync")
async def sync_now(
    request: Request, mailbox_id: int, ctx: Ctx, form: Form, user: PageUser
) -> Response:
    mailbox = await service.get_mailbox(ctx, user_id=user.id, mailbox_id=row_id(mailbox_id))
    if service.is_imported(mailbox):
        return await _detail(
            request,
            ctx,
            user.id,
            mailbox_id,
            error="this mailbox was imported from a file: import the file again to add mail",
            status=409,
        )
    sync_service.start_sync(ctx, request.app.state.background_tasks, mailbox_id, user_id=user.id)
    return redirect(f"/mailboxes/{mailbox_id}", "sync_started")


@router.post("/mailboxes/{mailbox_id}/delete")
async def delete(
    request: Request, mailbox_id: int, ctx: Ctx, form: Form, user: PageUser
) -> Response:
    if text(form, "confirm") != "yes":
        return await _detail(
            request,
            ctx,
            user.id,
            mailbox_id,
            error="tick the box to confirm: everything read from this mailbox is forgotten",
            status=422,
        )
    await service.delete_mailbox(ctx, user_id=user.id, mailbox_id=row_id(mailbox_id))
    return redirect("/mailboxes", "deleted")
