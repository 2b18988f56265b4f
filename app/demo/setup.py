"""The demo's user and mailbox: the sample put into a private Dovecot and synced like any IMAP
mailbox, or imported from files; either way with every quiet thread's draft composed.

Run again, it reuses the demo user with a new password, and replaces the demo mailbox: the
sample is dated relative to now, so the mail of an earlier run would have aged."""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from app.calendars import work_calendar
from app.demo import sample as demo_sample
from app.demo.dovecot import DovecotServer
from app.demo.maildir import write_maildir
from app.domain.model import Rules, ThreadState
from app.domain.worktime import WorkCalendar
from app.services import accounts, imports
from app.services import drafts as draft_service
from app.services import mailboxes as mailbox_service
from app.services import sync as sync_service
from app.services import threads as thread_service
from app.services.context import Context
from app.services.followups import create_due_drafts

DEMO_EMAIL = demo_sample.REP_ADDRESS  # the demo user is the rep of the sample
MAILBOX_NAME = "Demo (Northwind Analytics)"
IMAP_USERNAME = "maya"


@dataclass(frozen=True, kw_only=True)
class ImapLogin:
    host: str
    port: int
    username: str
    password: str


@dataclass(frozen=True, kw_only=True)
class DemoSetup:
    email: str
    password: str
    mailbox_id: int
    imap: ImapLogin | None  # None: imported from files
    quiet: int  # threads with a follow-up due
    drafts: int  # drafts waiting for review


def demo_calendar(now: datetime) -> WorkCalendar:
    """The sample mailbox's calendar, as the rules will build it (default working hours)."""
    rules = Rules()
    return work_calendar(
        timezone=demo_sample.TIMEZONE,
        country=demo_sample.HOLIDAY_COUNTRY,
        subdiv=None,
        years=range(now.year - 1, now.year + 2),
        day_start=rules.work_day_start,
        day_end=rules.work_day_end,
    )


async def prepare_demo(ctx: Context, *, dovecot: DovecotServer | None, workdir: Path) -> DemoSetup:
    """The demo user (a fresh random password) and the sample mailbox, synced or imported,
    with every quiet thread's draft. `workdir` is scratch space for the files."""
    now = ctx.clock()
    sample = demo_sample.sample_mailbox(now, demo_calendar(now))
    password = secrets.token_urlsafe(12)
    user_id = await accounts.ensure_user(ctx, email=DEMO_EMAIL, password=password)
    for old in await mailbox_service.list_mailboxes(ctx, user_id=user_id):
        if old.name == MAILBOX_NAME:
            await mailbox_service.delete_mailbox(ctx, user_id=user_id, mailbox_id=old.id)
    if dovecot is not None:
        login = ImapLogin(
            host=dovecot.host,
            port=dovecot.port,
            username=IMAP_USERNAME,
            password=secrets.token_urlsafe(12),
        )
        # Written before the first login, so Dovecot indexes the files as they are.
        write_maildir(sample, dovecot.maildir_path(login.username))
        dovecot.add_user(login.username, login.password)
        dovecot.chown_maildir(login.username)
        mailbox_id = await mailbox_service.create_mailbox(
            ctx,
            user_id=user_id,
            data=mailbox_service.MailboxInput(
                name=MAILBOX_NAME,
                host=login.host,
                port=login.port,
                security="plain",  # loopback only: Dovecot listens on 127.0.0.1
                username=login.username,
                secret=login.password,
                auth_method="password",
                addresses=[sample.rep_address],
                timezone=sample.timezone,
                holiday_country=sample.holiday_country,
            ),
        )
        await sync_service.sync_mailbox(ctx, mailbox_id, wait_for_lease=ctx.settings.lease_seconds)
        # The sync composed a first batch of drafts; the rest too, before anyone looks.
        await create_due_drafts(ctx, mailbox_id, all_due=True)
        return await _summary(ctx, user_id, mailbox_id, password, login)
    files = workdir / "sample-maildir"
    write_maildir(sample, files)
    try:
        imported = await imports.import_mail(
            ctx,
            files,
            email=DEMO_EMAIL,
            mailbox_name=MAILBOX_NAME,
            addresses=[sample.rep_address],
            timezone=sample.timezone,
            holiday_country=sample.holiday_country,
        )
    finally:
        shutil.rmtree(files, ignore_errors=True)
    return await _summary(ctx, user_id, imported.mailbox_id, password, None)


async def _summary(
    ctx: Context, user_id: int, mailbox_id: int, password: str, imap: ImapLogin | None
) -> DemoSetup:
    quiet, _ = await thread_service.list_threads(
        ctx, user_id=user_id, mailbox_id=mailbox_id, state=ThreadState.QUIET, limit=200
    )
    drafts, _ = await draft_service.list_drafts(
        ctx, user_id=user_id, mailbox_id=mailbox_id, state="pending", limit=200
    )
    return DemoSetup(
        email=DEMO_EMAIL,
        password=password,
        mailbox_id=mailbox_id,
        imap=imap,
        quiet=len(quiet),
        drafts=len(drafts),
    )
