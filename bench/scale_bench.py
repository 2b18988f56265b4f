"""First sync of 200 mailboxes by one and by two `radiosilence worker` processes on PostgreSQL.

Dovecot on loopback with 200 users of a few hundred messages each. Run 1: one worker, a fresh
database; run 2: two workers, another fresh database (Dovecot's index files are deleted in
between, so neither run reads the other's warm caches). IDLE is off (0 watches) so that only
the syncs are measured. This machine's 2 cores are shared by the workers, Dovecot and
PostgreSQL, so each one's CPU time is printed too: the speedup is bounded by them.
Run: .venv/bin/python bench/scale_bench.py [--mailboxes 200] [--messages 200]
The last line: bench: scale mailboxes_per_s_1=… mailboxes_per_s_2=… speedup_2=…
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleet

from tests.support.dovecot import DovecotServer


def cold(server: DovecotServer) -> None:
    """Forget what Dovecot cached while serving the previous run."""
    server.stop()
    for index in (server.root / "home").glob("*/Maildir/**/dovecot.index*"):
        index.unlink()
    server.start()


def run(server: DovecotServer, count: int, workers: int, folder: Path) -> float:
    cold(server)
    url = fleet.fresh_database()
    try:
        asyncio.run(fleet.make_mailboxes(url, server, count))
        dovecot_cpu = fleet.group_cpu_seconds(server.process_ids())
        pg_cpu = fleet.group_cpu_seconds(fleet.postgres_pids())
        with fleet.workers(url, workers, folder, imap_idle_mailboxes="0") as procs:
            started = time.monotonic()
            fleet.wait_until(
                lambda: (
                    fleet.query(
                        url, "SELECT count(*) AS n FROM mailboxes WHERE last_sync_at IS NOT NULL"
                    )[0]["n"]
                    == count
                ),
                1800,
                "the first syncs",
                step=0.2,
            )
            elapsed = time.monotonic() - started
            cpu = [fleet.cpu_seconds(w.proc.pid) for w in procs]
            synced_by = fleet.query(
                url, "SELECT count(*) AS n FROM mailboxes WHERE last_sync_at IS NOT NULL"
            )
            for w in procs:
                w.stop()
        dovecot_cpu = fleet.group_cpu_seconds(server.process_ids()) - dovecot_cpu
        pg_cpu = fleet.group_cpu_seconds(fleet.postgres_pids()) - pg_cpu
    finally:
        fleet.drop_database(url)
    per_s = count / elapsed
    print(
        f"{workers} worker(s): {count} mailboxes in {elapsed:.1f} s = {per_s:.2f} mailboxes/s; "
        f"cpu s: workers={'+'.join(f'{c:.1f}' for c in cpu)} dovecot={dovecot_cpu:.1f} "
        f"postgres={pg_cpu:.1f} (of {elapsed * 2:.0f} core-s); synced={synced_by[0]['n']}; "
        f"load average {fleet.load_average()}"
    )
    return per_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mailboxes", type=int, default=200)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rs-scale-bench-"))
    server, _ = fleet.dovecot_with_users(args.mailboxes, args.messages)
    try:
        one = run(server, args.mailboxes, 1, folder)
        two = run(server, args.mailboxes, 2, folder)
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"bench: scale mailboxes_per_s_1={one:.2f} mailboxes_per_s_2={two:.2f} "
        f"speedup_2={two / one:.2f}"
    )


if __name__ == "__main__":
    main()
