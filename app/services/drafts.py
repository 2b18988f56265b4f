"""Reviewing drafts: list, read, edit, approve (into the rep's Drafts folder, or sent over
SMTP), dismiss, snooze. A mailbox's templates and delivery settings: `draft_settings`.

Approving is idempotent by construction: the draft keeps one Message-ID for all its versions,
so approving finds what is already in the Drafts folder by it, appends only a new version,
and removes the versions it replaces.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from app.domain.events import EventType
from app.domain.folders import pick_folder
from app.drafts.message import recompose, to_bytes, with_date
from app.errors import Conflict, InvalidInput, MailAuthError, NotFound
from app.mail.imap import ImapSession, Security
from app.mail.smtp import SmtpAccount, send_message
from app.services import oauth2_tokens
from app.services import sync as sync_service
from app.services.context import Context
from app.services.followups import (
    DraftDetailView,
    DraftView,
    announce,
    draft_detail,
    draft_view,
    settings_of,
)
from app.services.mailboxes import account_of, open_mailbox_session, stored_account
from app.services.mailhosts import checked_addresses
from app.services.paging import decode_cursor, encode_cursor, split_page
from app.services.text import plain_text
from app.storage import drafts as store
from app.storage import mailboxes as mailbox_store
from app.storage import threads as thread_store
from app.storage.drafts import DraftChange, DraftRow, DraftSettings
from app.storage.engine import reading
from app.storage.threads import ThreadRow

log = logging.getLogger(__name__)
MAX_PAGE = 200
MAX_QUESTION_CHARS = 2000
MAX_BODY_CHARS = 200_000
MAX_SNOOZE = timedelta(days=366)
Delivery = Literal["imap_draft", "smtp"]  # asked for; a file's mailbox records "download"
DRAFT_FLAGS = ("\\Draft", "\\Seen")
# Used when the server marks no folder \Drafts or \Sent (RFC 6154).
_DRAFTS_NAMES = ("drafts", "draft", "entwürfe", "brouillons", "borradores", "bozze")
_SENT_NAMES = ("sent", "sent items", "sent messages", "sent mail", "gesendet", "envoyés")
UNSET: Any = object()  # a PATCH field that was not given
_approving: dict[int, asyncio.Lock] = {}


# ----------------------------------------------------------------------------- reading


async def list_drafts(
    ctx: Context,
    *,
    user_id: int,
    thread_id: int | None = None,
    mailbox_id: int | None = None,
    state: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[DraftView], str | None]:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    before = decode_cursor("d", cursor) if cursor else None
    now = ctx.clock()
    async with reading(ctx.engine) as conn:
        rows = await store.list_drafts(
            conn,
            user_id=user_id,
            now=now,
            thread_id=thread_id,
            mailbox_id=mailbox_id,
            state=state,
            before_id=before,
            limit=limit + 1,
        )
    page, more = split_page(rows, limit)
    next_cursor = encode_cursor("d", page[-1].id) if more else None
    return [draft_view(r, now) for r in page], next_cursor


async def get_draft(ctx: Context, *, user_id: int, draft_id: int) -> DraftDetailView:
    row = await _draft(ctx, user_id, draft_id)
    return draft_detail(row, ctx.clock())


async def raw_draft(ctx: Context, *, user_id: int, draft_id: int) -> bytes:
    return bytes((await _draft(ctx, user_id, draft_id)).raw)


# ----------------------------------------------------------------------------- changing


async def edit_draft(
    ctx: Context, *, user_id: int, draft_id: int, question: Any = UNSET, body: Any = UNSET
) -> DraftView:
    """A new question, or the whole text rewritten (`body`; None goes back to question +
    forward only while the forward is still in the draft). An approved draft goes back to
    pending: approving it again replaces the copy in the Drafts folder."""
    row = await _draft(ctx, user_id, draft_id)
    _refuse_if_final(row, "edited")
    rewritten = row.body is not None and body is UNSET
    if question is not UNSET and rewritten:
        raise Conflict(
            "this draft's whole text was rewritten, so the question is no longer separate in "
            "it: edit the body instead"
        )
    new_question = row.question if question is UNSET else _clean_question(question)
    new_body: str | None = row.body if body is UNSET else body
    if new_body is not None:
        if not new_body.strip():
            raise InvalidInput("body must not be empty: give null to drop a rewritten body")
        if len(new_body) > MAX_BODY_CHARS:
            raise InvalidInput(f"body is longer than {MAX_BODY_CHARS} characters")
        plain_text(new_body, "body")
    elif row.body is not None:
        raise Conflict(
            "this draft's whole text was rewritten, so the forwarded e-mail is no longer in "
            "it: edit the body instead"
        )
    if question is UNSET and body is UNSET:
        return draft_view(row, ctx.clock())
    now = ctx.clock()
    raw = to_bytes(
        recompose(
            row.raw, old_question=row.question, question=new_question, body=new_body, date=now
        )
    )
    change = DraftChange(
        question=new_question,
        body=new_body,
        raw=raw,
        revision=row.revision + 1,
        state="pending" if row.state == "approved" else row.state,
    )
    async with ctx.engine.begin() as conn:
        updated = await store.update_draft(conn, draft_id, change, now=now, revision=row.revision)
    if updated is None:
        raise Conflict("the draft changed meanwhile: read it again and retry")
    return draft_view(updated, now)


async def dismiss_draft(
    ctx: Context, *, user_id: int, draft_id: int, reason: str | None = None
) -> DraftView:
    row = await _draft(ctx, user_id, draft_id)
    if row.state == "dismissed":
        return draft_view(row, ctx.clock())
    if row.state == "approved":
        raise Conflict(
            f"draft {draft_id} is approved and in your Drafts folder: delete it there instead"
        )
    reason = plain_text((reason or "").strip()[:1000], "reason") or None
    async with ctx.engine.begin() as conn:
        updated = await store.update_draft(
            conn,
            draft_id,
            DraftChange(state="dismissed", dismiss_reason=reason),
            now=ctx.clock(),
        )
    if updated is None:
        raise NotFound(f"no draft {draft_id}")
    return draft_view(updated, ctx.clock())


async def snooze_draft(
    ctx: Context, *, user_id: int, draft_id: int, until: datetime | None = None
) -> DraftView:
    """Out of the pending list until `until` (default: one day)."""
    row = await _draft(ctx, user_id, draft_id)
    _refuse_if_final(row, "snoozed")
    if row.state == "approved":
        raise Conflict(f"draft {draft_id} is approved already: there is nothing to snooze")
    now = ctx.clock()
    until = until or now + timedelta(days=1)
    if until.tzinfo is None:
        raise InvalidInput("until must carry a time zone, e.g. 2026-12-01T09:00:00+01:00")
    if not now < until <= now + MAX_SNOOZE:
        raise InvalidInput("until must be in the future and within a year")
    async with ctx.engine.begin() as conn:
        updated = await store.update_draft(
            conn, draft_id, DraftChange(state="snoozed", snoozed_until=until), now=now
        )
    if updated is None:
        raise NotFound(f"no draft {draft_id}")
    return draft_view(updated, now)


async def approve_draft(
    ctx: Context, *, user_id: int, draft_id: int, delivery: Delivery = "imap_draft"
) -> DraftView:
    """Re-read the mailbox first: when the thread is no longer quiet (a reply came in),
    refuse with Conflict naming its state. Then put the draft into the Drafts folder (or
    send it over SMTP when the mailbox enables that), once. A mailbox imported from a file
    has no server: its draft is recorded approved for download (delivery "download")."""
    # A double click must not race two APPENDs (or two sends) of one draft in this process.
    lock = _approving.setdefault(draft_id, asyncio.Lock())
    try:
        # It waits on the mail server (a sync, then APPEND or SMTP): one of the user's slots.
        with ctx.mail_slots.hold(user_id):
            async with lock:
                return await _approve(ctx, user_id=user_id, draft_id=draft_id, delivery=delivery)
    finally:
        if not lock.locked():
            _approving.pop(draft_id, None)


async def _approve(ctx: Context, *, user_id: int, draft_id: int, delivery: Delivery) -> DraftView:
    row = await _draft(ctx, user_id, draft_id)
    _refuse_if_final(row, "approved")
    async with reading(ctx.engine) as conn:
        mailbox = await mailbox_store.get_mailbox(conn, row.mailbox_id, user_id=user_id)
        settings = settings_of(await store.get_settings(conn, row.mailbox_id))
    if mailbox is None:
        raise NotFound(f"no draft {draft_id}")
    if mailbox["auth_method"] == mailbox_store.FILE_SOURCE:
        return await _offer_download(ctx, row, delivery)
    if delivery == "smtp" and not settings.smtp_enabled:
        raise Conflict(
            "SMTP sending is not enabled for this mailbox: set it up with "
            f"PUT /api/v1/mailboxes/{mailbox['id']}/draft-settings, or approve into Drafts"
        )
    await sync_service.sync_mailbox(
        ctx, mailbox["id"], user_id=user_id, wait_for_lease=ctx.settings.lease_seconds
    )
    async with reading(ctx.engine) as conn:
        # Re-read after the sync: it may have changed the thread, the draft and the mailbox
        # (its status, a renewed OAuth2 token).
        mailbox = await mailbox_store.get_mailbox(conn, row.mailbox_id, user_id=user_id)
        thread = await thread_store.get_thread(conn, row.thread_id, user_id=user_id)
        row = await store.get_draft(conn, draft_id, user_id=user_id) or row
        waiting = await store.thread_is_due(conn, row.thread_id, row.step)
    if mailbox is None:
        raise NotFound(f"no draft {draft_id}")
    _refuse_if_not_waiting(row, thread, waiting)
    _refuse_if_final(row, "approved")  # dismissed or sent meanwhile
    if delivery == "smtp":
        return await _send(ctx, mailbox, settings, row)
    return await _put_in_drafts(ctx, mailbox, row)


def _refuse_if_not_waiting(row: DraftRow, thread: ThreadRow | None, waiting: bool) -> None:
    if thread is None or not waiting:
        state = thread.state if thread else "gone"
        reason = thread.reason if thread else "the thread no longer exists"
        raise Conflict(
            f"thread {row.thread_id} is no longer waiting for this follow-up: it is now "
            f"{state} ({reason}); the draft was not approved"
        )


async def _offer_download(ctx: Context, row: DraftRow, delivery: Delivery) -> DraftView:
    """A mailbox imported from a file has no server to put the draft on: approving records
    it with delivery "download", and the rep takes the .eml from `…/raw` to their client.
    There is nothing to re-read first either: the thread is as the last import left it."""
    if delivery == "smtp":
        raise Conflict(
            "this mailbox was imported from a file, so there is no server to send from: "
            "approve it without a delivery and download it from "
            f"GET /api/v1/drafts/{row.id}/raw"
        )
    async with reading(ctx.engine) as conn:
        thread = await thread_store.get_thread(conn, row.thread_id, user_id=row.user_id)
        waiting = await store.thread_is_due(conn, row.thread_id, row.step)
    _refuse_if_not_waiting(row, thread, waiting)
    if row.state == "approved" and row.approved_revision == row.revision:
        return draft_view(row, ctx.clock())  # this very version is approved already
    return await _record_approval(
        ctx, row, _Approval(raw=_dated_now(ctx, row).raw, delivery="download")
    )


def _dated_now(ctx: Context, row: DraftRow) -> DraftRow:
    return replace(row, raw=with_date(row.raw, ctx.clock()))


async def _put_in_drafts(
    ctx: Context, mailbox: mailbox_store.MailboxRow, row: DraftRow
) -> DraftView:
    dated = _dated_now(ctx, row)

    def deliver(session: ImapSession) -> tuple[str, int, int | None] | None:
        folder = pick_folder(session.list_folders(), "\\Drafts", _DRAFTS_NAMES)
        if folder is None:
            raise Conflict("no Drafts folder found on the server: create one named Drafts")
        present = session.find_message_id(folder, row.message_id)
        if present and row.approved_revision == row.revision:
            return None  # this very version is there already
        uidvalidity, uid = session.append(folder, dated.raw, DRAFT_FLAGS)
        if uid is None:  # no UIDPLUS: the new copy is the one we did not see before
            after = set(session.find_message_id(folder, row.message_id)) - set(present)
            uid = max(after) if after else None
        # The versions it replaces: found by Message-ID, and by the UID recorded last time
        # (in case the server rewrote the header).
        old = set(present)
        same_folder = row.imap_folder == folder and row.imap_uidvalidity == uidvalidity
        if same_folder and row.imap_uid:
            old.add(row.imap_uid)
        session.delete_messages(folder, sorted(old - {uid}))
        return folder, uidvalidity, uid

    session = await open_mailbox_session(ctx, mailbox)
    try:
        placed = await ctx.mail_io.run(deliver, session)
    finally:
        await ctx.mail_io.run(session.close)
    if placed is None:
        return draft_view(row, ctx.clock())
    folder, uidvalidity, uid = placed
    return await _record_approval(
        ctx,
        row,
        _Approval(
            raw=dated.raw,
            delivery="imap_draft",
            placed=_Placed(folder=folder, uidvalidity=uidvalidity, uid=uid),
        ),
    )


async def _send(
    ctx: Context, mailbox: mailbox_store.MailboxRow, settings: DraftSettings, row: DraftRow
) -> DraftView:
    # A mailbox signed in with a provider logs in to SMTP with the same grant (XOAUTH2),
    # unless the rep gave an SMTP password.
    use_grant = bool(mailbox.get("oauth2_provider")) and not settings.smtp_secret_enc
    if settings.smtp_host is None or settings.smtp_port is None:  # smtp_enabled sets both
        raise Conflict("SMTP sending is not set up for this mailbox")
    account = SmtpAccount(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=cast(Security, settings.smtp_security),  # checked when saved
        username=settings.smtp_username or (mailbox["imap_username"] if use_grant else None),
        password=ctx.box.decrypt(settings.smtp_secret_enc) if settings.smtp_secret_enc else None,
        oauth2_token=(await stored_account(ctx, mailbox)).secret if use_grant else None,
    )
    row = _dated_now(ctx, row)
    recipients = list(dict.fromkeys([*row.to_addrs, *row.cc_addrs]))
    addresses = await checked_addresses(ctx, account.host, account.port, field="smtp.host")

    async def send(account: SmtpAccount) -> None:
        await ctx.mail_io.run(
            send_message,
            account,
            row.raw,
            sender=row.from_addr,
            recipients=recipients,
            ca_file=ctx.settings.imap_ca_file,
            timeout=ctx.settings.imap_timeout_seconds,
            allow_plaintext=ctx.settings.imap_allow_plaintext,
            addresses=addresses,
        )

    try:
        await send(account)
    except MailAuthError:  # refused at AUTH, before anything was sent
        if account.oauth2_token is None:
            raise
        refused = replace(account_of(ctx, mailbox), secret=account.oauth2_token)
        fresh = await oauth2_tokens.fresh_account(ctx, mailbox, refused, refused=True)
        await send(replace(account, oauth2_token=fresh.secret))
    sent_at = ctx.clock()

    def file_copy(session: ImapSession) -> tuple[str | None, int | None, int | None]:
        """A copy in Sent, as a mail client keeps one; the draft copy goes."""
        listed = session.list_folders()
        drafts_folder = pick_folder(listed, "\\Drafts", _DRAFTS_NAMES)
        if drafts_folder is not None:
            old = session.find_message_id(drafts_folder, row.message_id)
            session.delete_messages(drafts_folder, old)
        sent = pick_folder(listed, "\\Sent", _SENT_NAMES)
        if sent is None or session.is_gmail:  # Gmail files what it relays by itself
            return None, None, None
        uidvalidity, uid = session.append(sent, row.raw, ("\\Seen",))
        return sent, uidvalidity, uid

    try:
        session = await open_mailbox_session(ctx, mailbox)
        try:
            folder, uidvalidity, uid = await ctx.mail_io.run(file_copy, session)
        finally:
            await ctx.mail_io.run(session.close)
    except Exception as exc:  # sent is sent: a failed copy must not make it look unsent
        log.warning("drafts.sent_copy_failed draft=%s error=%s", row.id, exc)
        folder, uidvalidity, uid = None, None, None
    return await _record_approval(
        ctx,
        row,
        _Approval(
            raw=row.raw,
            delivery="smtp",
            sent_at=sent_at,
            placed=_Placed(folder=folder, uidvalidity=uidvalidity, uid=uid),
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Placed:
    """Where the approved draft (or the sent copy) sits on the server; None: nowhere known."""

    folder: str | None
    uidvalidity: int | None
    uid: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Approval:
    """How a draft went out: written with its approval."""

    raw: bytes
    delivery: str  # imap_draft | smtp | download
    sent_at: datetime | None = None  # over SMTP
    placed: _Placed | None = None  # None: the IMAP columns stay as they are


async def _record_approval(ctx: Context, row: DraftRow, approval: _Approval) -> DraftView:
    now = ctx.clock()
    placed = approval.placed
    change = DraftChange(
        raw=approval.raw,
        delivery=approval.delivery,
        state="approved",
        approved_revision=row.revision,
        approved_at=now,
        snoozed_until=None,
    )
    if approval.sent_at is not None:
        change = replace(change, sent_at=approval.sent_at)
    if placed is not None:
        change = replace(
            change,
            imap_folder=placed.folder,
            imap_uidvalidity=placed.uidvalidity,
            imap_uid=placed.uid,
        )
    async with ctx.engine.begin() as conn:
        updated = await store.update_draft(conn, row.id, change, now=now)
        if updated is None:
            raise NotFound(f"no draft {row.id}")
        await announce(conn, updated, EventType.DRAFT_APPROVED, now)
    log.info("drafts.approved draft=%s delivery=%s", row.id, approval.delivery)
    return draft_view(updated, now)


# ----------------------------------------------------------------------------- helpers


async def _draft(ctx: Context, user_id: int, draft_id: int) -> DraftRow:
    async with reading(ctx.engine) as conn:
        row = await store.get_draft(conn, draft_id, user_id=user_id)
    if row is None:
        raise NotFound(f"no draft {draft_id}")
    return row


def _refuse_if_final(row: DraftRow, what: str) -> None:
    if row.state == "dismissed":
        raise Conflict(f"draft {row.id} was dismissed and cannot be {what}")
    if row.sent_at is not None:
        raise Conflict(f"draft {row.id} was sent already and cannot be {what}")


def _clean_question(question: Any) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InvalidInput("question must not be empty")
    plain_text(question, "question")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInput(f"question is longer than {MAX_QUESTION_CHARS} characters")
    return question.strip()
