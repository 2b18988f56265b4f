"""Sync against a real Dovecot, into SQLite and PostgreSQL: states, events, idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.errors import MailAuthError
from app.services import events, mailboxes, metrics, threads
from app.services import sync as sync_service
from app.services.context import Context
from tests.factories import PROSPECT, REP, ImapUser, connect, make_message, now_utc, populate
from tests.support.metrics import samples, value

pytestmark = pytest.mark.integration


async def states(ctx: Context, user_id: int) -> dict[str, tuple[str, str]]:
    items, cursor = await threads.list_threads(ctx, user_id=user_id, limit=200)
    assert cursor is None
    return {t.message_ids[0]: (t.state, t.reason) for t in items}


async def test_first_sync_finds_quiet_and_replied_threads(
    ctx: Context, imap_user: ImapUser
) -> None:
    scenario = populate(imap_user, now_utc())
    user_id, mailbox_id = await connect(ctx, imap_user)

    outcome = await sync_service.sync_mailbox(ctx, mailbox_id)

    assert outcome.new_messages == 7  # the Junk message is never read
    found = await states(ctx, user_id)
    assert found[scenario.quiet][0] == "quiet"
    assert "business days since your e-mail of" in found[scenario.quiet][1]
    assert found[scenario.replied][0] == "replied"
    assert found[scenario.awaiting][0] == "awaiting_reply"
    assert found[scenario.internal][0] == "ignored"
    assert found[scenario.paused][0] == "paused"
    log = await events.list_events(ctx, user_id=user_id, after=None, limit=100)
    # The quiet thread's follow-up draft is composed right after the rules ran.
    assert [e["type"] for e in log] == ["thread.quiet", "draft.created"]
    assert log[0]["data"]["thread"]["message_ids"] == [scenario.quiet]


async def test_resync_is_idempotent_and_never_marks_mail_read(
    ctx: Context, imap_user: ImapUser
) -> None:
    populate(imap_user, now_utc())
    user_id, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)
    before = await states(ctx, user_id)

    again = await sync_service.sync_mailbox(ctx, mailbox_id)

    assert again.new_messages == 0
    assert await states(ctx, user_id) == before
    assert len(await events.list_events(ctx, user_id=user_id, after=None, limit=100)) == 2
    for folder in ("INBOX", "Sent", "Clients/Acme"):
        flags = imap_user.server.fetch_flags(imap_user.username, folder)
        assert all("\\Seen" not in f for f in flags.values()), (folder, flags)


async def test_a_new_reply_moves_a_quiet_thread_to_replied_once(
    ctx: Context, imap_user: ImapUser
) -> None:
    from tests.factories import PROSPECT, REP, make_message

    now = now_utc()
    scenario = populate(imap_user, now)
    user_id, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)
    imap_user.server.append(
        imap_user.username,
        "INBOX",
        make_message(
            from_=PROSPECT,
            to=[REP],
            subject="Re: Proposal for Buyer Inc",
            date=now,
            message_id="late@buyer.example",
            references=["q1@seller.example"],
        ),
        date=now,
    )

    await sync_service.sync_mailbox(ctx, mailbox_id)
    await sync_service.sync_mailbox(ctx, mailbox_id)

    assert (await states(ctx, user_id))[scenario.quiet][0] == "replied"
    log = await events.list_events(ctx, user_id=user_id, after=None, limit=100)
    assert [e["type"] for e in log] == ["thread.quiet", "draft.created", "thread.replied"]


async def test_uidvalidity_change_rereads_without_duplicates(
    ctx: Context, imap_user: ImapUser
) -> None:
    now = now_utc()
    scenario = populate(imap_user, now)
    user_id, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)
    before = await states(ctx, user_id)
    # Delete and recreate the folder with the same mail: the server gives it a new UIDVALIDITY.
    server, name = imap_user.server, imap_user.username
    server.delete_folder(name, "Clients/Acme")
    from tests.factories import PROSPECT, REP, make_message

    server.append(
        name,
        "Clients/Acme",
        make_message(
            from_=PROSPECT,
            to=[REP],
            subject="Re: Pricing — Müller GmbH",
            date=now,
            message_id="r2@buyer.example",
            references=["r1@seller.example"],
        ),
        date=now,
    )

    again = await sync_service.sync_mailbox(ctx, mailbox_id)

    assert again.new_messages == 0
    assert await states(ctx, user_id) == before
    detail = await threads.get_thread(
        ctx, user_id=user_id, thread_id=await thread_id_of(ctx, user_id, scenario.replied)
    )
    assert [m.message_id for m in detail.messages] == [
        "<r1@seller.example>",
        "<r2@buyer.example>",
    ]
    assert len(await events.list_events(ctx, user_id=user_id, after=None, limit=100)) == 2


async def thread_id_of(ctx: Context, user_id: int, message_id: str) -> int:
    items, _ = await threads.list_threads(ctx, user_id=user_id, limit=200)
    return next(t.id for t in items if t.message_ids[0] == message_id)


async def test_refused_login_marks_the_mailbox_failed_once(
    ctx: Context, imap_user: ImapUser
) -> None:
    user_id, mailbox_id = await connect(ctx, imap_user)
    imap_user.server.add_user(imap_user.username, "a-changed-password")
    before = samples(await metrics.exposition(ctx.engine, ctx.clock()))

    for _ in range(2):
        with pytest.raises(MailAuthError, match="refused the login"):
            await sync_service.sync_mailbox(ctx, mailbox_id)

    # An operator's alert fires on these: failed passes, and a mailbox in the failed state.
    after = samples(await metrics.exposition(ctx.engine, ctx.clock()))
    passes = "radiosilence_sync_passes_total"
    assert value(after, passes, outcome="failed") - value(before, passes, outcome="failed") == 2
    assert value(after, passes, outcome="ok") == value(before, passes, outcome="ok")
    assert value(after, "radiosilence_mailboxes", status="failed") == 1
    assert value(after, "radiosilence_mailboxes", status="ok") == 0

    row = await mailboxes.get_mailbox(ctx, user_id=user_id, mailbox_id=mailbox_id)
    assert row.status == "failed"
    assert "AUTHENTICATIONFAILED" in row.status_message or "failed" in row.status_message
    log = await events.list_events(ctx, user_id=user_id, after=None, limit=100)
    assert [e["type"] for e in log] == ["mailbox.failed"]
    assert imap_user.password not in str(log)


async def test_a_reply_that_lost_its_headers_joins_the_reps_thread_whatever_the_folder_order(
    ctx: Context, imap_user: ImapUser
) -> None:
    """INBOX is read before Sent: the broken reply is stored before the e-mail it answers,
    and still ends up in the rep's thread, which is then replied, not quiet."""
    sent = now_utc() - timedelta(days=9)
    server, user = imap_user.server, imap_user.username
    server.append(
        user,
        "INBOX",
        make_message(
            from_=PROSPECT,
            to=[REP],
            subject="AW: Pilot scope for Buyer GmbH",
            date=sent + timedelta(days=1),
            message_id="broken-reply@buyer.example",
        ),
    )
    server.append(
        user,
        "Sent",
        make_message(
            from_=REP,
            to=[PROSPECT],
            subject="Pilot scope for Buyer GmbH",
            date=sent,
            message_id="pilot@seller.example",
        ),
    )
    user_id, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)
    items, _ = await threads.list_threads(ctx, user_id=user_id, limit=10)
    assert len(items) == 1
    assert items[0].message_ids == ["<pilot@seller.example>", "<broken-reply@buyer.example>"]
    assert items[0].state == "replied"
    detail = await threads.get_thread(ctx, user_id=user_id, thread_id=items[0].id)
    reasons = [m.thread_reason for m in detail.messages]
    assert reasons[0] is None
    assert reasons[1] is not None and "same subject 'Pilot scope for Buyer GmbH'" in reasons[1]


async def test_a_message_without_a_readable_date_takes_the_servers_arrival_time(
    ctx: Context, imap_user: ImapUser
) -> None:
    from sqlalchemy import select

    from app.storage.tables import messages

    server, user = imap_user.server, imap_user.username
    arrived = now_utc().replace(microsecond=0) - timedelta(days=2)
    dated = now_utc().replace(microsecond=0) - timedelta(days=5)
    for key, date_line in (
        ("nodate@buyer.example", ""),
        ("broken@buyer.example", "Date: sometime next week\r\n"),
        ("dated@buyer.example", f"Date: {dated.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"),
    ):
        raw = (
            f"From: {PROSPECT}\r\nTo: {REP}\r\nSubject: Question\r\n{date_line}"
            f"Message-ID: <{key}>\r\n\r\nHello\r\n"
        ).encode()
        server.append(user, "INBOX", raw, date=arrived)
    _, mailbox_id = await connect(ctx, imap_user)

    await sync_service.sync_mailbox(ctx, mailbox_id)

    async with ctx.engine.connect() as conn:
        stored = dict((await conn.execute(select(messages.c.message_key, messages.c.date))).all())
    assert stored == {
        "<nodate@buyer.example>": arrived,
        "<broken@buyer.example>": arrived,
        "<dated@buyer.example>": dated,
    }
