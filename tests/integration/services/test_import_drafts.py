"""Drafts for a mailbox imported from a file, on SQLite and PostgreSQL: composed from the
rep's own e-mails in the file, once, and approved for download (there is no server)."""

from __future__ import annotations

import mailbox
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.services import imports
from app.services.context import Context
from app.services.evaluation import evaluate_due
from app.services.followups import COMPOSE_BATCH, create_due_drafts_everywhere
from app.storage.tables import message_originals
from tests.factories import PROSPECT, REP, export, make_message, now_utc
from tests.support.api import api_client

pytestmark = pytest.mark.integration
FORWARD_MARKER = "---------- Forwarded message ---------"


async def run_import(ctx: Context, path: Path) -> imports.ImportOutcome:
    return await imports.import_mail(
        ctx,
        path,
        email="owner@seller.example",
        mailbox_name="Export",
        addresses=[REP],
        timezone="Europe/Berlin",
    )


async def pending(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    listed = await api.get("/api/v1/drafts", params={"state": "pending"})
    assert listed.status_code == 200, listed.text
    return list(listed.json()["items"])


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
async def test_an_imported_quiet_thread_gets_its_draft_once(
    ctx: Context, tmp_path: Path, kind: str
) -> None:
    path = export(kind, tmp_path)
    async with await api_client(ctx, "owner@seller.example") as api:
        first = await run_import(ctx, path)
        assert first.drafts_created == 1

        (draft,) = await pending(api)
        quiet = (await api.get("/api/v1/threads", params={"state": "quiet"})).json()["items"]
        assert [t["id"] for t in quiet] == [draft["thread_id"]]
        assert draft["subject"] == "Re: Proposal for Buyer Inc"
        assert draft["to"] == [PROSPECT] and draft["from"] == REP
        assert draft["in_reply_to"] == "<q1@seller.example>"

        raw = await api.get(f"/api/v1/drafts/{draft['id']}/raw")
        assert raw.status_code == 200
        msg = message_from_bytes(raw.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        assert msg["In-Reply-To"] == "<q1@seller.example>"
        body = msg.get_body(("plain",))
        assert body is not None
        text = body.get_content().replace("\r\n", "\n")
        # The question on top, then the rep's own e-mail from the file, forwarded whole.
        assert text.startswith(draft["question"] + "\n\n" + FORWARD_MARKER)
        assert "Subject: Proposal for Buyer Inc" in text
        assert "attached is our proposal for the 40 seats." in text

        # Importing the same file again adds no message, no kept copy and no draft.
        second = await run_import(ctx, path)
        assert second.new_messages == 0 and second.drafts_created == 0
        assert [d["id"] for d in await pending(api)] == [draft["id"]]
        async with ctx.engine.connect() as conn:
            kept = await conn.scalar(select(func.count()).select_from(message_originals))
        assert kept == 2  # the rep's two e-mails; the prospect's and the colleague's are not


async def test_approving_an_imported_draft_offers_it_for_download(
    ctx: Context, tmp_path: Path
) -> None:
    path = export("mbox", tmp_path)
    async with await api_client(ctx, "owner@seller.example") as api:
        await run_import(ctx, path)
        (draft,) = await pending(api)

        smtp = await api.post(f"/api/v1/drafts/{draft['id']}/approve", json={"delivery": "smtp"})
        assert smtp.status_code == 409
        assert "imported from a file" in smtp.json()["detail"]
        assert f"/api/v1/drafts/{draft['id']}/raw" in smtp.json()["detail"]

        approved = await api.post(f"/api/v1/drafts/{draft['id']}/approve")
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == "approved"
        assert approved.json()["delivery"] == "download"
        assert approved.json()["imap_folder"] is None
        again = await api.post(f"/api/v1/drafts/{draft['id']}/approve")
        assert again.status_code == 200
        assert again.json()["approved_at"] == approved.json()["approved_at"]

        events = (await api.get("/api/v1/events")).json()["items"]
        approvals = [e for e in events if e["type"] == "draft.approved"]
        assert [e["data"]["draft"]["delivery"] for e in approvals] == ["download"]
        raw = await api.get(f"/api/v1/drafts/{draft['id']}/raw")
        assert raw.status_code == 200
        assert 'filename="draft-' in raw.headers["content-disposition"]


async def test_import_composes_every_quiet_thread_not_only_a_first_batch(
    ctx: Context, tmp_path: Path
) -> None:
    old = now_utc() - timedelta(days=14)
    path = tmp_path / "many.mbox"
    box = mailbox.mbox(path, create=True)
    for i in range(COMPOSE_BATCH + 12):
        box.add(
            make_message(
                from_=REP,
                to=[f"buyer{i}@customer{i}.example"],
                subject=f"Offer {i}",
                date=old,
                message_id=f"offer{i}@seller.example",
            )
        )
    box.close()
    async with await api_client(ctx, "owner@seller.example") as api:
        outcome = await run_import(ctx, path)
        assert outcome.drafts_created == COMPOSE_BATCH + 12
        listed = await api.get("/api/v1/drafts", params={"state": "pending", "limit": 200})
        assert len(listed.json()["items"]) == COMPOSE_BATCH + 12


async def test_a_thread_that_turns_quiet_after_the_import_gets_its_draft_later(
    ctx: Context, tmp_path: Path
) -> None:
    path = tmp_path / "recent.mbox"
    box = mailbox.mbox(path, create=True)
    box.add(
        make_message(
            from_=REP,
            to=[PROSPECT],
            subject="Contract draft",
            date=now_utc() - timedelta(hours=2),
            message_id="c1@seller.example",
        )
    )
    box.close()
    async with await api_client(ctx, "owner@seller.example") as api:
        assert (await run_import(ctx, path)).drafts_created == 0
        later = now_utc() + timedelta(days=10)
        ctx.clock = lambda: later
        async with ctx.engine.begin() as conn:  # what the scheduler does when a check is due
            assert await evaluate_due(conn, later) == 1
        assert await create_due_drafts_everywhere(ctx) == 1
        (draft,) = await pending(api)
        assert draft["in_reply_to"] == "<c1@seller.example>"
