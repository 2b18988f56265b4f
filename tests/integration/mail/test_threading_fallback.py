"""Threading where clients broke the headers: Outlook's Thread-Index and the subject fallback,
through the same pipeline as a sync (a Maildir import), on SQLite and PostgreSQL."""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.services.accounts import create_user
from app.services.context import Context
from app.services.imports import import_mail
from app.storage.tables import messages
from tests.factories import make_message

pytestmark = pytest.mark.integration
REP = "rep@seller.example"
BUYER = "ana@buyer.example"
BUYER_COLLEAGUE = "ben@buyer.example"
STRANGER = "zoe@elsewhere.example"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=70)
# One Outlook conversation: the 22-byte header block, then one 5-byte block per reply.
THREAD_INDEX = "AdlZkq3o1n2Hq8PFRn2m0w7dU3nD7Q=="
THREAD_INDEX_REPLY = "AdlZkq3o1n2Hq8PFRn2m0w7dU3nD7QAAAAAB"


def write(path: Path, inbox: list[bytes], sent: list[bytes]) -> None:
    root = mailbox.Maildir(path, create=True)
    for raw in inbox:  # INBOX is read first: an orphan arrives before its thread
        root.add(raw)
    folder = root.add_folder("Sent")
    for raw in sent:
        folder.add(raw)


async def threads_by_message(ctx: Context, path: Path) -> dict[str, tuple[int, str | None]]:
    await create_user(ctx, email=REP, password="pw-123456789")
    await import_mail(ctx, path, email=REP, mailbox_name="Export", addresses=[REP])
    async with ctx.engine.connect() as conn:
        rows = await conn.execute(
            select(messages.c.message_key, messages.c.thread_id, messages.c.thread_reason)
        )
        return {key: (int(tid), reason) for key, tid, reason in rows}


def original(subject: str, mid: str, *, to: str = BUYER, days: int = 0) -> bytes:
    return make_message(
        from_=REP, to=[to], subject=subject, date=T0 + timedelta(days=days), message_id=mid
    )


def answer(subject: str, mid: str, *, from_: str = BUYER, days: int = 1, **kw: object) -> bytes:
    return make_message(
        from_=from_,
        to=[REP],
        subject=subject,
        date=T0 + timedelta(days=days),
        message_id=mid,
        **kw,  # type: ignore[arg-type]
    )


async def test_a_reply_without_threading_headers_joins_by_subject_and_people(
    ctx: Context, tmp_path: Path
) -> None:
    write(
        tmp_path / "mail",
        inbox=[
            answer("AW: Rollout plan for Buyer GmbH", "a1@buyer.example"),
            # A colleague from the same company, added later, also without headers.
            answer("Re: Rollout plan for Buyer GmbH", "a2@buyer.example", from_=BUYER_COLLEAGUE),
        ],
        sent=[original("Rollout plan for Buyer GmbH", "o1@seller.example")],
    )
    found = await threads_by_message(ctx, tmp_path / "mail")
    rep_thread = found["<o1@seller.example>"][0]
    assert found["<a1@buyer.example>"][0] == rep_thread
    assert found["<a2@buyer.example>"][0] == rep_thread
    reason = found["<a1@buyer.example>"][1]
    assert reason is not None and "subject fallback" in reason
    assert found["<o1@seller.example>"][1] is None  # threaded by its own headers


async def test_generic_subjects_strangers_and_old_mail_never_merge(
    ctx: Context, tmp_path: Path
) -> None:
    write(
        tmp_path / "mail",
        inbox=[
            # Two different "Quick question" conversations stay apart.
            answer("Re: Quick question", "g1@buyer.example"),
            # Same subject, but from someone who was never in the thread.
            answer("Re: Pricing for the Q3 rollout", "s1@elsewhere.example", from_=STRANGER),
            # Same subject and person, but long after the thread went silent.
            answer("Re: Renewal terms 2027", "late@buyer.example", days=45),
            # A newsletter with a reply prefix is bulk: it never looks for a thread.
            answer(
                "Re: Pricing for the Q3 rollout",
                "n1@buyer.example",
                headers={"List-Unsubscribe": "<mailto:off@buyer.example>"},
            ),
        ],
        sent=[
            original("Quick question", "q1@seller.example"),
            original("Quick question", "q2@seller.example", to=BUYER_COLLEAGUE),
            original("Pricing for the Q3 rollout", "p1@seller.example"),
            original("Renewal terms 2027", "r1@seller.example"),
        ],
    )
    found = await threads_by_message(ctx, tmp_path / "mail")
    threads = {key: tid for key, (tid, _) in found.items()}
    assert len({threads["<q1@seller.example>"], threads["<q2@seller.example>"]}) == 2
    assert threads["<g1@buyer.example>"] not in {
        threads["<q1@seller.example>"],
        threads["<q2@seller.example>"],
    }
    assert threads["<s1@elsewhere.example>"] != threads["<p1@seller.example>"]
    assert threads["<late@buyer.example>"] != threads["<r1@seller.example>"]
    assert threads["<n1@buyer.example>"] != threads["<p1@seller.example>"]
    assert all(reason is None for _, reason in found.values())


async def test_outlook_thread_index_ties_a_reply_that_lost_its_references(
    ctx: Context, tmp_path: Path
) -> None:
    write(
        tmp_path / "mail",
        inbox=[
            # A gateway stripped In-Reply-To/References and rewrote the subject; the
            # conversation's Thread-Index survived.
            answer(
                "[EXTERNAL] Angebot",
                "t2@buyer.example",
                headers={"Thread-Index": THREAD_INDEX_REPLY},
            )
        ],
        sent=[
            make_message(
                from_=REP,
                to=[BUYER],
                subject="Offer for the pilot",
                date=T0,
                message_id="t1@seller.example",
                headers={"Thread-Index": THREAD_INDEX},
            ),
            original("Something else entirely", "x1@seller.example"),
        ],
    )
    found = await threads_by_message(ctx, tmp_path / "mail")
    assert found["<t2@buyer.example>"][0] == found["<t1@seller.example>"][0]
    assert found["<x1@seller.example>"][0] != found["<t1@seller.example>"][0]
