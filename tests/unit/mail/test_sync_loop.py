"""The sync loop (mail.sync) against the in-memory IMAP server of tests/fakes.py.

The sync stores each batch with its folder position in one transaction, so these tests need
the storage: each runs on its own copy of the migrated SQLite template (the `sqlite_url`
fixture: a file copy, no migration, no socket), its mailbox made by tests/factories.py.
No Dovecot: each test takes milliseconds. What a real server does beyond these semantics
stays in tests/integration/mail/test_sync*.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.model import Identity
from app.errors import MailConnectionError, MailServerError
from app.mail import sync as mail_sync
from app.mail.answers import Refused
from app.services.context import Context
from app.storage import tables
from tests.conftest import make_settings
from tests.factories import PROSPECT, REP, make_mailbox, make_message
from tests.fakes import FakeImapServer

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SINCE = (NOW - timedelta(days=30)).date()


def message(n: int, *, sender: str = PROSPECT, to: str = REP, days_ago: float = 1.0) -> bytes:
    return make_message(
        from_=sender,
        to=[to],
        subject=f"Proposal {n}",
        date=NOW - timedelta(days=days_ago),
        message_id=f"m{n}@example.test",
        body=f"Body of message {n}.",
        headers={"X-Unrelated": "not asked for by the header pass"},
    )


@pytest.fixture
async def ctx(sqlite_url: str) -> AsyncIterator[Context]:
    context = Context.create(make_settings(sqlite_url))
    yield context
    await context.close()


@pytest.fixture
def engine(ctx: Context) -> AsyncEngine:
    return ctx.engine


@pytest.fixture
async def ref(ctx: Context) -> mail_sync.MailboxRef:
    async with ctx.engine.begin() as conn:
        user_id, mailbox_id = await make_mailbox(conn, ctx)
    return mail_sync.MailboxRef(
        id=mailbox_id, user_id=user_id, identity=Identity.from_addresses([REP])
    )


@pytest.fixture
def server() -> FakeImapServer:
    server = FakeImapServer()
    server.add_folder("INBOX")
    server.add_folder("Sent", "\\Sent")
    server.add_folder("Trash", "\\Trash")  # never read
    return server


def options(batch_size: int = 3) -> mail_sync.SyncOptions:
    return mail_sync.SyncOptions(since=SINCE, batch_size=batch_size, now=NOW)


async def sync(
    engine: AsyncEngine,
    server: FakeImapServer,
    ref: mail_sync.MailboxRef,
    batch_size: int = 3,
) -> mail_sync.SyncReport:
    session = server.connect()
    try:
        return await mail_sync.sync_mailbox(engine, session, ref, options(batch_size))
    finally:
        session.close()


async def stored(engine: AsyncEngine, folder: str) -> dict[int, str]:
    """UID -> Message-ID of what the sync stored for `folder` (under its UIDVALIDITY)."""
    locations, messages, folders = tables.message_locations, tables.messages, tables.folders
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(locations.c.uid, messages.c.message_key)
            .join(messages, messages.c.id == locations.c.message_id)
            .join(folders, folders.c.id == locations.c.folder_id)
            .where(folders.c.name == folder, locations.c.uidvalidity == folders.c.uidvalidity)
        )
        return {int(uid): str(key) for uid, key in rows}


async def message_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return len((await conn.execute(select(tables.messages.c.id))).all())


async def position(engine: AsyncEngine, folder: str) -> dict[str, int | None]:
    f = tables.folders
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(
                        f.c.uidvalidity,
                        f.c.highest_uid,
                        f.c.highest_modseq,
                        f.c.backfill_top_uid,
                        f.c.backfill_low_uid,
                    ).where(f.c.name == folder)
                )
            )
            .mappings()
            .one()
        )
    return dict(row)


def keys(*numbers: int) -> list[str]:
    return [f"<m{n}@example.test>" for n in numbers]


async def test_first_sync_reads_newest_first_in_batches(
    engine: AsyncEngine, server: FakeImapServer, ref: mail_sync.MailboxRef
) -> None:
    server.deliver("INBOX", message(1, days_ago=60))  # UID 1, before the look-back window
    for n in range(2, 10):
        server.deliver("INBOX", message(n, days_ago=10 - n))
    server.deliver("Sent", message(100, sender=REP, to=PROSPECT))
    server.deliver("Trash", message(200))

    report = await sync(engine, server, ref)

    # Newest of each window first, three at a time, never Trash; INBOX and Sent go back in
    # time together (issue 19: Sent's one batch right after INBOX's first, not after all of it)
    assert server.header_batches == [[9, 8, 7], [1], [6, 5, 4], [3, 2]]
    assert report.new_messages == 9 and report.folders == 2 and report.skipped == 0
    assert await stored(engine, "INBOX") == dict(
        zip(range(2, 10), keys(*range(2, 10)), strict=True)
    )
    assert await stored(engine, "Sent") == {1: keys(100)[0]}
    assert await stored(engine, "Trash") == {}
    # The backfill is done: later passes read only above its top
    inbox = await position(engine, "INBOX")
    assert inbox["highest_uid"] == 9 and inbox["backfill_top_uid"] is None
    assert inbox["uidvalidity"] == server.folders["INBOX"].uidvalidity
    assert report.idle_capable


async def test_a_first_read_keeps_its_window_batch_by_batch(
    engine: AsyncEngine, server: FakeImapServer, ref: mail_sync.MailboxRef
) -> None:
    """Arrival order is not UID order (mail copied in from an old archive): each batch asks
    which of its UIDs are in the window; the first with none asks for the window's rest below
    it at once, and the batches under it are cut by that answer, with no search each."""
    ages = [5, 70, 3, 80, 90, 95, 2, 61, 1]  # days since arrival of UIDs 1..9
    for n, age in enumerate(ages, 1):
        server.deliver("INBOX", message(n, days_ago=age), arrived=NOW - timedelta(days=age))

    report = await sync(engine, server, ref)

    inside = [n for n, age in enumerate(ages, 1) if age <= 30]
    assert sorted(await stored(engine, "INBOX")) == inside == [1, 3, 7, 9]
    assert report.new_messages == 4
    # [9, 8, 7] keeps 9 and 7; [6, 5, 4] none (no FETCH), so the rest under 4 is asked:
    # 1 and 3; [3, 2, 1] is cut by that answer.
    assert server.header_batches == [[9, 7], [3, 1]]
    searches = [(c, a) for c, a in server.log if c in ("window_uids", "window_below")]
    assert searches == [
        ("window_uids", f"7..9 (3) since={SINCE}"),
        ("window_uids", f"4..6 (3) since={SINCE}"),
        ("window_below", f"4 since={SINCE}"),
    ]
    assert (await position(engine, "INBOX"))["highest_uid"] == 9

    # Later passes read what is new, window or not: no window search.
    server.deliver("INBOX", message(10, days_ago=40), arrived=NOW - timedelta(days=40))
    server.log.clear()
    await sync(engine, server, ref)
    assert 10 in await stored(engine, "INBOX")
    assert not {"window_uids", "window_below"} & set(server.commands())


async def test_a_folder_too_large_to_hold_is_cut_to_its_window_first(
    engine: AsyncEngine,
    server: FakeImapServer,
    ref: mail_sync.MailboxRef,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past WHOLE_FOLDER_UIDS messages the folder's UIDs are not all held: one SEARCH SINCE
    up front, and its batches ask nothing more."""
    monkeypatch.setattr(mail_sync, "WHOLE_FOLDER_UIDS", 3)
    ages = [5, 70, 3, 80, 2]
    for n, age in enumerate(ages, 1):
        server.deliver("INBOX", message(n, days_ago=age), arrived=NOW - timedelta(days=age))

    await sync(engine, server, ref)

    assert sorted(await stored(engine, "INBOX")) == [1, 3, 5]
    assert ("search_uids", f"1:* since={SINCE}") in server.log
    assert not {"window_uids", "window_below"} & set(server.commands())


async def test_incremental_sync_reads_only_above_the_high_water_uid(
    engine: AsyncEngine, server: FakeImapServer, ref: mail_sync.MailboxRef
) -> None:
    for n in range(1, 5):
        server.deliver("INBOX", message(n))
    await sync(engine, server, ref)
    server.header_batches.clear()
    server.log.clear()
    for n in range(5, 10):
        server.deliver("INBOX", message(n))

    report = await sync(engine, server, ref)

    assert report.new_messages == 5
    assert server.header_batches == [[5, 6, 7], [8, 9]]  # ascending: oldest news first
    assert ("search_uids", "5:* since=None") in server.log
    assert sorted(await stored(engine, "INBOX")) == list(range(1, 10))
    assert (await position(engine, "INBOX"))["highest_uid"] == 9
    assert await message_count(engine) == 9


async def test_a_poll_with_nothing_new_costs_one_status_per_folder(
    engine: AsyncEngine, server: FakeImapServer, ref: mail_sync.MailboxRef
) -> None:
    for n in range(1, 4):
        server.deliver("INBOX", message(n))
    await sync(engine, server, ref)
    server.log.clear()

    report = await sync(engine, server, ref)

    assert report.new_messages == 0
    assert server.log == [("list_folders", ""), ("status", "INBOX"), ("status", "Sent")]


async def test_a_flag_change_is_looked_at_but_fetches_nothing(
    engine: AsyncEngine, server: FakeImapServer, ref: mail_sync.MailboxRef
) -> None:
    """With CONDSTORE a changed HIGHESTMODSEQ is not "unchanged"; an expunge changes it too.
    Nothing above the high-water UID: no FETCH, and the new modseq is kept."""
    for n in range(1, 4):
        server.deliver("INBOX", message(n))
    await sync(engine, server, ref)
    server.expunge("INBOX", 2)
    server.header_batches.clear()
    server.log.clear()

    report = await sync(engine, server, ref)

    assert report.new_messages == 0 and server.header_batches == []
    assert ("search_uids", "4:* since=None") in server.log
    assert (await position(engine, "INBOX"))["highest_modseq"] == server.folders["INBOX"].modseq
    server.log.clear()
    await sync(engine, server, ref)
    assert [c for c in server.commands() if c != "status"] == ["list_folders"]


async def test_without_condstore_uidnext_alone_tells_nothing_is_new(
    engine: AsyncEngine, ref: mail_sync.MailboxRef
) -> None:
    server = FakeImapServer(capabilities=["IMAP4REV1"])
    server.add_folder("INBOX")
    server.deliver("INBOX", message(1))
    report = await sync(engine, server, ref)
    assert not report.idle_capable and report.new_messages == 1
    server.log.clear()
    await sync(engine, server, ref)
    assert server.log == [("list_folders", ""), ("status", "INBOX")]


async def test_a_uidvalidity_change_reads_the_folder_again_without_storing_twice(
    engine: AsyncEngine, server: FakeImapServer, ref: mail_sync.MailboxRef
) -> None:
    for n in range(1, 6):
        server.deliver("INBOX", message(n))
    server.expunge("INBOX", 1, 2)  # the renumbered folder's UIDs differ from the old ones
    await sync(engine, server, ref)
    old = server.folders["INBOX"].uidvalidity
    assert sorted(await stored(engine, "INBOX")) == [3, 4, 5]

    server.renumber("INBOX")
    server.deliver("INBOX", message(6))
    server.header_batches.clear()
    report = await sync(engine, server, ref)

    assert report.new_messages == 1  # known by Message-ID: the others are not new
    assert server.header_batches == [[4, 3, 2], [1]]  # the whole window again, newest first
    assert await stored(engine, "INBOX") == dict(zip([1, 2, 3, 4], keys(3, 4, 5, 6), strict=True))
    inbox = await position(engine, "INBOX")
    assert inbox["uidvalidity"] == server.folders["INBOX"].uidvalidity != old
    assert inbox["highest_uid"] == 4
    async with engine.connect() as conn:  # no location under the old numbering is left
        stale = await conn.execute(
            select(tables.message_locations.c.uid).where(
                tables.message_locations.c.uidvalidity == old
            )
        )
        assert stale.all() == []
    assert await message_count(engine) == 4


@pytest.mark.parametrize("failing_batch", [0, 1, 2])
async def test_a_connection_dropped_mid_fetch_resumes_without_loss_or_duplicates(
    engine: AsyncEngine, server: FakeImapServer, ref: mail_sync.MailboxRef, failing_batch: int
) -> None:
    for n in range(1, 9):
        server.deliver("INBOX", message(n))
    server.fail("fetch_headers", "drop", after=failing_batch)

    with pytest.raises(MailConnectionError):
        await sync(engine, server, ref)

    # What was committed is exactly the batches read before the drop, and the low-water
    # mark says so: the next pass starts below it.
    committed = [uid for batch in server.header_batches for uid in batch]
    assert sorted(await stored(engine, "INBOX")) == sorted(committed)
    inbox = await position(engine, "INBOX")
    assert inbox["backfill_top_uid"] == 8
    assert inbox["backfill_low_uid"] == (min(committed) if committed else 9)
    assert inbox["highest_uid"] == 0
    server.header_batches.clear()

    again = await sync(engine, server, ref)  # a new connection, as the service retries

    fetched_again = [uid for batch in server.header_batches for uid in batch]
    assert not set(fetched_again) & set(committed)  # nothing committed is read twice
    assert sorted(fetched_again + committed) == list(range(1, 9))
    assert again.new_messages == 8 - len(committed)
    assert sorted(await stored(engine, "INBOX")) == list(range(1, 9))
    assert await message_count(engine) == 8
    assert (await position(engine, "INBOX"))["highest_uid"] == 8


async def test_a_drop_during_an_incremental_pass_resumes_after_the_last_commit(
    engine: AsyncEngine, server: FakeImapServer, ref: mail_sync.MailboxRef
) -> None:
    server.deliver("INBOX", message(1))
    await sync(engine, server, ref)
    for n in range(2, 9):
        server.deliver("INBOX", message(n))
    server.fail("fetch_headers", "drop", after=1)

    with pytest.raises(MailConnectionError):
        await sync(engine, server, ref)
    assert (await position(engine, "INBOX"))["highest_uid"] == 4  # batch 2:4 committed
    server.header_batches.clear()

    report = await sync(engine, server, ref)

    assert server.header_batches == [[5, 6, 7], [8]]
    assert report.new_messages == 4
    assert sorted(await stored(engine, "INBOX")) == list(range(1, 9))


@pytest.mark.parametrize("kind", ["no", "bad"])
async def test_a_refused_fetch_stops_the_pass_and_the_next_one_completes(
    engine: AsyncEngine, server: FakeImapServer, ref: mail_sync.MailboxRef, kind: str
) -> None:
    for n in range(1, 8):
        server.deliver("INBOX", message(n))
    server.fail("fetch_headers", "no" if kind == "no" else "bad", after=1)

    with pytest.raises(MailServerError, match="refused UID FETCH") as failed:
        await sync(engine, server, ref)
    assert not isinstance(failed.value, MailConnectionError)
    assert sorted(await stored(engine, "INBOX")) == [5, 6, 7]

    report = await sync(engine, server, ref)
    assert report.new_messages == 4
    assert sorted(await stored(engine, "INBOX")) == list(range(1, 8))


async def test_a_refused_search_leaves_the_position_as_it_was(
    engine: AsyncEngine, server: FakeImapServer, ref: mail_sync.MailboxRef
) -> None:
    server.deliver("INBOX", message(1))
    await sync(engine, server, ref)
    before = await position(engine, "INBOX")
    server.deliver("INBOX", message(2))
    server.fail("search_uids", "no")

    with pytest.raises(Refused):
        await sync(engine, server, ref)
    assert await position(engine, "INBOX") == before

    assert (await sync(engine, server, ref)).new_messages == 1


async def test_a_message_expunged_between_search_and_fetch_is_skipped(
    engine: AsyncEngine, server: FakeImapServer, ref: mail_sync.MailboxRef
) -> None:
    for n in range(1, 7):
        server.deliver("INBOX", message(n))
    server.when("fetch_headers", lambda: server.expunge("INBOX", 2), after=1)

    report = await sync(engine, server, ref)

    assert report.new_messages == 5 and report.skipped == 0
    assert sorted(await stored(engine, "INBOX")) == [1, 3, 4, 5, 6]
    assert (await position(engine, "INBOX"))["highest_uid"] == 6


async def test_mail_arriving_during_the_first_sync_is_read_by_the_same_pass(
    engine: AsyncEngine, server: FakeImapServer, ref: mail_sync.MailboxRef
) -> None:
    """The backfill reads up to the top it aimed at; the incremental part of the same pass
    then reads what arrived meanwhile (STATUS came first: the next poll reads the rest)."""
    for n in range(1, 5):
        server.deliver("INBOX", message(n))
    server.when("fetch_headers", lambda: server.deliver("INBOX", message(5)))

    report = await sync(engine, server, ref)

    assert server.header_batches == [[4, 3, 2], [1], [5]]
    assert report.new_messages == 5
    assert (await position(engine, "INBOX"))["highest_uid"] == 5


async def test_unreadable_headers_are_recorded_and_the_sync_goes_on(
    engine: AsyncEngine, server: FakeImapServer, ref: mail_sync.MailboxRef
) -> None:
    server.deliver("INBOX", message(1))
    server.deliver("INBOX", b"\x00\xff not a message", arrived=NOW - timedelta(days=1))
    server.deliver("INBOX", message(3))

    report = await sync(engine, server, ref)

    assert report.new_messages == 2 and report.skipped == 1
    assert await stored(engine, "INBOX") == {1: keys(1)[0], 3: keys(3)[0]}
    assert (await position(engine, "INBOX"))["highest_uid"] == 3
    async with engine.connect() as conn:
        errors = (await conn.execute(select(tables.sync_errors.c.uid))).scalars().all()
    assert errors == [2]
