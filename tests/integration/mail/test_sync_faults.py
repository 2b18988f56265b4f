"""Faults during a sync end in the threads and states of a clean sync, with no duplicate events."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from app.domain.model import Identity
from app.errors import MailConnectionError, MailTLSError
from app.mail import sync as mail_sync
from app.mail.imap import ImapAccount, ImapSession
from app.services import events, mailboxes, threads
from app.services import sync as sync_service
from app.services.context import Context
from app.storage.threads import threads_to_evaluate
from tests.conftest import TEST_SECRET_KEY, make_settings
from tests.factories import (
    PROSPECT,
    REP,
    ImapUser,
    Scenario,
    connect,
    make_message,
    now_utc,
    populate,
)
from tests.support.processes import CLI, cli_env

pytestmark = pytest.mark.integration
EXPECTED = {
    "quiet": "quiet",
    "replied": "replied",
    "awaiting": "awaiting_reply",
    "internal": "ignored",
    "paused": "paused",
}


@pytest.fixture(autouse=True)
def fast_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync_service, "RECONNECT_BASE_DELAY", 0.05)


async def assert_converged(ctx: Context, user_id: int, scenario: Scenario) -> None:
    items, _ = await threads.list_threads(ctx, user_id=user_id, limit=200)
    by_root = {t.message_ids[0]: t.state for t in items}
    assert by_root == {getattr(scenario, k): v for k, v in EXPECTED.items()}
    log = await events.list_events(ctx, user_id=user_id, after=None, limit=100)
    assert [e["type"] for e in log] == ["thread.quiet", "draft.created"]


def small_batches(ctx: Context) -> None:
    ctx.settings = ctx.settings.model_copy(update={"sync_batch_size": 1})


async def test_connection_killed_mid_sync_resumes(ctx: Context, imap_user: ImapUser) -> None:
    scenario = populate(imap_user, now_utc())
    user_id, mailbox_id = await connect(ctx, imap_user)
    small_batches(ctx)
    kicked: list[str] = []

    def kick_once(folder: str, done: int, total: int) -> None:
        if not kicked:
            kicked.append(folder)
            imap_user.server.kill_connections(imap_user.username)

    await sync_service.sync_mailbox(ctx, mailbox_id, progress=kick_once)

    assert kicked
    await assert_converged(ctx, user_id, scenario)
    again = await sync_service.sync_mailbox(ctx, mailbox_id)
    assert again.new_messages == 0


async def test_server_restart_mid_sync_resumes(ctx: Context, imap_user: ImapUser) -> None:
    scenario = populate(imap_user, now_utc())
    user_id, mailbox_id = await connect(ctx, imap_user)
    small_batches(ctx)
    restarted: list[bool] = []

    def restart_once(folder: str, done: int, total: int) -> None:
        if folder == "Sent" and not restarted:
            restarted.append(True)
            imap_user.server.restart()

    await sync_service.sync_mailbox(ctx, mailbox_id, progress=restart_once)

    assert restarted
    await assert_converged(ctx, user_id, scenario)


async def test_mail_arriving_during_a_sync_is_read_once(ctx: Context, imap_user: ImapUser) -> None:
    now = now_utc()
    scenario = populate(imap_user, now)
    user_id, mailbox_id = await connect(ctx, imap_user)
    small_batches(ctx)
    added: list[int] = []

    def deliver_once(folder: str, done: int, total: int) -> None:
        if not added:
            added.append(
                imap_user.server.append(
                    imap_user.username,
                    "INBOX",
                    make_message(
                        from_=PROSPECT,
                        to=[REP],
                        subject="Re: Next steps",
                        date=now,
                        message_id="during@buyer.example",
                        references=["a1@seller.example"],
                    ),
                    date=now,
                )
            )

    await sync_service.sync_mailbox(ctx, mailbox_id, progress=deliver_once)
    await sync_service.sync_mailbox(ctx, mailbox_id)

    items, _ = await threads.list_threads(ctx, user_id=user_id, limit=200)
    by_root = {t.message_ids[0]: t for t in items}
    assert by_root[scenario.awaiting].message_ids == [
        scenario.awaiting,
        "<during@buyer.example>",
    ]
    assert by_root[scenario.awaiting].state == "replied"


async def test_a_deleted_message_stays_in_its_thread(ctx: Context, imap_user: ImapUser) -> None:
    scenario = populate(imap_user, now_utc())
    user_id, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)
    with imap_user.server.imap(imap_user.username) as conn:
        conn.select("Clients/Acme")
        conn.store("1:*", "+FLAGS", "(\\Deleted)")
        conn.expunge()

    await sync_service.sync_mailbox(ctx, mailbox_id)

    items, _ = await threads.list_threads(ctx, user_id=user_id, limit=200)
    replied = next(t for t in items if t.message_ids[0] == scenario.replied)
    assert replied.message_ids == [scenario.replied, "<r2@buyer.example>"]
    assert replied.state == "replied"


async def test_first_read_is_newest_first_and_an_idle_poll_is_cheap(
    ctx: Context, imap_user: ImapUser
) -> None:
    now = now_utc()
    for i in range(6):
        date = now - timedelta(days=6 - i)
        imap_user.server.append(
            imap_user.username,
            "Sent",
            make_message(
                from_=REP,
                to=[PROSPECT],
                subject=f"Offer {i}",
                date=date,
                message_id=f"o{i}@seller.example",
            ),
            date=date,
        )
    _, mailbox_id = await connect(ctx, imap_user)
    account = ImapAccount(
        host=imap_user.server.host,
        port=imap_user.server.port,
        security="plain",
        username=imap_user.username,
        secret=imap_user.password,
    )
    ref = mail_sync.MailboxRef(id=mailbox_id, user_id=1, identity=Identity.from_addresses([REP]))
    options = mail_sync.SyncOptions(since=None, batch_size=2, now=now)
    seen: list[str] = []

    def record(folder: str, done: int, total: int) -> None:
        seen.append(f"{folder}:{done}/{total}")

    session = await asyncio.to_thread(ImapSession.open, account)
    try:
        await mail_sync.sync_mailbox(ctx.engine, session, ref, options, record)
        before = session.round_trips
        report = await mail_sync.sync_mailbox(ctx.engine, session, ref, options)
        idle_round_trips = session.round_trips - before
    finally:
        await asyncio.to_thread(session.close)

    assert seen == ["Sent:2/6", "Sent:4/6", "Sent:6/6"]
    async with ctx.engine.connect() as conn:
        stored = await threads_to_evaluate(conn, now=now, mailbox_id=mailbox_id)
    # ids grow with insertion: the newest offer was stored first
    by_subject = {t.subject: t.id for t in stored}
    assert by_subject["Offer 5"] < by_subject["Offer 0"]
    assert report.new_messages == 0
    # LIST once, then one STATUS per folder read (INBOX, Sent)
    assert idle_round_trips <= 1 + 2 * report.folders, idle_round_trips


async def test_self_signed_certificate_refused_unless_its_ca_is_given(
    ctx: Context, imap_user: ImapUser
) -> None:
    server = imap_user.server
    account = ImapAccount(
        host="127.0.0.1",
        port=server.tls_port,
        security="tls",
        username=imap_user.username,
        secret=imap_user.password,
    )
    # Implicit TLS fails before the server has said anything: the answer is the one every
    # failed connection gets (what failed is in the log), so that it tells nothing of what
    # listens there. After STARTTLS the server has spoken IMAP: the certificate is named.
    with pytest.raises(MailConnectionError, match="refused or TLS failed") as caught:
        await mailboxes.test_connection(ctx, account, user_id=1)
    assert "RADIOSILENCE_IMAP_CA_FILE" in caught.value.message
    starttls = ImapAccount(
        host="127.0.0.1",
        port=server.port,
        security="starttls",
        username=imap_user.username,
        secret=imap_user.password,
    )
    with pytest.raises(MailTLSError, match="could not be verified"):
        await mailboxes.test_connection(ctx, starttls, user_id=1)

    ctx.settings = ctx.settings.model_copy(update={"imap_ca_file": server.ca_cert_path})
    assert "INBOX" in await mailboxes.test_connection(ctx, account, user_id=1)
    assert "INBOX" in await mailboxes.test_connection(ctx, starttls, user_id=1)


def test_process_killed_mid_sync_converges(imap_user: ImapUser, tmp_path: Path) -> None:
    scenario = populate(imap_user, now_utc())
    url = f"sqlite+aiosqlite:///{tmp_path}/rs.db"
    settings = make_settings(url)

    async def setup() -> tuple[int, int]:
        from app.storage.migrate import upgrade_async

        await upgrade_async(url)
        ctx = Context.create(settings)
        try:
            return await connect(ctx, imap_user)
        finally:
            await ctx.close()

    user_id, mailbox_id = asyncio.run(setup())
    env = cli_env(database_url=url, secret_key=TEST_SECRET_KEY, sync_batch_size="1")
    proc = subprocess.Popen(
        [CLI, "sync", str(mailbox_id)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while b"/" not in proc.stderr.read1(256):  # the first progress line: a batch is committed
        assert time.monotonic() < deadline and proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()

    async def finish() -> None:
        ctx = Context.create(settings)
        try:
            # The dead process's lease must expire first: in production after lease_seconds.
            from sqlalchemy import update

            from app.storage.tables import mailboxes as mailbox_table

            async with ctx.engine.begin() as conn:
                await conn.execute(update(mailbox_table).values(lease_expires_at=None))
            await sync_service.sync_mailbox(ctx, mailbox_id)
            await assert_converged(ctx, user_id, scenario)
        finally:
            await ctx.close()

    asyncio.run(finish())
