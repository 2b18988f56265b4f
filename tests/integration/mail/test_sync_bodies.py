"""After the headers, the sync reads the start of the bodies that decide a thread's state."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.config import Settings
from app.services import sync as sync_service
from app.services import threads
from app.services.context import Context
from app.storage.tables import messages
from tests.conftest import make_settings
from tests.factories import PROSPECT, REP, ImapUser, connect, make_message, now_utc

pytestmark = pytest.mark.integration


def dsn(original_id: str, when: str) -> bytes:
    """A Postfix-style delivery status notification: no In-Reply-To, only the returned header."""
    return (
        "From: MAILER-DAEMON@mx.buyer.example (Mail Delivery System)\r\n"
        f"To: {REP}\r\nSubject: Undelivered Mail Returned to Sender\r\nDate: {when}\r\n"
        "Message-ID: <bounce1@mx.buyer.example>\r\nAuto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your "
        "message could not be delivered.\r\n\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.buyer.example"
        f"\r\n\r\nFinal-Recipient: rfc822; {PROSPECT}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {REP}\r\nTo: {PROSPECT}\r\nSubject: Intro\r\nMessage-ID: <{original_id}>\r\n"
        "\r\n--B--\r\n"
    ).encode()


async def test_bodies_decide_bounces_return_dates_declines_and_empty_replies(
    ctx: Context, imap_user: ImapUser, caplog: pytest.LogCaptureFixture
) -> None:
    from email.utils import format_datetime

    server, user = imap_user.server, imap_user.username
    now = now_utc()
    old = now - timedelta(days=10)
    back = (now + timedelta(days=20)).date()
    for i in range(1, 5):
        server.append(
            user,
            "Sent",
            make_message(
                from_=REP,
                to=[PROSPECT],
                subject=f"Intro {i}",
                date=old,
                message_id=f"s{i}@seller.example",
            ),
            date=old,
        )
    # 1: bounced, the DSN names the original only in its returned header
    server.append(
        user, "INBOX", dsn("s1@seller.example", format_datetime(old + timedelta(minutes=5)))
    )
    # 2: an out-of-office reply with a return date in its text
    server.append(
        user,
        "INBOX",
        make_message(
            from_=PROSPECT,
            to=[REP],
            subject="Automatic reply: Intro 2",
            date=now - timedelta(hours=1),
            message_id="ooo@buyer.example",
            in_reply_to="s2@seller.example",
            headers={"Auto-Submitted": "auto-replied"},
            body=f"I am out of the office until {back.strftime('%d %B %Y')} with limited access "
            "to e-mail.",
        ),
        date=now,
    )
    # 3: a clear no
    server.append(
        user,
        "INBOX",
        make_message(
            from_=PROSPECT,
            to=[REP],
            subject="Re: Intro 3",
            date=old + timedelta(days=1),
            message_id="no@buyer.example",
            in_reply_to="s3@seller.example",
            body="Thanks, but we are not interested at this time.\n",
        ),
        date=old,
    )
    # 4: a "reply" that only quotes the rep's mail
    server.append(
        user,
        "INBOX",
        make_message(
            from_=PROSPECT,
            to=[REP],
            subject="Re: Intro 4",
            date=old + timedelta(days=1),
            message_id="empty@buyer.example",
            in_reply_to="s4@seller.example",
            body=f"On Mon, {REP} wrote:\n> Hi Anna,\n> a short intro.\n",
        ),
        date=old,
    )
    user_id, mailbox_id = await connect(ctx, imap_user)

    with caplog.at_level(logging.INFO, logger="app.services.sync"):
        await sync_service.sync_mailbox(ctx, mailbox_id)

    # The operator sees where a pass spent its time, phase by phase, in the order they run.
    done = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("sync.done"))
    phases = re.findall(r"(\w+)=(\d+\.\d\d)s", done)
    assert [name for name, _ in phases] == ["headers", "parse", "bodies", "store", "commit"]
    assert all(float(seconds) < 60 for _, seconds in phases)
    items, _ = await threads.list_threads(ctx, user_id=user_id, limit=200)
    by_root = {t.message_ids[0]: (t.state, t.reason) for t in items}
    assert by_root["<s1@seller.example>"][0] == "bounced"
    assert by_root["<s2@seller.example>"][0] == "paused"
    assert f"back on {back.strftime('%a %d %b')}" in by_root["<s2@seller.example>"][1]
    assert by_root["<s3@seller.example>"][0] == "closed"
    assert "declined" in by_root["<s3@seller.example>"][1]
    assert by_root["<s4@seller.example>"][0] == "quiet"
    assert len(items) == 4  # the bounce joined its thread instead of starting one
    flags = server.fetch_flags(user, "INBOX")
    assert all("\\Seen" not in f for f in flags.values())

    again = await sync_service.sync_mailbox(ctx, mailbox_id)
    assert again.new_messages == 0


async def test_bodies_are_read_in_the_header_pass_and_only_where_decisions_need_them(
    settings: Settings, imap_user: ImapUser
) -> None:
    """An answer's body start is read with its header (and kept only when the operator asks);
    newsletters and the rep's own mail are never read."""
    server, user = imap_user.server, imap_user.username
    now = now_utc()
    sent_at = now - timedelta(days=3)
    server.append(
        user,
        "Sent",
        make_message(
            from_=REP, to=[PROSPECT], subject="Pilot", date=sent_at, message_id="pilot@seller"
        ),
    )
    server.append(
        user,
        "INBOX",
        make_message(
            from_=PROSPECT,
            to=[REP],
            subject="Re: Pilot",
            date=sent_at + timedelta(hours=2),
            message_id="answer@buyer",
            in_reply_to="pilot@seller",
            body="Thanks, but we are not interested at this time.\n",
        ),
    )
    server.append(
        user,
        "INBOX",
        make_message(
            from_="news@vendor.example",
            to=[REP],
            subject="Weekly digest",
            date=sent_at,
            message_id="digest@vendor",
            headers={"List-Id": "<weekly.vendor.example>"},
            body="Ten tips for the week.\n",
        ),
    )
    ctx = Context.create(make_settings(settings.database_url, sync_keep_text_prefix=True))
    try:
        _, mailbox_id = await connect(ctx, imap_user)
        await sync_service.sync_mailbox(ctx, mailbox_id)
        async with ctx.engine.connect() as conn:
            rows = {
                r.message_key: r
                for r in await conn.execute(
                    select(messages.c.message_key, messages.c.details, messages.c.text_prefix)
                )
            }
    finally:
        await ctx.close()
    answer = rows["<answer@buyer>"]
    assert answer.details is not None and answer.details["decline"]
    assert answer.text_prefix.startswith("Thanks, but we are not interested")
    for key in ("<pilot@seller>", "<digest@vendor>"):
        assert rows[key].details is None and rows[key].text_prefix is None
