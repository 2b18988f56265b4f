"""Drafts against a real Dovecot, on SQLite and PostgreSQL: a quiet thread gets a draft,
approving puts it into Drafts once, a reply that came in first refuses the approval."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import httpx
import pytest

from app.domain.headers import parse_header_bytes
from app.domain.threads import base_subject, thread_links
from app.services import accounts, events
from app.services import sync as sync_service
from app.services.context import Context
from app.services.followups import create_due_drafts, create_due_drafts_everywhere
from app.storage import drafts as draft_store
from app.storage.drafts import DraftChange
from app.storage.tables import drafts as drafts_table
from tests.factories import (
    PROSPECT,
    REP,
    ImapUser,
    answer_the_proposal,
    connect,
    make_message,
    now_utc,
    populate,
)
from tests.support.api import api_client, only_draft

pytestmark = pytest.mark.integration
FORWARD_MARKER = "---------- Forwarded message ---------"


@pytest.fixture
async def synced(ctx: Context, imap_user: ImapUser) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    """A mailbox with one quiet thread, synced: (the owner's API client, mailbox id)."""
    populate(imap_user, now_utc())
    _, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)
    async with await api_client(ctx, "owner@seller.example", create_user=False) as api:
        yield api, mailbox_id


def drafts_folder(user: ImapUser) -> list[tuple[set[str], EmailMessage]]:
    """Every message in Drafts with its flags, read without changing anything."""
    out = []
    with user.server.imap(user.username) as conn:
        conn.select('"Drafts"', readonly=True)
        typ, data = conn.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        assert typ == "OK"
        for item in data:
            if not isinstance(item, tuple):
                continue
            flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
            assert flags is not None
            msg = message_from_bytes(item[1], policy=policy.default)
            assert isinstance(msg, EmailMessage)
            out.append((set(flags.group(1).decode().split()) - {"\\Recent"}, msg))
    return out


async def test_a_quiet_thread_gets_one_draft_with_its_event(
    ctx: Context, imap_user: ImapUser, synced: tuple[httpx.AsyncClient, int]
) -> None:
    api, mailbox_id = synced
    draft = await only_draft(api, state="pending")
    assert draft["step"] == 1
    assert draft["subject"] == "Re: Proposal for Buyer Inc"
    assert draft["to"] == [PROSPECT] and draft["cc"] == []
    assert draft["from"] == REP
    assert draft["in_reply_to"] == "<q1@seller.example>"
    assert draft["message_id"].endswith("@seller.example>")
    # Running again (a sync, the scheduler) makes no second draft for the same step.
    assert await create_due_drafts(ctx, mailbox_id) == 0
    await sync_service.sync_mailbox(ctx, mailbox_id)
    assert (await only_draft(api))["id"] == draft["id"]
    user_id = (await accounts.authenticate(ctx, api.headers["Authorization"][7:])).id
    log = await events.list_events(ctx, user_id=user_id, after=None, limit=100)
    created = [e for e in log if e.type == "draft.created"]
    assert len(created) == 1
    assert created[0].data["draft"]["id"] == draft["id"]
    # The original was fetched whole to be forwarded, and is still unread.
    for flags in imap_user.server.fetch_flags(imap_user.username, "Sent").values():
        assert "\\Seen" not in flags

    detail = await api.get(f"/api/v1/drafts/{draft['id']}")
    assert detail.status_code == 200
    text = detail.json()["text"]
    assert text.startswith(draft["question"] + "\n\n" + FORWARD_MARKER)
    raw = await api.get(f"/api/v1/drafts/{draft['id']}/raw")
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("message/rfc822")
    assert b"In-Reply-To: <q1@seller.example>" in raw.content


async def test_approve_puts_the_draft_into_drafts_once(
    ctx: Context, imap_user: ImapUser, synced: tuple[httpx.AsyncClient, int]
) -> None:
    api, _ = synced
    draft = await only_draft(api)
    approved = await api.post(f"/api/v1/drafts/{draft['id']}/approve", json={})
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"
    assert approved.json()["delivery"] == "imap_draft"
    assert approved.json()["imap_folder"] == "Drafts"

    ((flags, msg),) = drafts_folder(imap_user)
    assert flags == {"\\Draft", "\\Seen"}
    assert (
        approved.json()["imap_uid"] == imap_user.server.folder_uids(imap_user.username, "Drafts")[0]
    )
    assert str(msg["From"]) == REP
    assert str(msg["To"]) == PROSPECT
    assert msg["Cc"] is None
    assert str(msg["Subject"]) == "Re: Proposal for Buyer Inc"
    assert base_subject(str(msg["Subject"])) == "Proposal for Buyer Inc"
    assert msg["Message-ID"] == draft["message_id"]
    assert msg["In-Reply-To"] == "<q1@seller.example>"
    assert msg["References"] == "<q1@seller.example>"
    assert msg["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert msg["Date"] is not None
    text_part = msg.get_body(preferencelist=("plain",))
    assert text_part is not None
    text = text_part.get_content().replace("\r\n", "\n")
    assert text.startswith(draft["question"] + "\n\n" + FORWARD_MARKER + "\n")
    assert f"From: {REP}\n" in text and f"To: {PROSPECT}\n" in text
    assert "Subject: Proposal for Buyer Inc\n" in text
    assert text.rstrip().endswith("Hello")  # the original's own text, as written
    assert msg.get_body(preferencelist=("html",)) is not None
    # Read back, our own matcher puts it into the original thread by its headers alone.
    links = thread_links(parse_header_bytes(msg.as_bytes()), fallback_key="<none@x>")
    assert links.key == draft["message_id"]
    assert "<q1@seller.example>" in links.references

    again = await api.post(f"/api/v1/drafts/{draft['id']}/approve")
    assert again.status_code == 200, again.text
    assert len(drafts_folder(imap_user)) == 1  # approving twice makes one draft
    user_id = (await accounts.authenticate(ctx, api.headers["Authorization"][7:])).id
    log = await events.list_events(ctx, user_id=user_id, after=None, limit=100)
    assert [e.type for e in log].count("draft.approved") == 1


async def test_an_edited_draft_replaces_its_predecessor(
    imap_user: ImapUser, synced: tuple[httpx.AsyncClient, int]
) -> None:
    api, _ = synced
    draft = await only_draft(api)
    first = (await api.post(f"/api/v1/drafts/{draft['id']}/approve")).json()
    edited = await api.patch(
        f"/api/v1/drafts/{draft['id']}", json={"question": "Hätten Sie kurz Zeit — Dienstag?"}
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["state"] == "pending"  # needs approving again
    assert edited.json()["revision"] == 2
    second = await api.post(f"/api/v1/drafts/{draft['id']}/approve")
    assert second.status_code == 200, second.text
    assert second.json()["imap_uid"] != first["imap_uid"]
    ((flags, msg),) = drafts_folder(imap_user)
    assert "\\Draft" in flags
    assert msg["Message-ID"] == draft["message_id"]
    text_part = msg.get_body(preferencelist=("plain",))
    assert text_part is not None
    assert text_part.get_content().startswith("Hätten Sie kurz Zeit — Dienstag?")


async def test_a_reply_before_approving_is_a_409_with_the_new_state(
    imap_user: ImapUser, synced: tuple[httpx.AsyncClient, int]
) -> None:
    api, _ = synced
    draft = await only_draft(api)
    answer_the_proposal(
        imap_user, "Thanks, we are reviewing it internally and will come back to you Friday."
    )
    refused = await api.post(f"/api/v1/drafts/{draft['id']}/approve")
    assert refused.status_code == 409, refused.text
    assert "now replied" in refused.json()["detail"]
    assert drafts_folder(imap_user) == []
    # The review list stays true: a draft its thread no longer waits for is set aside.
    after = (await api.get(f"/api/v1/drafts/{draft['id']}")).json()
    assert after["state"] == "dismissed"
    assert after["dismiss_reason"].startswith("auto: ")
    assert (await api.get("/api/v1/drafts", params={"state": "pending"})).json()["items"] == []


async def test_dismiss_snooze_and_listing(
    ctx: Context, synced: tuple[httpx.AsyncClient, int]
) -> None:
    api, mailbox_id = synced
    draft = await only_draft(api)
    snoozed = await api.post(f"/api/v1/drafts/{draft['id']}/snooze", json={})
    assert snoozed.status_code == 200 and snoozed.json()["state"] == "snoozed"
    listed = await api.get("/api/v1/drafts", params={"state": "pending"})
    assert listed.json()["items"] == []
    assert len((await api.get("/api/v1/drafts", params={"state": "snoozed"})).json()["items"]) == 1
    dismissed = await api.post(
        f"/api/v1/drafts/{draft['id']}/dismiss", json={"reason": "they are on parental leave"}
    )
    assert dismissed.status_code == 200
    assert dismissed.json()["state"] == "dismissed"
    assert dismissed.json()["dismiss_reason"] == "they are on parental leave"
    assert (await api.post(f"/api/v1/drafts/{draft['id']}/approve")).status_code == 409
    assert (
        await api.patch(f"/api/v1/drafts/{draft['id']}", json={"question": "?"})
    ).status_code == 409
    by_thread = await api.get("/api/v1/drafts", params={"thread_id": draft["thread_id"]})
    assert [d["id"] for d in by_thread.json()["items"]] == [draft["id"]]
    assert (await api.get("/api/v1/drafts", params={"mailbox_id": mailbox_id + 99})).json()[
        "items"
    ] == []
    bad = await api.get("/api/v1/drafts", params={"cursor": "nonsense"})
    assert bad.status_code == 422


async def test_another_users_draft_is_a_404(
    ctx: Context, synced: tuple[httpx.AsyncClient, int]
) -> None:
    api, mailbox_id = synced
    draft = await only_draft(api)
    await accounts.create_user(ctx, email="someone@else.example", password="pw-123456789")
    async with await api_client(ctx, "someone@else.example", create_user=False) as other:
        for method, path in [
            ("GET", f"/api/v1/drafts/{draft['id']}"),
            ("GET", f"/api/v1/drafts/{draft['id']}/raw"),
            ("PATCH", f"/api/v1/drafts/{draft['id']}"),
            ("POST", f"/api/v1/drafts/{draft['id']}/approve"),
            ("POST", f"/api/v1/drafts/{draft['id']}/dismiss"),
            ("POST", f"/api/v1/drafts/{draft['id']}/snooze"),
            ("GET", f"/api/v1/mailboxes/{mailbox_id}/draft-templates"),
            ("PUT", f"/api/v1/mailboxes/{mailbox_id}/draft-templates"),
            ("GET", f"/api/v1/mailboxes/{mailbox_id}/draft-settings"),
            ("PUT", f"/api/v1/mailboxes/{mailbox_id}/draft-settings"),
        ]:
            body = {} if method in ("PATCH", "PUT") else None
            answer = await other.request(method, path, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
        nothing = {
            "items": [],
            "next_cursor": None,
            "preparing": False,
            "retry_after": None,
            "blocked": None,
        }
        assert (await other.get("/api/v1/drafts")).json() == nothing
        # Another user's quiet thread is neither composed nor said to be in preparation.
        mine = await other.get("/api/v1/drafts", params={"thread_id": draft["thread_id"]})
        assert mine.json() == nothing


async def test_editing_rules(synced: tuple[httpx.AsyncClient, int]) -> None:
    api, _ = synced
    draft = await only_draft(api)
    path = f"/api/v1/drafts/{draft['id']}"
    for body in ({"question": "Nul\u0000?"}, {"question": ""}, {"question": None}, {"x": 1}):
        refused = await api.patch(path, json=body)
        assert refused.status_code == 422, (body, refused.text)
    rewritten = await api.patch(path, json={"body": "Anna — shall we talk on Tuesday?\n"})
    assert rewritten.status_code == 200, rewritten.text
    assert (await api.get(path)).json()["text"].strip() == "Anna — shall we talk on Tuesday?"
    raw = (await api.get(path + "/raw")).content
    assert b"Content-Type: text/plain" in raw and b"text/html" not in raw
    assert (await api.patch(path, json={"question": "Other?"})).status_code == 409
    assert (await api.patch(path, json={"body": None, "question": "Other?"})).status_code == 409
    unchanged = await api.patch(path, json={})
    assert unchanged.status_code == 200 and unchanged.json()["revision"] == 2


async def test_the_scheduler_pass_makes_missing_drafts(ctx: Context, imap_user: ImapUser) -> None:
    populate(imap_user, now_utc())
    _, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)
    async with ctx.engine.begin() as conn:
        await conn.execute(drafts_table.delete())
    assert await create_due_drafts_everywhere(ctx) == 1
    assert await create_due_drafts_everywhere(ctx) == 0


async def test_a_double_click_makes_one_draft(
    imap_user: ImapUser, synced: tuple[httpx.AsyncClient, int]
) -> None:
    api, _ = synced
    draft = await only_draft(api)
    path = f"/api/v1/drafts/{draft['id']}/approve"
    first, second = await asyncio.gather(api.post(path), api.post(path))
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    assert len(drafts_folder(imap_user)) == 1


async def test_a_non_ascii_original_is_forwarded_intact(ctx: Context, imap_user: ImapUser) -> None:
    """German names, subject and text, a Cc and an HTML part: the draft in Drafts, parsed by
    the standard library, carries them all, with the question first and nothing added."""
    sent = now_utc() - timedelta(days=12)
    body = "Guten Tag Frau Weiß,\n\nanbei das Angebot über 1.200 € für Müller & Söhne.\n\nGrüße\n"
    original = make_message(
        from_=f"Jörg Rep <{REP}>",
        to=[f"Anna Weiß <{PROSPECT}>"],
        cc=["Bernd Groß <bernd@buyer.example>"],
        subject="Angebot für Müller & Söhne",
        date=sent,
        message_id="umlaut@seller.example",
        body=body,
    )
    imap_user.server.append(imap_user.username, "Sent", original, date=sent)
    _, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)
    async with await api_client(ctx, "owner@seller.example", create_user=False) as api:
        draft = await only_draft(api, state="pending")
        approved = await api.post(f"/api/v1/drafts/{draft['id']}/approve", json={})
        assert approved.status_code == 200, approved.text

    ((flags, msg),) = drafts_folder(imap_user)
    assert "\\Draft" in flags
    assert str(msg["Subject"]) == "Re: Angebot für Müller & Söhne"
    assert msg["From"].addresses[0].addr_spec == REP
    assert msg["From"].addresses[0].display_name == "Jörg Rep"
    assert [(a.display_name, a.addr_spec) for a in msg["To"].addresses] == [("Anna Weiß", PROSPECT)]
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["bernd@buyer.example"]
    assert msg["In-Reply-To"] == "<umlaut@seller.example>"
    raw_headers = msg.as_bytes().split(b"\r\n\r\n", 1)[0]
    assert raw_headers.isascii()  # RFC 2047 encoded, not raw 8-bit
    text = msg.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith(draft["question"] + "\n\n")
    assert body.strip() in text  # the original's text, every character intact
    assert "Subject: Angebot für Müller & Söhne" in text
    first_line = text.split("\n", 1)[0]
    assert not re.match(r"(?i)(hi|hello|dear|hallo|guten tag)\b", first_line)
    after = text.split(body.strip(), 1)[1].strip()
    assert after == ""  # no signature or footer appended after the forward
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "1.200 €" in html and "Müller &amp; Söhne" in html


async def test_one_pass_drafts_every_due_thread_from_its_own_last_e_mail(
    ctx: Context, imap_user: ImapUser
) -> None:
    """The pass reads all due threads' messages and locations at once: each draft still
    forwards its own thread's last e-mail, of two sent at the same time the later stored."""
    now = now_utc()
    populate(imap_user, now)
    sent = now - timedelta(days=9)
    for mid, subject in (("t1@seller.example", "Offer"), ("t2@seller.example", "Re: Offer")):
        imap_user.server.append(
            imap_user.username,
            "Sent",
            make_message(
                from_=REP,
                to=["carla@other.example"],
                subject=subject,
                date=sent,
                message_id=mid,
                **({"in_reply_to": "t1@seller.example"} if mid.startswith("t2") else {}),
            ),
            date=sent,
        )
    _, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)
    async with ctx.engine.begin() as conn:
        await conn.execute(drafts_table.delete())
    assert await create_due_drafts(ctx, mailbox_id) == 2
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(drafts_table.select())).mappings().all()
    assert sorted(r["forwarded_message_id"] for r in rows) == [
        "<q1@seller.example>",
        "<t2@seller.example>",
    ]
    assert await create_due_drafts(ctx, mailbox_id) == 0


async def test_a_draft_update_returns_the_row_it_wrote(
    ctx: Context, synced: tuple[httpx.AsyncClient, int]
) -> None:
    api, _ = synced
    draft = await only_draft(api)
    async with ctx.engine.begin() as conn:
        stale = await draft_store.update_draft(
            conn, draft["id"], DraftChange(question="x?"), now=ctx.clock(), revision=9
        )
        assert stale is None  # another revision: nothing written
        row = await draft_store.update_draft(
            conn,
            draft["id"],
            DraftChange(question="Still keen?", revision=2),
            now=ctx.clock(),
            revision=1,
        )
    assert row is not None
    assert (row.id, row.question, row.revision) == (draft["id"], "Still keen?", 2)
    assert row.updated_at >= row.created_at
    assert (await api.get(f"/api/v1/drafts/{draft['id']}")).json()["question"] == "Still keen?"


async def test_an_e_mail_too_large_to_forward_gives_way_to_the_one_before(
    ctx: Context, imap_user: ImapUser, caplog: pytest.LogCaptureFixture
) -> None:
    """The rep's last e-mail is over RADIOSILENCE_DRAFT_ORIGINAL_MAX_BYTES: it is not fetched,
    and the draft forwards the e-mail before it, still unanswered."""
    ctx.settings = ctx.settings.model_copy(update={"draft_original_max_bytes": 1024 * 1024})
    first = now_utc() - timedelta(days=12)
    offer = dict(
        from_=REP, to=[PROSPECT], subject="Offer", date=first, message_id="first@s.example"
    )
    later = first + timedelta(days=3)
    huge = dict(offer, subject="Re: Offer", date=later, message_id="huge@s.example")
    server, user = imap_user.server, imap_user.username
    server.append(user, "Sent", make_message(**offer, body="Our offer for 40 seats."), date=first)
    catalogue = "Catalogue:\n" + "x" * 76 * 15_000  # over 1 MiB
    server.append(
        user,
        "Sent",
        make_message(**huge, body=catalogue, in_reply_to="first@s.example"),
        date=later,
    )
    _, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)

    async with await api_client(ctx, "owner@seller.example", create_user=False) as api:
        draft = await only_draft(api, state="pending")
        detail = (await api.get(f"/api/v1/drafts/{draft['id']}")).json()
    assert draft["in_reply_to"] == "<huge@s.example>"  # it still answers the last one
    assert "Our offer for 40 seats." in detail["text"]  # and forwards the one before
    assert "Catalogue" not in detail["text"]
    assert "drafts.original_too_large" in caplog.text
    assert "more than the 1,048,576 this service reads" in caplog.text
