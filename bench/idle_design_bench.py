"""Holding many IMAP IDLE connections: the worker's thread design against asyncio on the raw
socket, each in a fresh process of its own, against the same Dovecot on loopback.

- threads: what `radiosilence worker` does: `ImapSession.open` then `idle_until_news` (which
  wakes every 2 s to check for a stop) on a thread per connection.
- asyncio: one event loop; LOGIN, SELECT, IDLE written on asyncio streams, then an await on
  the next line until `EXISTS` (no wake-ups while nothing arrives).

For each: the process's RSS and thread count with every connection in IDLE, its CPU share
over an idle stretch, and the time from an APPEND to its connection seeing the news.
Run: .venv/bin/python bench/idle_design_bench.py [--connections 500] [--idle-seconds 20]
The last line: bench: idle_design connections=… threads_cpu_pct=… asyncio_cpu_pct=…
threads_rss_mb=… asyncio_rss_mb=… threads_news_ms=… asyncio_news_ms=…
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import multiprocessing
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleet

from app.mail.imap import ImapAccount, ImapSession

NEWS_SAMPLES = 20


def _ready(conn: Any, result: dict[str, Any], idle_seconds: float) -> None:
    """Tell the parent everything is in IDLE, then measure the idle stretch here."""
    pid = Path("/proc/self/stat").read_text().split()[0]
    before, wall = fleet.cpu_seconds(int(pid)), time.monotonic()
    time.sleep(idle_seconds)
    result["cpu_pct"] = (fleet.cpu_seconds(int(pid)) - before) / (time.monotonic() - wall) * 100
    result["rss_mb"] = fleet.rss_mb(int(pid))
    result["threads"] = threading.active_count()


def threads_design(host: str, port: int, count: int, idle_seconds: float, pipe: Any) -> None:
    stop = threading.Event()
    news: dict[int, float] = {}
    in_idle = threading.Semaphore(0)

    def watch(n: int) -> None:
        account = ImapAccount(
            host=host, port=port, security="plain", username=fleet.username(n),
            secret=fleet.PASSWORD,
        )  # fmt: skip
        session = ImapSession.open(account, allow_plaintext=True, addresses=[host])
        in_idle.release()
        while not stop.is_set():
            if session.idle_until_news("INBOX", renew_after=600, stop=stop.is_set):
                news.setdefault(n, time.time())
        session.close()

    pool = ThreadPoolExecutor(max_workers=count)
    for n in range(count):
        pool.submit(watch, n)
    for _ in range(count):
        in_idle.acquire()
    time.sleep(3)  # every thread has issued IDLE
    result: dict[str, Any] = {}
    _ready(pipe, result, idle_seconds)
    pipe.send(("idle", result))
    targets = pipe.recv()
    deadline = time.monotonic() + 30
    while not all(n in news for n in targets) and time.monotonic() < deadline:
        time.sleep(0.01)
    pipe.send(("news", {n: news.get(n) for n in targets}))
    stop.set()
    pool.shutdown(wait=True)


async def _async_watch(host: str, port: int, n: int, news: dict[int, float],
                       in_idle: asyncio.Queue[int]) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection(host, port)
    await reader.readline()  # greeting

    async def command(tag: str, text: str) -> None:
        writer.write(f"{tag} {text}\r\n".encode())
        await writer.drain()
        while not (await reader.readline()).startswith(tag.encode()):
            pass

    await command("a", f'LOGIN "{fleet.username(n)}" "{fleet.PASSWORD}"')
    await command("b", "EXAMINE INBOX")
    writer.write(b"c IDLE\r\n")
    await writer.drain()
    await reader.readline()  # + idling
    await in_idle.put(n)
    while True:
        line = await reader.readline()
        if not line:
            return
        if line.rstrip().endswith((b"EXISTS", b"RECENT")):
            news.setdefault(n, time.time())


def asyncio_design(host: str, port: int, count: int, idle_seconds: float, pipe: Any) -> None:
    async def main() -> None:
        news: dict[int, float] = {}
        in_idle: asyncio.Queue[int] = asyncio.Queue()
        tasks = [asyncio.create_task(_async_watch(host, port, n, news, in_idle))
                 for n in range(count)]  # fmt: skip
        for _ in range(count):
            await in_idle.get()
        await asyncio.sleep(3)
        result: dict[str, Any] = {}
        await asyncio.to_thread(_ready, pipe, result, idle_seconds)
        pipe.send(("idle", result))
        targets = await asyncio.to_thread(pipe.recv)
        deadline = time.monotonic() + 30
        while not all(n in news for n in targets) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        pipe.send(("news", {n: news.get(n) for n in targets}))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def measure(design: Any, server: Any, count: int, idle_seconds: float) -> dict[str, float]:
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(
        target=design, args=(server.host, server.port, count, idle_seconds, child)
    )
    proc.start()
    _kind, idle = parent.recv()
    targets = list(range(0, count, max(1, count // NEWS_SAMPLES)))[:NEWS_SAMPLES]
    sent = {}
    for n in targets:  # one at a time: the time to notice, not a queue
        with imaplib.IMAP4(server.host, server.port) as conn:
            conn.login(fleet.username(n), fleet.PASSWORD)
            sent[n] = time.time()
            conn.append("INBOX", None, None, b"From: a@b.example\r\nSubject: x\r\n\r\nhi\r\n")
        time.sleep(0.05)
    parent.send(targets)
    _kind, seen = parent.recv()
    proc.join(60)
    delays = [(seen[n] - sent[n]) * 1000 for n in targets if seen.get(n)]
    return {
        **idle,
        "news_ms": statistics.median(delays) if delays else float("nan"),
        "news_seen": len(delays),
        "news_sent": len(targets),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args()
    server, _ = fleet.dovecot_with_users(args.connections, 5)
    try:
        results = {}
        for name, design in (("threads", threads_design), ("asyncio", asyncio_design)):
            results[name] = r = measure(design, server, args.connections, args.idle_seconds)
            print(
                f"{name}: {args.connections} connections in IDLE: cpu={r['cpu_pct']:.2f}% of one "
                f"core, rss={r['rss_mb']:.0f} MB, threads={r['threads']}, news seen "
                f"{r['news_seen']}/{r['news_sent']} in median {r['news_ms']:.0f} ms"
            )
    finally:
        server.close()
    t, a = results["threads"], results["asyncio"]
    print(
        f"bench: idle_design connections={args.connections} threads_cpu_pct={t['cpu_pct']:.2f} "
        f"asyncio_cpu_pct={a['cpu_pct']:.2f} threads_rss_mb={t['rss_mb']:.0f} "
        f"asyncio_rss_mb={a['rss_mb']:.0f} threads_news_ms={t['news_ms']:.0f} "
        f"asyncio_news_ms={a['news_ms']:.0f}"
    )


if __name__ == "__main__":
    main()
