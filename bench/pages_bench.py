"""The dashboard and a thread list page over 10,000 threads on SQLite: p99 render time
against the JSON API's same list (GET /api/v1/threads?state=quiet, same page size), all
measured in this run on the same database and the same app.

Bar (PRODUCT.md, "Pages"): ratio ≤ 2 for both pages.
Run: .venv/bin/python bench/pages_bench.py [--threads N] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from threads_list_bench import TOKEN, populate  # the same data as the API list bench

from app.config import Settings
from app.main import create_app
from app.services import accounts, overview
from app.storage.migrate import upgrade
from app.web.sessions import SESSION_COOKIE, Keys, seal

SECRET = "b" * 40


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def owe_some(path: Path, every: int) -> None:
    """Every `every`th replied thread waits for the rep's answer, as on a real dashboard."""
    db = sqlite3.connect(path)
    db.execute(
        "UPDATE threads SET needs_response = 1, last_inbound_at = last_outbound_at "
        "WHERE state = 'replied' AND id % ? = 0",
        (every,),
    )
    db.commit()
    db.close()


async def timed(
    client: httpx.AsyncClient, requests: int, call: Callable[[int], Awaitable[httpx.Response]]
) -> list[float]:
    times = []
    for i in range(requests + 20):
        t0 = time.perf_counter()
        response = await call(i)
        elapsed = (time.perf_counter() - t0) * 1000
        assert response.status_code == 200, response.text[:300]
        if i >= 20:  # warm-up excluded
            times.append(elapsed)
    return times


async def measure(path: Path, requests: int) -> dict[str, list[float]]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{path}",
        secret_key=SECRET,
        workers_enabled=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        session = await accounts.start_session(app.state.context, user_id=1)
        cookies = {SESSION_COOKIE: seal(Keys.of(settings), session)}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", cookies=cookies
        ) as client:
            api = {"Authorization": f"Bearer {TOKEN}"}
            size = overview.PAGE_ROWS
            first = await client.get("/threads", params={"state": "quiet"})
            assert "quiet for" in first.text or "Quiet" in first.text
            board = await client.get("/")
            assert "Waiting for your answer" in board.text

            async def api_list(_i: int) -> httpx.Response:
                return await client.get(
                    "/api/v1/threads", params={"state": "quiet", "limit": size}, headers=api
                )

            async def list_page(_i: int) -> httpx.Response:
                return await client.get("/threads", params={"state": "quiet"})

            async def dashboard(_i: int) -> httpx.Response:
                return await client.get("/")

            # Interleaved rounds, so that a noisy moment of the machine hits all three alike.
            out: dict[str, list[float]] = {"api": [], "list": [], "dashboard": []}
            rounds = 5
            for _ in range(rounds):
                out["api"] += await timed(client, requests // rounds, api_list)
                out["list"] += await timed(client, requests // rounds, list_page)
                out["dashboard"] += await timed(client, requests // rounds, dashboard)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        upgrade(f"sqlite+aiosqlite:///{path}")
        populate(path, args.threads)
        owe_some(path, every=50)
        times = asyncio.run(measure(path, args.requests))
    api, listing, board = p99(times["api"]), p99(times["list"]), p99(times["dashboard"])
    for name, samples in times.items():
        print(f"{name}: p50={statistics.median(samples):.2f} ms p99={p99(samples):.2f} ms")
    ratio = max(listing, board) / api
    verdict = "PASS" if ratio <= 2 else "FAIL"
    print(f"bar: each page's p99 at most 2x the API list's p99 ({verdict})")
    print(
        f"bench: pages dashboard_p99_ms={board:.2f} list_p99_ms={listing:.2f} "
        f"api_p99_ms={api:.2f} ratio_vs_api={ratio:.2f}"
    )


if __name__ == "__main__":
    main()
