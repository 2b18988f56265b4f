"""Judgment on awkward real-world mail, end to end over the API against Dovecot: one
`sync?wait=true` gives the final state, and a second sync changes nothing and emits nothing.

- an answer whose client dropped the threading headers (a decline, a quote-only "reply") is
  decided in the first sync;
- a quiet thread whose e-mail has no Message-ID (or one without angle brackets) gets its draft;
- the draft forwards the e-mail with substance, not the rep's later one-line bump.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from app.services.context import Context
from tests.factories import PROSPECT, REP, ImapUser, make_message, now_utc
from tests.support.api import api_client

pytestmark = pytest.mark.integration
OFFER_TEXT = (
    "Hi Anna,\n\nhere is the offer for the pilot we discussed: 40 licences at 30 EUR a month, "
    "onboarding in April, a named contact for your IT team and the security review documents "
    "you asked for. Could we talk on Thursday?\n\nBest,\nRita"
)


def raw_without_message_id(*, subject: str, date: datetime, body: str) -> bytes:
    """The rep's e-mail as some CRMs and scripts send it: no Message-ID at all."""
    return (
        f"From: Rita Rep <{REP}>\r\nTo: Anna Berg <{PROSPECT}>\r\nSubject: {subject}\r\n"
        f"Date: {format_datetime(date)}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def raw_with_bare_message_id(*, subject: str, date: datetime, message_id: str) -> bytes:
    """A Message-ID written without its angle brackets."""
    return (
        f"From: {REP}\r\nTo: {PROSPECT}\r\nSubject: {subject}\r\nDate: {format_datetime(date)}"
        f"\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{OFFER_TEXT}\r\n"
    ).encode()


async def sync(api: httpx.AsyncClient, mailbox_id: int) -> None:
    synced = await api.post(f"/api/v1/mailboxes/{mailbox_id}/sync?wait=true")
    assert synced.status_code == 200, synced.text


async def threads_by_subject(api: httpx.AsyncClient, mailbox_id: int) -> dict[str, Any]:
    page = await api.get("/api/v1/threads", params={"mailbox_id": mailbox_id, "limit": 100})
    assert page.status_code == 200, page.text
    return {t["subject"]: t for t in page.json()["items"]}


async def event_log(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    page = await api.get("/api/v1/events", params={"limit": 1000})
    assert page.status_code == 200, page.text
    return list(page.json()["items"])


async def drafts_of(api: httpx.AsyncClient, thread_id: int) -> list[dict[str, Any]]:
    page = await api.get("/api/v1/drafts", params={"thread_id": thread_id})
    assert page.status_code == 200, page.text
    return list(page.json()["items"])


async def connect_over_api(api: httpx.AsyncClient, user: ImapUser) -> int:
    created = await api.post("/api/v1/mailboxes", json=user.mailbox_body())
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def assert_second_sync_changes_nothing(
    api: httpx.AsyncClient, mailbox_id: int, threads: dict[str, Any]
) -> None:
    before = await event_log(api)
    await sync(api, mailbox_id)
    again = await threads_by_subject(api, mailbox_id)
    assert {s: (t["state"], t["reason"]) for s, t in again.items()} == {
        s: (t["state"], t["reason"]) for s, t in threads.items()
    }
    assert await event_log(api) == before


async def test_answers_without_threading_headers_are_decided_in_the_first_sync(
    ctx: Context, imap_user: ImapUser
) -> None:
    server, user = imap_user.server, imap_user.username
    now = now_utc()
    old = now - timedelta(days=10)
    for subject, mid in (("Pilot for Buyer Inc", "pilot"), ("Renewal for Buyer Inc", "renew")):
        server.append(
            user,
            "Sent",
            make_message(
                from_=REP,
                to=[PROSPECT],
                subject=subject,
                date=old,
                message_id=f"{mid}@seller.example",
            ),
            date=old,
        )
    async with await api_client(ctx, "owner@seller.example") as api:
        mailbox_id = await connect_over_api(api, imap_user)
        await sync(api, mailbox_id)
        before = await threads_by_subject(api, mailbox_id)
        assert {s: t["state"] for s, t in before.items()} == {
            "Pilot for Buyer Inc": "quiet",
            "Renewal for Buyer Inc": "quiet",
        }
        seen = len(await event_log(api))

        # Both answers come from a client that drops In-Reply-To and References.
        server.append(
            user,
            "INBOX",
            make_message(
                from_=PROSPECT,
                to=[REP],
                subject="Re: Pilot for Buyer Inc",
                date=now - timedelta(hours=1),
                message_id="no@buyer.example",
                body="Thanks, but we are not interested at this time.\n",
            ),
            date=now - timedelta(hours=1),
        )
        server.append(
            user,
            "INBOX",
            make_message(
                from_=PROSPECT,
                to=[REP],
                subject="Re: Renewal for Buyer Inc",
                date=now - timedelta(hours=1),
                message_id="empty@buyer.example",
                body=f"On Mon, {REP} wrote:\n> Hi Anna,\n> time to renew.\n",
            ),
            date=now - timedelta(hours=1),
        )
        await sync(api, mailbox_id)
        threads = await threads_by_subject(api, mailbox_id)
        assert len(threads) == 2  # both answers joined their threads
        declined = threads["Pilot for Buyer Inc"]
        assert declined["state"] == "closed", declined["reason"]
        assert "declined" in declined["reason"]
        assert declined["message_ids"] == ["<pilot@seller.example>", "<no@buyer.example>"]
        empty = threads["Renewal for Buyer Inc"]
        assert empty["state"] == "quiet", empty["reason"]  # it only quoted: no answer
        assert empty["message_ids"] == ["<renew@seller.example>", "<empty@buyer.example>"]

        news = [
            (e["type"], e["data"]["thread"]["id"])
            for e in (await event_log(api))[seen:]
            if "thread" in e["data"]
        ]
        assert news == [("thread.closed", declined["id"])]  # never "replied" first

        await assert_second_sync_changes_nothing(api, mailbox_id, threads)


async def test_every_quiet_thread_gets_a_draft_with_or_without_a_message_id(
    ctx: Context, imap_user: ImapUser
) -> None:
    server, user = imap_user.server, imap_user.username
    old = now_utc() - timedelta(days=10)
    server.append(
        user,
        "Sent",
        raw_without_message_id(subject="Quote for 12 seats", date=old, body=OFFER_TEXT),
        date=old,
    )
    server.append(
        user,
        "Sent",
        raw_with_bare_message_id(
            subject="Quote for 30 seats", date=old, message_id="bare-1@seller.example"
        ),
        date=old,
    )
    async with await api_client(ctx, "owner@seller.example") as api:
        mailbox_id = await connect_over_api(api, imap_user)
        await sync(api, mailbox_id)
        threads = await threads_by_subject(api, mailbox_id)
        assert {s: t["state"] for s, t in threads.items()} == {
            "Quote for 12 seats": "quiet",
            "Quote for 30 seats": "quiet",
        }
        assert threads["Quote for 30 seats"]["message_ids"] == ["<bare-1@seller.example>"]

        (idless,) = await drafts_of(api, threads["Quote for 12 seats"]["id"])
        assert idless["in_reply_to"] is None
        assert idless["subject"] == "Re: Quote for 12 seats" and idless["to"] == [PROSPECT]
        raw = await api.get(f"/api/v1/drafts/{idless['id']}/raw")
        assert raw.status_code == 200
        head = raw.content.split(b"\r\n\r\n", 1)[0]
        assert b"In-Reply-To:" not in head and b"References:" not in head
        assert b"40 licences at 30 EUR a month" in raw.content  # the e-mail is forwarded

        (bare,) = await drafts_of(api, threads["Quote for 30 seats"]["id"])
        assert bare["in_reply_to"] == "<bare-1@seller.example>"

        created = [e for e in await event_log(api) if e["type"] == "draft.created"]
        assert sorted(e["data"]["draft"]["id"] for e in created) == sorted(
            [idless["id"], bare["id"]]
        )
        await assert_second_sync_changes_nothing(api, mailbox_id, threads)
        assert len(await drafts_of(api, threads["Quote for 12 seats"]["id"])) == 1


async def test_the_draft_forwards_the_offer_not_the_later_bump(
    ctx: Context, imap_user: ImapUser
) -> None:
    server, user = imap_user.server, imap_user.username
    now = now_utc()
    offer_at, bump_at = now - timedelta(days=20), now - timedelta(days=10)
    server.append(
        user,
        "Sent",
        make_message(
            from_=REP,
            to=[PROSPECT],
            subject="Pilot offer",
            date=offer_at,
            message_id="offer@seller.example",
            body=OFFER_TEXT,
        ),
        date=offer_at,
    )
    server.append(
        user,
        "Sent",
        make_message(
            from_=REP,
            to=[PROSPECT],
            subject="Re: Pilot offer",
            date=bump_at,
            message_id="bump@seller.example",
            in_reply_to="offer@seller.example",
            references=["offer@seller.example"],
            body="Hi Anna, bumping this up.\n",
        ),
        date=bump_at,
    )
    async with await api_client(ctx, "owner@seller.example") as api:
        mailbox_id = await connect_over_api(api, imap_user)
        await sync(api, mailbox_id)
        threads = await threads_by_subject(api, mailbox_id)
        (thread,) = threads.values()
        assert thread["state"] == "quiet", thread["reason"]
        (draft,) = await drafts_of(api, thread["id"])
        assert draft["in_reply_to"] == "<bump@seller.example>"  # it answers the last e-mail
        assert "'Pilot offer'" in draft["reason"] and "carries the substance" in draft["reason"]
        raw = await api.get(f"/api/v1/drafts/{draft['id']}/raw")
        assert b"40 licences at 30 EUR a month" in raw.content
        assert b"bumping this up" not in raw.content
        await assert_second_sync_changes_nothing(api, mailbox_id, threads)


async def test_a_newsletter_without_list_headers_is_bulk_not_a_stranger_waiting(
    ctx: Context, imap_user: ImapUser
) -> None:
    server, user = imap_user.server, imap_user.username
    when = now_utc() - timedelta(hours=3)
    raw = (
        "From: Homefinder <hello@homefinder.example>\r\nTo: rep@seller.example\r\n"
        f"Subject: 12 new listings near you\r\nDate: {format_datetime(when)}\r\n"
        "Message-ID: <listings-1@homefinder.example>\r\n"
        "Return-Path: <bounces+77-rep@em1.sendgrid.net>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n12 new listings near you.\r\n\r\n"
        "Unsubscribe: https://homefinder.example/u/77\r\n"
    ).encode()
    server.append(user, "INBOX", raw, date=when)
    async with await api_client(ctx, "owner@seller.example") as api:
        mailbox_id = await connect_over_api(api, imap_user)
        await sync(api, mailbox_id)
        (thread,) = (await threads_by_subject(api, mailbox_id)).values()
        assert thread["state"] == "ignored", thread["reason"]
        assert thread["needs_response"] is False
        detail = await api.get(f"/api/v1/threads/{thread['id']}")
        (message,) = detail.json()["messages"]
        assert message["kind"] == "bulk"
        assert "Return-Path on bounce domain em1.sendgrid.net" in message["kind_reason"]
        assert "'Unsubscribe' link in the text" in message["kind_reason"]
        threads = await threads_by_subject(api, mailbox_id)
        await assert_second_sync_changes_nothing(api, mailbox_id, threads)
