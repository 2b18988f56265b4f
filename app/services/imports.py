"""`radiosilence import`: an mbox file or Maildir into a user's mailbox, then the rules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.calendars import validate_country
from app.domain.model import Identity
from app.errors import Conflict, InvalidInput, NotFound
from app.mail import files
from app.services.accounts import normalize_email
from app.services.context import Context
from app.services.evaluation import evaluate_mailbox
from app.services.followups import create_due_drafts
from app.storage import mailboxes as mailbox_store
from app.storage import users as user_store
from app.storage.mailboxes import FILE_SOURCE, NewMailbox


@dataclass(frozen=True, kw_only=True)
class ImportOutcome:
    mailbox_id: int
    folders: int
    read: int
    new_messages: int
    skipped: int
    threads_evaluated: int
    drafts_created: int


async def import_mail(
    ctx: Context,
    path: Path,
    *,
    email: str,
    mailbox_name: str,
    addresses: list[str],
    timezone: str = "UTC",
    holiday_country: str | None = None,
    progress: files.Progress | None = None,
) -> ImportOutcome:
    """Read the file into the mailbox (created when missing), run the rules, and compose the
    follow-up draft of every quiet thread from the rep's own e-mails in the file."""
    email = normalize_email(email)
    addresses = [normalize_email(a) for a in addresses]
    if not addresses:
        raise InvalidInput("give at least one --address: the rep's own e-mail address")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown timezone {timezone!r}: use an IANA name") from None
    holiday_country = validate_country(holiday_country)
    async with ctx.engine.begin() as conn:
        user = await user_store.get_user_by_email(conn, email)
        if user is None:
            raise NotFound(
                f"no user with e-mail {email}: create it with `radiosilence user create`"
            )
        mailbox = await mailbox_store.find_mailbox(conn, user_id=user["id"], name=mailbox_name)
        if mailbox is None:
            mailbox_id = await mailbox_store.create_mailbox(
                conn,
                NewMailbox(
                    user_id=user["id"],
                    name=mailbox_name,
                    imap_host="",
                    imap_port=0,
                    imap_security="plain",
                    imap_username="",
                    auth_method=FILE_SOURCE,
                    secret_enc=ctx.box.encrypt(""),
                    addresses=addresses,
                    timezone=timezone,
                    holiday_country=holiday_country,
                    holiday_subdiv=None,
                    folder_include=None,
                    folder_exclude=None,
                    rules={},
                    status="ok",
                    next_sync_at=None,
                ),
                now=ctx.clock(),
            )
        elif mailbox["auth_method"] != FILE_SOURCE:
            raise Conflict(
                f"mailbox {mailbox_name!r} reads an IMAP server; import into another mailbox name"
            )
        else:
            mailbox_id = int(mailbox["id"])
            addresses = list(mailbox["addresses"])
    report = await files.import_path(
        ctx.engine,
        path,
        mailbox_id=mailbox_id,
        user_id=user["id"],
        identity=Identity.from_addresses(addresses),
        now=ctx.clock(),
        progress=progress,
    )
    evaluated = await evaluate_mailbox(ctx.engine, ctx.clock, mailbox_id)
    drafts = await create_due_drafts(ctx, mailbox_id, all_due=True)
    async with ctx.engine.begin() as conn:
        await mailbox_store.set_status(conn, mailbox_id, "ok", "", now=ctx.clock(), synced=True)
    return ImportOutcome(
        mailbox_id=mailbox_id,
        folders=report.folders,
        read=report.read,
        new_messages=report.new_messages,
        skipped=report.skipped,
        threads_evaluated=evaluated,
        drafts_created=drafts,
    )
