"""A mailbox's first sync is a baseline: nothing is decided from half-read mail, and it ends
announcing `thread.quiet` for the threads quiet at its end and nothing else."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.mail import sync as mail_sync
from app.services import sync as sync_service
from app.services import threads as threads_service
from app.services.context import Context
from app.services.evaluation import evaluate_due
from app.services.followups import create_due_drafts_everywhere
from app.storage.tables import events, messages
from tests.factories import ImapUser, connect, make_message, now_utc
from tests.support.history import REP, announcements, answer, outcome, prospect, write_history

pytestmark = pytest.mark.integration


async def test_scheduler_running_throughout_a_slow_first_sync_announces_only_quiet(
    ctx: Context, imap_user: ImapUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = write_history(imap_user.server, imap_user.username, now_utc(), quiet=6)
    _, mailbox_id = await connect(ctx, imap_user)
    ctx.settings = ctx.settings.model_copy(update={"sync_batch_size": 1})
    batches = 0
    passes = 0
    synced = asyncio.Event()
    decided = asyncio.Event()  # a scheduler pass has ended since the last batch was stored

    # Each batch is stored only after a scheduler pass over what the earlier ones left (before
    # its transaction: SQLite's writer would wait on it), so the scheduler sees the mailbox
    # half read at every step, however loaded the machine.
    store = mail_sync._FolderReader._store

    async def store_after_a_pass(self: Any, *args: Any) -> Any:
        async with asyncio.timeout(30):
            await decided.wait()
        decided.clear()
        return await store(self, *args)

    monkeypatch.setattr(mail_sync._FolderReader, "_store", store_after_a_pass)

    def progress(_folder: str, _done: int, _total: int) -> None:
        nonlocal batches
        batches += 1

    async def scheduler() -> None:
        """The scheduler's pass (decide what is due, then compose drafts), over and over."""
        nonlocal passes
        while not synced.is_set():
            async with ctx.engine.begin() as conn:
                await evaluate_due(conn, ctx.clock())
            await create_due_drafts_everywhere(ctx)
            passes += 1
            decided.set()
            await asyncio.sleep(0.005)

    running = asyncio.create_task(scheduler())
    try:
        await sync_service.sync_mailbox(ctx, mailbox_id, progress=progress)
    finally:
        synced.set()
        await running
    # It decided between every two batches while the mailbox was half read (without the
    # baseline, such passes announce bounces and pauses that a calm run does not).
    assert batches >= 20 and passes >= batches

    after = await outcome(ctx.engine, mailbox_id)
    assert after.states == history.expected
    assert not after.baseline
    thread_events = Counter({k: n for k, n in after.events.items() if k[0].startswith("thread.")})
    assert thread_events == announcements(history)


async def test_a_thread_waits_for_a_body_still_to_read(
    ctx: Context, imap_user: ImapUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first sync, a prospect's answer that lost its threading headers joins its
    thread by subject and its body is read after the headers: until then the scheduler does
    not decide the thread on the header alone."""
    now = now_utc()
    history = write_history(imap_user.server, imap_user.username, now, quiet=2)
    _, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)
    root = history.quiet[0]
    imap_user.server.append(
        imap_user.username,
        "INBOX",
        make_message(
            from_=prospect(0),
            to=[REP],
            subject="Re: Proposal 0",
            date=now - timedelta(minutes=5),
            message_id="lost-headers@client0.example",
            body="Thanks, but we are not interested at this time.\n",
        ),
        date=now,
    )

    async def later(*_args: object, **_kw: object) -> None:
        return None

    # A pass whose body reading does not happen (as if killed after the headers): the
    # answer joins its thread by subject, its body unread; the sync's own decisions and the
    # scheduler's must both leave the thread alone.
    with monkeypatch.context() as patch:
        patch.setattr(mail_sync, "read_bodies", later)
        await sync_service.sync_mailbox(ctx, mailbox_id)
    async with ctx.engine.connect() as conn:
        joined = (
            await conn.execute(
                select(messages.c.details).where(
                    messages.c.message_key == "<lost-headers@client0.example>"
                )
            )
        ).one()
    assert joined.details is None  # body not read
    async with ctx.engine.begin() as conn:
        await evaluate_due(conn, ctx.clock())  # the scheduler
    held = await outcome(ctx.engine, mailbox_id)
    assert "<lost-headers@client0.example>" not in held.states  # it joined the quiet thread
    assert held.states[root] == "quiet"  # not decided on its header alone ("replied")
    assert ("thread.replied", root) not in held.events

    await sync_service.sync_mailbox(ctx, mailbox_id)  # the next sync reads the body
    after = await outcome(ctx.engine, mailbox_id)
    assert after.states[root] == "closed"  # a decline, which only its body says
    assert after.events[("thread.closed", root)] == 1
    assert ("thread.replied", root) not in after.events


async def test_its_end_announces_early_quiet_threads_once_and_decides_touched_ones_again(
    ctx: Context, imap_user: ImapUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads decided quiet early and not touched since are announced at the end as they
    stand (once each, their payload what the API shows); a thread whose answer a later batch
    brought is decided again, and its early "quiet" is never announced."""
    now = now_utc()
    history = write_history(imap_user.server, imap_user.username, now, quiet=4)
    user_id, mailbox_id = await connect(ctx, imap_user)
    ctx.settings = ctx.settings.model_copy(update={"sync_batch_size": 2})

    async def not_yet(*_args: object, **_kw: object) -> int:
        return 0

    # 1. A first sync reads everything and decides it early, but stops before its end.
    with monkeypatch.context() as patch:
        patch.setattr(sync_service, "end_baseline", not_yet)
        await sync_service.sync_mailbox(ctx, mailbox_id)
    early = await outcome(ctx.engine, mailbox_id)
    assert early.baseline
    assert not [kind for kind, _ in early.events if kind.startswith("thread.")]
    assert [early.states[root] for root in history.quiet] == ["quiet"] * 4
    touched = history.quiet[-1]

    # 2. It resumes and reads an answer to one of them, which is not decided early.
    answer(imap_user.server, imap_user.username, history, 1, now)
    monkeypatch.setattr(sync_service, "EARLY_DECISIONS", 0)
    await sync_service.sync_mailbox(ctx, mailbox_id)

    after = await outcome(ctx.engine, mailbox_id)
    assert not after.baseline
    assert after.states == history.expected
    assert after.states[touched] == "replied" and len(history.quiet) == 3
    thread_events = Counter({k: n for k, n in after.events.items() if k[0].startswith("thread.")})
    assert thread_events == announcements(history)
    async with ctx.engine.connect() as conn:
        announced = (
            await conn.execute(
                select(events.c.thread_id, events.c.payload).where(
                    events.c.mailbox_id == mailbox_id, events.c.type == "thread.quiet"
                )
            )
        ).all()
    assert len(announced) == 3
    for thread_id, payload in announced:
        shown = await threads_service.get_thread(ctx, user_id=user_id, thread_id=thread_id)
        assert payload["thread"] == shown.thread.as_json()
        assert shown.thread.message_ids and shown.thread.message_ids[0] in history.quiet


async def test_every_quiet_thread_has_its_draft_or_is_being_prepared_right_after_a_sync(
    ctx: Context, imap_user: ImapUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.services import followups
    from tests.support.api import api_client

    monkeypatch.setattr(followups, "COMPOSE_BATCH", 2)  # a sync composes fewer than are quiet
    history = write_history(imap_user.server, imap_user.username, now_utc(), quiet=6)
    async with await api_client(ctx, "owner@seller.example") as api:
        created = await api.post("/api/v1/mailboxes", json=imap_user.mailbox_body())
        mailbox_id = created.json()["id"]
        synced = await api.post(f"/api/v1/mailboxes/{mailbox_id}/sync", params={"wait": "true"})
        assert synced.status_code == 200, synced.text

        # The newest quiet threads got theirs first; the mailbox says how many are still due.
        mailbox = (await api.get(f"/api/v1/mailboxes/{mailbox_id}")).json()
        assert mailbox["drafts_preparing"] == 4
        quiet = (await api.get("/api/v1/threads", params={"state": "quiet"})).json()["items"]
        by_root = {t["message_ids"][0]: t["id"] for t in quiet}
        assert set(by_root) == set(history.quiet)
        drafted = {d["thread_id"] for d in (await api.get("/api/v1/drafts")).json()["items"]}
        assert drafted == {by_root[root] for root in history.quiet[:2]}

        # Asked for one that takes longer than the answer waits: it says it is being prepared.
        slow = by_root[history.quiet[-1]]
        monkeypatch.setattr(followups, "ON_DEMAND_SECONDS", 0.0)
        answer = await api.get("/api/v1/drafts", params={"thread_id": slow})
        assert answer.status_code == 200
        assert answer.json()["preparing"] is True
        assert answer.json()["retry_after"] == followups.PREPARING_RETRY_SECONDS
        assert answer.headers["Retry-After"] == str(followups.PREPARING_RETRY_SECONDS)
        monkeypatch.setattr(followups, "ON_DEMAND_SECONDS", 8.0)

        # Every quiet thread: its draft (composed on demand where missing), never a bare [].
        for root in history.quiet:
            answer = await api.get("/api/v1/drafts", params={"thread_id": by_root[root]})
            page = answer.json()
            assert page["preparing"] is False, root
            assert [(d["thread_id"], d["step"], d["state"]) for d in page["items"]] == [
                (by_root[root], 1, "pending")
            ]
            assert "Retry-After" not in answer.headers
        mailbox = (await api.get(f"/api/v1/mailboxes/{mailbox_id}")).json()
        assert mailbox["drafts_preparing"] == 0
        # A thread that is not quiet has no draft and none in preparation.
        replied = (await api.get("/api/v1/threads", params={"state": "replied"})).json()
        page = (
            await api.get("/api/v1/drafts", params={"thread_id": replied["items"][0]["id"]})
        ).json()
        assert page == {
            "items": [],
            "next_cursor": None,
            "preparing": False,
            "retry_after": None,
            "blocked": None,
        }


async def test_opening_a_quiet_thread_composes_its_missing_draft(
    ctx: Context, imap_user: ImapUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.services import followups
    from tests.support.pages import browser

    monkeypatch.setattr(followups, "COMPOSE_BATCH", 2)
    history = write_history(imap_user.server, imap_user.username, now_utc(), quiet=4)
    _, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)
    b = browser(ctx)
    try:
        await b.sign_in("owner@seller.example", "pw-123456789")
        page = await b.get(f"/mailboxes/{mailbox_id}")
        assert "2 follow-up drafts being prepared" in page.text
        quiet = await b.get("/threads?state=quiet")
        links = dict(re.findall(r'href="/threads/(\d+)">([^<]+)<', quiet.html))
        by_subject = {subject.strip(): int(tid) for tid, subject in links.items()}
        oldest, next_oldest = by_subject["Proposal 3"], by_subject["Proposal 2"]
        # The newest quiet threads were composed first; the two oldest wait.
        assert quiet.text.count("The draft is being prepared.") == 2

        monkeypatch.setattr(followups, "ON_DEMAND_SECONDS", 0.0)  # the mail server is slow
        page = await b.get(f"/threads/{oldest}")
        assert "The follow-up draft is being prepared; reload in a moment." in page.text
        monkeypatch.setattr(followups, "ON_DEMAND_SECONDS", 8.0)
        for thread_id in (oldest, next_oldest):
            page = await b.get(f"/threads/{thread_id}")
            assert "Review the follow-up draft" in page.text, thread_id
        page = await b.get(f"/mailboxes/{mailbox_id}")
        assert "being prepared" not in page.text
    finally:
        await b.aclose()
    assert history.quiet[2:] == ["<quiet2@seller.example>", "<quiet3@seller.example>"]


async def test_a_missing_draft_of_a_mailbox_that_cannot_be_read_says_so(
    ctx: Context, imap_user: ImapUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not "being prepared" forever: the draft waits for the rep to fix the mailbox."""
    from app.services import followups
    from tests.support.api import api_client
    from tests.support.pages import browser

    monkeypatch.setattr(followups, "COMPOSE_BATCH", 1)
    write_history(imap_user.server, imap_user.username, now_utc(), quiet=3)
    _, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)
    # The rep changed the password at the mail server: the next sync cannot log in.
    imap_user.server.add_user(imap_user.username, "a-new-password-123")
    with pytest.raises(Exception):  # noqa: B017 - which error the sync raises is its own test's
        await sync_service.sync_mailbox(ctx, mailbox_id)

    async with await api_client(ctx, "owner@seller.example", create_user=False) as api:
        mailbox = (await api.get(f"/api/v1/mailboxes/{mailbox_id}")).json()
        assert mailbox["status"] == "failed"
        quiet = (await api.get("/api/v1/threads", params={"state": "quiet"})).json()["items"]
        drafted = {d["thread_id"] for d in (await api.get("/api/v1/drafts")).json()["items"]}
        waiting = [t["id"] for t in quiet if t["id"] not in drafted]
        assert len(waiting) == 2
        answer = await api.get("/api/v1/drafts", params={"thread_id": waiting[0]})
        page = answer.json()
        assert page["items"] == [] and page["preparing"] is False
        assert "Retry-After" not in answer.headers
        assert page["blocked"].startswith(f"the mailbox {mailbox['name']} cannot be read now (")
        assert mailbox["status_message"] in page["blocked"]
        # A thread that has its draft is not blocked by the mailbox's state.
        ready = (await api.get("/api/v1/drafts", params={"thread_id": drafted.pop()})).json()
        assert ready["blocked"] is None and len(ready["items"]) == 1

    b = browser(ctx)
    try:
        await b.sign_in("owner@seller.example", "pw-123456789")
        shown = await b.get(f"/threads/{waiting[1]}")
        assert "No follow-up draft yet: the mailbox" in shown.text
        assert "being prepared" not in shown.text
        assert f'href="/mailboxes/{mailbox_id}"' in shown.html
    finally:
        await b.aclose()
