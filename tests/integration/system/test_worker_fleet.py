"""Four `radiosilence worker` processes on PostgreSQL share twenty mailboxes on Dovecot:
Dovecot's own log shows that no mailbox is ever synced, or watched, by two workers at once;
a SIGKILLed worker's mailboxes are synced and watched by the others once its leases run out;
after SIGTERM no lease is held and no IDLE connection stays open."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.services import accounts, mailboxes
from app.services.context import Context
from tests.conftest import TEST_SECRET_KEY, make_settings, pg_rows
from tests.factories import REP, ImapUser, now_utc, populate
from tests.support.dovecot import DovecotServer, dovecot_available, start_dovecot
from tests.support.dovecot_log import overlaps, sessions
from tests.support.processes import CLI, cli_env

pytestmark = pytest.mark.integration
WORKERS = 4
MAILBOXES = 20
LEASE = 10.0  # the shortest lease the settings allow
POLL = 2.0  # app.workers.SYNC_POLL_SECONDS and WATCH_SCAN_SECONDS


@pytest.fixture
def own_dovecot() -> Iterator[DovecotServer]:
    """A Dovecot of this test's own: its log holds only this test's sessions. In a folder of
    its own (not under pytest's, which other pytest runs may make 0700 again)."""
    if not dovecot_available():
        pytest.fail("dovecot is not installed: run scripts/install-test-deps.sh")
    server = start_dovecot()
    yield server
    server.close()


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def make_mailboxes(database_url: str, server: DovecotServer) -> None:
    async def run() -> None:
        ctx = Context.create(make_settings(database_url))
        try:
            user_id = await accounts.create_user(
                ctx, email="floor@seller.example", password="pw-123456789"
            )
            for n in range(MAILBOXES):
                username = f"rep{n}@seller.example"
                server.add_user(username, "pw-" + "x" * 10)
                populate(ImapUser(server, username, "pw-" + "x" * 10), now_utc())
                data = mailboxes.MailboxInput(
                    name=f"Rep {n}", host=server.host, port=server.port, security="plain",
                    username=username, secret="pw-" + "x" * 10, auth_method="password",
                    addresses=[REP], timezone="UTC", holiday_country=None,
                )  # fmt: skip
                await mailboxes.create_mailbox(ctx, user_id=user_id, data=data)
        finally:
            await ctx.close()

    asyncio.run(run())


def test_four_workers_share_twenty_mailboxes_and_hand_them_over(
    tmp_path: Path, database_url_pg: str, own_dovecot: DovecotServer
) -> None:
    make_mailboxes(database_url_pg, own_dovecot)
    env = cli_env(
        secret_key=TEST_SECRET_KEY,
        database_url=database_url_pg,
        lease_seconds=str(LEASE),
        sync_interval_seconds="5",  # syncs come round often: many chances to clash
        sync_interval_watched_seconds="5",
        imap_idle_mailboxes=str(MAILBOXES),
    )
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for i in range(WORKERS):
        with (tmp_path / f"worker{i}.log").open("wb") as log:
            proc = subprocess.Popen([CLI, "worker"], env=env, cwd=tmp_path, stdout=log, stderr=log)
        procs[f"{socket.gethostname()}:{proc.pid}"] = proc
    try:
        _run_the_fleet(database_url_pg, procs)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    found = sessions(own_dovecot.log_path)
    assert overlaps(found) == []
    by_worker = Counter((s.worker, s.purpose) for s in found)
    for owner in procs:  # every worker took part, so "never two at once" means something
        assert by_worker[(owner, "sync")] > 0, by_worker
        assert by_worker[(owner, "watch")] > 0, by_worker
    assert [s for s in found if s.end == float("inf")] == []  # no connection left open


def _run_the_fleet(url: str, procs: dict[str, subprocess.Popen[bytes]]) -> None:
    def watch_owners() -> Counter[str]:
        rows = pg_rows(url, "SELECT watch_owner FROM mailboxes WHERE last_sync_at IS NOT NULL")
        return Counter(r["watch_owner"] for r in rows)

    # Every mailbox first-synced and watched, the watches shared out: 5 each.
    wait_until(
        lambda: watch_owners() == Counter({owner: MAILBOXES // WORKERS for owner in procs}),
        60,
        "20 mailboxes watched, 5 by each worker",
    )
    time.sleep(6)  # a round of syncs more (each mailbox is due every 5 s)

    victim = next(iter(procs))
    orphans = [
        r["id"] for r in pg_rows(url, f"SELECT id FROM mailboxes WHERE watch_owner = '{victim}'")
    ]
    killed_at = datetime.now(UTC)
    procs[victim].send_signal(signal.SIGKILL)
    procs[victim].wait()

    def taken_over() -> bool:
        rows = pg_rows(
            url,
            "SELECT watch_owner, last_sync_at FROM mailboxes "
            f"WHERE id IN ({','.join(map(str, orphans))})",
        )
        return all(
            r["watch_owner"] not in (None, victim) and r["last_sync_at"] > killed_at for r in rows
        )

    # Its leases run out within LEASE; the others' next poll or scan then takes them.
    took = wait_until(taken_over, LEASE + POLL + 5, "the killed worker's mailboxes taken over")
    assert took <= LEASE + POLL + 2, took
    print(f"taken over {took:.1f} s after SIGKILL (lease {LEASE} s)")
    survivors = [p for owner, p in procs.items() if owner != victim]
    assert sorted(watch_owners().values()) == [6, 7, 7]  # 20 shared by 3

    for proc in survivors:
        proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    for proc in survivors:
        assert proc.wait(timeout=40) == 0
    stopped = time.monotonic() - started
    assert stopped < 30
    print(f"3 workers stopped {stopped:.1f} s after SIGTERM")
    held = pg_rows(
        url,
        "SELECT id, lease_owner, watch_owner FROM mailboxes "
        "WHERE lease_owner IS NOT NULL OR watch_owner IS NOT NULL",
    )
    assert held == []
    assert [r["owner"] for r in pg_rows(url, "SELECT owner FROM workers")] in ([], [victim])
