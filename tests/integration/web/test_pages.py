"""The rep's pages, in process, on SQLite and PostgreSQL: what each page shows, that every
form needs its CSRF token, that nothing of another user's is reachable, and the sign-in
rules. The flows a rep clicks through also run in Chromium (tests/e2e)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from app.services import accounts, imports, overview, webhooks
from app.services import sync as sync_service
from app.services.context import Context
from app.storage import drafts as draft_store
from app.storage.engine import reading
from tests.factories import REP, ImapUser, answer_the_proposal, connect, now_utc, populate
from tests.support.pages import Browser, browser, parse

pytestmark = pytest.mark.integration
OWNER = ("owner@seller.example", "pw-123456789")  # what `connect` creates
OTHER = ("other@seller.example", "other-password")


@dataclass
class Setup:
    mailbox_id: int
    quiet_thread: int
    draft_id: int
    webhook_id: int


@pytest.fixture
async def setup(ctx: Context, imap_user: ImapUser) -> Setup:
    """The owner's synced mailbox (a quiet thread with its draft) and a webhook."""
    populate(imap_user, now_utc())
    user_id, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)
    quiet = await overview.thread_list(ctx, user_id=user_id, state=overview.ThreadState.QUIET)
    (line,) = quiet.lines
    assert line.draft_id is not None
    webhook_id, _ = await webhooks.create_webhook(
        ctx, user_id=user_id, url="http://127.0.0.1:9/hook", event_types=None
    )
    return Setup(
        mailbox_id=mailbox_id, quiet_thread=line.id, draft_id=line.draft_id, webhook_id=webhook_id
    )


@pytest.fixture
async def owner(ctx: Context, setup: Setup) -> AsyncIterator[Browser]:
    b = browser(ctx)
    await b.sign_in(*OWNER)
    yield b
    await b.aclose()


@pytest.fixture
async def other(ctx: Context) -> AsyncIterator[Browser]:
    await accounts.create_user(ctx, email=OTHER[0], password=OTHER[1])
    b = browser(ctx, client_ip="127.0.0.2")
    await b.sign_in(*OTHER)
    yield b
    await b.aclose()


def object_pages(s: Setup) -> list[str]:
    return [
        f"/threads/{s.quiet_thread}",
        f"/drafts/{s.draft_id}",
        f"/drafts/{s.draft_id}/eml",
        f"/mailboxes/{s.mailbox_id}",
        f"/mailboxes/{s.mailbox_id}/first-sync",
        f"/webhooks/{s.webhook_id}",
    ]


def object_forms(s: Setup) -> list[str]:
    return [
        f"/threads/{s.quiet_thread}/snooze",
        f"/threads/{s.quiet_thread}/close",
        f"/threads/{s.quiet_thread}/reopen",
        f"/threads/{s.quiet_thread}/answered",
        f"/drafts/{s.draft_id}/question",
        f"/drafts/{s.draft_id}/approve",
        f"/drafts/{s.draft_id}/dismiss",
        f"/drafts/{s.draft_id}/snooze",
        f"/mailboxes/{s.mailbox_id}/rules",
        f"/mailboxes/{s.mailbox_id}/backtest",
        f"/mailboxes/{s.mailbox_id}/sync",
        f"/mailboxes/{s.mailbox_id}/delete",
        f"/webhooks/{s.webhook_id}/test",
        f"/webhooks/{s.webhook_id}/enable",
        f"/webhooks/{s.webhook_id}/delete",
        f"/webhooks/{s.webhook_id}/deliveries/1/retry",
    ]


async def test_the_dashboard_puts_who_waits_for_you_first_then_quiet_threads_with_drafts(
    owner: Browser, setup: Setup
) -> None:
    page = await owner.get("/")
    assert page.status == 200
    text = page.text
    owed, quiet, counts = (
        text.index("Waiting for your answer"),
        text.index("Quiet — follow-up due"),
        text.index("All threads"),
    )
    assert owed < quiet < counts
    # The replied thread the rep has not answered, with who, how long and since when.
    assert re.search(
        r"Anna ?, Buyer Pricing — Müller GmbH waiting for your answer for \d+ business days "
        r"since their e-mail of \w{3} \d{1,2} \w{3}",
        text,
    ), text
    # The quiet thread: the real elapsed time with the full date, the step, its draft.
    assert re.search(
        r"Proposal for Buyer Inc quiet for \d+ business days since your e-mail of "
        r"\w{3} \d{1,2} \w{3} · follow-up 1 of 3",
        text,
    ), text
    assert f'href="/drafts/{setup.draft_id}"' in page.html
    assert "1 Quiet — follow-up due" in text and "1 Ignored" in text


async def test_pages_without_a_session_go_to_sign_in(ctx: Context, setup: Setup) -> None:
    anonymous = browser(ctx)
    for url in ["/", "/threads", "/drafts", "/mailboxes", "/webhooks", "/account"]:
        page = await anonymous.get(url)
        assert page.status == 303 and page.location == f"/login?next={url}", url
    page = await anonymous.get(f"/threads/{setup.quiet_thread}?x=1")
    assert page.location == f"/login?next=/threads/{setup.quiet_thread}?x=1"
    await anonymous.aclose()


async def test_another_users_objects_answer_404_on_every_page_and_form(
    ctx: Context, owner: Browser, other: Browser, setup: Setup
) -> None:
    for url in object_pages(setup):
        assert (await owner.get(url)).status in (200, 303), url  # they exist, for the owner
        page = await other.get(url)
        assert page.status == 404, url
        assert "Not found" in page.text and "Proposal" not in page.text
    token = (await other.get("/")).forms[0].fields["csrf_token"]  # a valid token of theirs
    for url in object_forms(setup):
        values = {"question": "x", "confirm": "yes", "until": "2030-01-07", "note": "x"}
        page = await other.post(url, {"csrf_token": token, **values})
        assert page.status == 404, (url, page.status, page.text[:200])
    listed = await other.get(f"/threads?mailbox={setup.mailbox_id}")
    assert "Proposal for Buyer Inc" not in listed.text and "No threads here" in listed.text
    for url in ["/", "/threads", "/drafts", "/mailboxes", "/webhooks"]:
        page = await other.get(url)
        assert "Buyer" not in page.text and "127.0.0.1:9" not in page.text, url
    # Nothing the other user sent changed anything.
    page = await owner.get(f"/threads/{setup.quiet_thread}")
    assert "Quiet — follow-up due" in page.text


async def test_every_form_without_its_csrf_token_is_refused_with_403(
    owner: Browser, setup: Setup
) -> None:
    forms = [*object_forms(setup), "/logout", "/login", "/webhooks", "/mailboxes/new"]
    forms += ["/account/tokens", "/account/tokens/1/revoke", "/account/users", "/setup"]
    for url in forms:
        assert (await owner.post(url, {"question": "x"})).status == 403, url
        assert (await owner.post(url, {"csrf_token": "forged"})).status == 403, url
    # Still signed in, nothing changed.
    page = await owner.get(f"/threads/{setup.quiet_thread}")
    assert page.status == 200 and "Quiet — follow-up due" in page.text


async def test_security_headers_and_cookie_flags(ctx: Context, owner: Browser) -> None:
    for url in ["/", "/login", "/api/v1/threads", "/docs"]:
        answer = await owner.client.get(url)
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("style-src")[0]
        assert "frame-ancestors 'none'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "same-origin"
    fresh = browser(ctx)
    login = await fresh.client.get("/login")
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    form = (await fresh.get("/login")).form("/login")
    signed = await fresh.client.post(
        "/login", data={**form.fields, "email": OWNER[0], "password": OWNER[1]}
    )
    assert "rs_session=" in signed.headers["set-cookie"]
    assert "HttpOnly" in signed.headers["set-cookie"]
    await fresh.aclose()


async def test_an_https_public_url_makes_the_session_cookie_secure(
    ctx: Context, setup: Setup
) -> None:
    ctx.settings = ctx.settings.model_copy(update={"public_url": "https://rs.example.com"})
    b = browser(ctx, base_url="https://rs.example.com")
    login = await b.client.get("/login")
    assert "Secure" in login.headers["set-cookie"]
    form = parse(login).form("/login")
    signed = await b.client.post(
        "/login", data={**form.fields, "email": OWNER[0], "password": OWNER[1]}
    )
    assert signed.status_code == 303
    assert (
        "rs_session=" in signed.headers["set-cookie"] and "Secure" in signed.headers["set-cookie"]
    )
    assert (await b.get("/")).status == 200
    await b.aclose()


async def test_sign_in_errors_and_limits(ctx: Context, setup: Setup) -> None:
    b = browser(ctx, client_ip="127.0.0.9")
    wrong = await b.submit("/login", "/login", email=OWNER[0], password="wrong-password")
    assert wrong.status == 401 and "wrong e-mail or password" in wrong.text
    assert 'name="password"' in wrong.html and "wrong-password" not in wrong.html
    for _ in range(4):
        await b.submit("/login", "/login", email=OWNER[0], password="wrong-password")
    refused = await b.submit("/login", "/login", email=OWNER[0], password=OWNER[1])
    assert refused.status == 429 and "too many failed sign-ins" in refused.text
    # From another address the account is still limited (per account) ...
    elsewhere = browser(ctx, client_ip="127.0.0.10")
    again = await elsewhere.submit("/login", "/login", email=OWNER[0], password=OWNER[1])
    assert again.status == 429
    # ... and one address trying many accounts is limited too (per address).
    for n in range(20):
        await elsewhere.submit("/login", "/login", email=f"x{n}@seller.example", password="nope")
    other = await elsewhere.submit("/login", "/login", email="z@seller.example", password="nope")
    assert other.status == 429
    await b.aclose()
    await elsewhere.aclose()


async def test_the_setup_link_creates_the_first_admin_once(ctx: Context) -> None:
    b = browser(ctx)
    app = b.client._transport.app  # type: ignore[attr-defined]
    app.state.setup_token = "the-one-time-token-0123456789"
    assert (await b.get("/setup?token=wrong")).status == 404
    made = await b.submit(
        "/setup?token=the-one-time-token-0123456789",
        "/setup",
        email="lead@seller.example",
        password="first-password",
        password_again="first-password",
    )
    assert made.status == 303 and made.location == "/mailboxes/new"
    assert (await b.get("/mailboxes/new")).status == 200  # signed in
    (user,) = await accounts.list_users(ctx)
    assert user.is_admin and user.email == "lead@seller.example"
    assert (await b.get("/setup?token=the-one-time-token-0123456789")).status == 404
    await b.aclose()


async def test_a_crash_is_a_500_page_without_a_traceback(
    owner: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(overview, "dashboard", broken)
    page = await owner.get("/")
    assert page.status == 500
    assert "Something went wrong" in page.text
    assert "internal detail" not in page.html and "Traceback" not in page.html
    unknown = await owner.get("/no-such-page")
    assert unknown.status == 404 and "Not found" in unknown.text


async def test_thread_actions_by_hand(owner: Browser, setup: Setup) -> None:
    url = f"/threads/{setup.quiet_thread}"
    closed = await owner.submit(url, f"{url}/close", reason="not a fit this year")
    assert closed.status == 303
    page = await owner.get(url)
    assert "closed: by you — not a fit this year" in page.text
    reopened = await owner.submit(url, f"{url}/reopen")
    assert reopened.status == 303
    day = (now_utc() + timedelta(days=7)).date().isoformat()
    snoozed = await owner.submit(url, f"{url}/snooze", until=day)
    assert snoozed.status == 303
    assert "snoozed until" in (await owner.get(url)).text
    await owner.submit(url, f"{url}/reopen")
    answered = await owner.submit(url, f"{url}/answered", note="they called")
    assert answered.status == 303
    assert "“they called”" in (await owner.get(url)).text
    bad = await owner.submit(f"/threads/{setup.quiet_thread}", f"{url}/snooze", until="soon")
    assert bad.status == 422 and "pick the day" in bad.text


async def test_approving_after_they_answered_says_so_and_keeps_the_draft(
    ctx: Context, owner: Browser, setup: Setup, imap_user: ImapUser
) -> None:
    answer_the_proposal(imap_user, "Yes, let's talk next week.", "late-answer@buyer.example")
    url = f"/drafts/{setup.draft_id}"
    page = await owner.submit(url, f"{url}/approve", question="Any news?")
    assert page.status == 409
    assert "no longer waiting for this follow-up" in page.text and "replied" in page.text
    async with reading(ctx.engine) as conn:
        draft = await draft_store.get_draft(conn, setup.draft_id)
    assert draft is not None and draft.state != "approved"


async def test_draft_question_edit_and_suggestions(owner: Browser, setup: Setup) -> None:
    url = f"/drafts/{setup.draft_id}"
    page = await owner.get(url)
    assert "Or pick another question" in page.text
    picks = [f for f in page.forms if f.action == f"{url}/question" and "question" in f.fields]
    assert len(picks) >= 2
    chosen = picks[-1].fields["question"]
    saved = await owner.post(f"{url}/question", picks[-1].fields)
    assert saved.status == 303
    again = await owner.get(url)
    assert again.form(f"{url}/approve").fields["question"] == chosen
    empty = await owner.submit(url, f"{url}/question", question="   ")
    assert empty.status == 303  # nothing to change: the question stays
    assert (await owner.get(url)).form(f"{url}/approve").fields["question"] == chosen


async def test_connect_page_tests_in_plain_words_and_never_fills_the_password_back(
    ctx: Context, owner: Browser, imap_user: ImapUser
) -> None:
    values = {
        "email": REP,
        "username": imap_user.username,
        "password": "not-the-password",
        "host": imap_user.server.host,
        "port": str(imap_user.server.port),
        "security": "plain",
        "name": "Second",
        "timezone": "Europe/Berlin",
        "action": "test",
    }
    refused = await owner.submit("/mailboxes/new", "/mailboxes/new", **values)
    assert refused.status == 422
    assert "AUTHENTICATIONFAILED" in refused.text or "refused the login" in refused.text
    assert "not-the-password" not in refused.html
    assert refused.form("/mailboxes/new").fields["password"] == ""
    ok = await owner.submit(
        "/mailboxes/new", "/mailboxes/new", **{**values, "password": imap_user.password}
    )
    assert ok.status == 200 and "folders found" in ok.text
    made = await owner.submit(
        "/mailboxes/new",
        "/mailboxes/new",
        **{**values, "password": imap_user.password, "action": "connect"},
    )
    assert made.status == 303 and re.fullmatch(r"/mailboxes/\d+/first-sync", made.location or "")
    # The first sync's page reloads itself while it runs, then leads to the dashboard.
    for _ in range(300):
        progress = await owner.get(made.location or "")
        if progress.status == 303:
            break
        assert 'http-equiv="refresh"' in progress.html and "Reading Second" in progress.text
        await asyncio.sleep(0.1)
    assert progress.location == "/"
    preset = await owner.get("/mailboxes/new?preset=gmail")
    assert preset.form("/mailboxes/new").fields["host"] == "imap.gmail.com"
    assert "app password" in preset.text


async def test_rules_form_previews_saves_and_back_tests(owner: Browser, setup: Setup) -> None:
    url = f"/mailboxes/{setup.mailbox_id}"
    page = await owner.get(url)
    assert "Folders read" in page.text and "INBOX" in page.text and "Junk" not in page.text
    preview = await owner.submit(url, f"{url}/rules", wait_business_days="30", action="preview")
    assert preview.status == 200
    assert re.search(r"Under these rules 1 of \d+ threads would change", preview.text)
    assert "Quiet — follow-up due → Awaiting reply" in preview.text
    bad = await owner.submit(url, f"{url}/rules", cadence_business_days="3, x", action="save")
    assert bad.status == 422 and "cadence_business_days" in bad.text
    saved = await owner.submit(
        url, f"{url}/rules", wait_business_days="4", time_off="2030-01-02 to 2030-01-09"
    )
    assert saved.status == 303
    page = await owner.get(url)
    assert page.form(f"{url}/rules").fields["wait_business_days"] == "4"
    assert "2030-01-02 to 2030-01-09" in page.html
    tested = await owner.submit(url, f"{url}/backtest")
    assert re.search(r"these rules would have nudged \d+ of \d+ threads", tested.text)


async def test_webhooks_page_shows_the_secret_once(owner: Browser) -> None:
    made = await owner.submit(
        "/webhooks", "/webhooks", url="http://127.0.0.1:9/crm", description="CRM"
    )
    assert made.status == 201
    secret = re.search(r"whsec_[A-Za-z0-9+/=]+", made.text)
    assert secret is not None
    listed = await owner.get("/webhooks")
    assert "127.0.0.1:9/crm" in listed.text and "whsec_" not in listed.html


async def test_tokens_page_and_api_revoke_at_once(ctx: Context, owner: Browser) -> None:
    made = await owner.submit("/account", "/account/tokens", name="CRM sync")
    assert made.status == 201
    token = re.search(r"rs_[A-Za-z0-9_\-]+", made.text)
    assert token is not None
    api = {"Authorization": f"Bearer {token.group(0)}"}
    listed = await owner.client.get("/api/v1/tokens", headers=api)
    assert listed.status_code == 200
    (item,) = [t for t in listed.json()["items"] if t["name"] == "CRM sync"]
    assert token.group(0) not in listed.text and item["last_used_at"] is not None
    page = await owner.get("/account")
    assert "CRM sync" in page.text and token.group(0) not in page.html
    revoked = await owner.submit("/account", f"/account/tokens/{item['id']}/revoke")
    assert revoked.status == 303
    after = await owner.client.get("/api/v1/threads", headers=api)
    assert after.status_code == 401


async def test_a_disabled_user_is_signed_out_at_once(
    ctx: Context, owner: Browser, setup: Setup
) -> None:
    token = await accounts.create_token(ctx, email=OWNER[0])
    await accounts.set_user_disabled(ctx, email=OWNER[0], disabled=True)
    assert (await owner.get("/")).status == 303
    answer = await owner.client.get("/api/v1/threads", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    again = browser(ctx)
    refused = await again.submit("/login", "/login", email=OWNER[0], password=OWNER[1])
    assert refused.status == 401
    await again.aclose()


async def test_admin_pages_are_for_admins_only(
    ctx: Context, owner: Browser, other: Browser
) -> None:
    assert (await owner.get("/account/users")).status == 404  # `connect` makes a rep
    await accounts.create_user(
        ctx, email="boss@seller.example", password="boss-password", is_admin=True
    )
    boss = browser(ctx)
    await boss.sign_in("boss@seller.example", "boss-password")
    added = await boss.submit(
        "/account/users", "/account/users", email="new@seller.example", password="new-password"
    )
    assert added.status == 303
    users = await boss.get("/account/users")
    row = next(f for f in users.forms if f.action.endswith("/disable") and "enable" not in f.fields)
    assert (await boss.post(row.action, row.fields)).status == 303
    await boss.aclose()


async def test_docs_work_offline(owner: Browser) -> None:
    page = await owner.client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources)
    for source in sources:
        assert (await owner.client.get(source)).status_code == 200, source
    assert (await owner.client.get("/openapi.json")).status_code == 200


async def test_an_imported_mailboxs_draft_is_approved_as_a_download(
    ctx: Context, tmp_path: Path
) -> None:
    from tests.factories import export

    await accounts.create_user(ctx, email=OWNER[0], password=OWNER[1])
    await imports.import_mail(
        ctx, export("mbox", tmp_path), email=OWNER[0], mailbox_name="Export", addresses=[REP]
    )
    b = browser(ctx)
    await b.sign_in(*OWNER)
    board = await b.get("/")
    (draft_url,) = set(re.findall(r'href="(/drafts/\d+)"', board.html))
    page = await b.get(draft_url)
    assert "Approve and download .eml" in page.text and "Drafts folder" not in page.text
    approved = await b.submit(draft_url, f"{draft_url}/approve", question="Any news on this?")
    assert approved.status == 303 and approved.location == f"{draft_url}?notice=downloaded"
    done = await b.get(approved.location)
    assert "Download the .eml" in done.text
    eml = await b.client.get(f"{draft_url}/eml")
    assert eml.status_code == 200 and eml.headers["content-type"] == "message/rfc822"
    assert "attachment" in eml.headers["content-disposition"]
    assert b"Any news on this?" in eml.content and b"Proposal for Buyer Inc" in eml.content
    await b.aclose()
