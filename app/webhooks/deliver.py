"""Delivering webhooks: sign and POST one message (`Sender`), and the dispatcher that claims due
deliveries with a lease, sends them concurrently and records every attempt (`Dispatcher`).

At-least-once: a delivery is leased before it is sent and settled after, in its own
transaction; a worker that dies in between leaves the lease to run out, and the delivery is
sent again with the same `webhook-id`. Consumers deduplicate on that id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app import __version__, metrics
from app.crypto import SecretBox
from app.storage import outbox
from app.storage import webhooks as store
from app.storage.common import utcnow
from app.storage.engine import reading
from app.webhooks.schedule import (
    DISABLE_AFTER,
    Verdict,
    parse_retry_after,
    settle,
    verdict,
)
from app.webhooks.signing import encode_body, request_headers, secret_key

log = logging.getLogger(__name__)

WEBHOOK_DISABLED = "webhook.disabled"  # told to the owner's other endpoints and the event log
TEST_EVENT = "webhook.test"
TOTAL_TIMEOUT = 15.0  # seconds for the whole attempt: resolve, connect, send, answer
RESPONSE_START_CHARS = 500
USER_AGENT = f"RadioSilence-Webhooks/{__version__}"
BATCH_SIZE = 200
CONCURRENCY = 64  # requests in flight per dispatcher
PER_ENDPOINT = 16  # of which to one endpoint: a hanging consumer cannot take every slot
MAX_PASSES = 4  # batches in flight: one slow batch does not hold up the next
POLL_SECONDS = 1.0
WAKE_DEBOUNCE = 0.02  # gather what a burst of commits queues into one claim


@dataclass(frozen=True, kw_only=True)
class AttemptResult:
    status_code: int | None
    latency_ms: int
    response_start: str
    error: str | None = None
    retry_after: str | None = None

    @property
    def verdict(self) -> Verdict:
        return verdict(self.status_code)


class Sender:
    """Signs and POSTs one message through an httpx transport (the I/O seam: tests pass
    `httpx.MockTransport`, production a `PinnedTransport`). Redirects are never followed."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        *,
        total_timeout: float = TOTAL_TIMEOUT,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._transport = transport
        self._total = total_timeout
        self._wall_clock = wall_clock  # the signature's timestamp is real time, always
        self._urls: dict[str, httpx.URL] = {}  # parsing a URL costs more than signing

    async def send(
        self, url: str, msg_id: str, body: bytes, keys: Sequence[bytes]
    ) -> AttemptResult:
        headers = request_headers(keys, msg_id, int(self._wall_clock()), body)
        headers["user-agent"] = USER_AGENT
        started = time.perf_counter()
        status: int | None = None
        start, error, retry_after = b"", None, None
        try:
            async with asyncio.timeout(self._total):
                request = httpx.Request("POST", self._url(url), headers=headers, content=body)
                response = await self._transport.handle_async_request(request)
                try:
                    status = response.status_code
                    retry_after = response.headers.get("retry-after")
                    start = await _read_start(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            error = f"no complete answer within {self._total:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except OSError as exc:  # a transport that lets socket errors through
            error = f"{type(exc).__name__}: {exc}"
        latency_ms = round((time.perf_counter() - started) * 1000)
        return AttemptResult(
            status_code=status,
            latency_ms=latency_ms,
            response_start=start.decode("utf-8", "replace")[:RESPONSE_START_CHARS],
            error=error,
            retry_after=retry_after,
        )

    def _url(self, url: str) -> httpx.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) > 4096:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    async def aclose(self) -> None:
        await self._transport.aclose()


async def _read_start(response: httpx.Response) -> bytes:
    """Enough of the body to log; the rest is not read."""
    limit = RESPONSE_START_CHARS * 4  # UTF-8: up to 4 bytes per character
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return data[:limit]


def wake_on_commit(engine: AsyncEngine, wake: Callable[[], None]) -> Callable[[], None]:
    """Call `wake` when a transaction that queued deliveries commits in this process (the
    outbox marks its connection). Returns the function that stops listening."""

    def on_commit(conn: Connection) -> None:
        if conn.info.pop(store.QUEUED_MARK, False):
            wake()

    def on_rollback(conn: Connection) -> None:
        conn.info.pop(store.QUEUED_MARK, None)

    event.listen(engine.sync_engine, "commit", on_commit)
    event.listen(engine.sync_engine, "rollback", on_rollback)

    def stop_listening() -> None:
        event.remove(engine.sync_engine, "commit", on_commit)
        event.remove(engine.sync_engine, "rollback", on_rollback)

    return stop_listening


@dataclass(frozen=True)
class _Batch:
    claimed_at: datetime
    jobs: list[dict[str, Any]]


class Dispatcher:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        box: SecretBox,
        sender: Sender,
        owner: str,
        clock: Callable[[], datetime] = utcnow,
        lease: timedelta = timedelta(seconds=60),
        batch_size: int = BATCH_SIZE,
        concurrency: int = CONCURRENCY,
        per_endpoint: int = PER_ENDPOINT,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._engine = engine
        self._box = box
        self._sender = sender
        self.owner = owner
        self._clock = clock
        self._lease = lease
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(concurrency)
        self._per_endpoint = per_endpoint
        self._endpoint_slots: dict[int, asyncio.Semaphore] = {}
        self._rand = rand
        self._keys: dict[bytes, bytes] = {}  # encrypted secret -> HMAC key
        self.wake = asyncio.Event()

    async def aclose(self) -> None:
        await self._sender.aclose()

    async def run_once(self) -> int:
        """One pass: claim what is due, send it, record it. Returns how many were attempted
        or handed back."""
        batch = await self._claim()
        if batch is None:
            return 0
        await self._deliver(batch)
        return len(batch.jobs)

    async def run(self, stop: asyncio.Event, *, drain_seconds: float = TOTAL_TIMEOUT + 5) -> None:
        """Claim and deliver until `stop` is set, then let the batches in flight finish."""
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                if len(in_flight) >= MAX_PASSES:
                    _done, in_flight = await asyncio.wait(
                        in_flight, return_when=asyncio.FIRST_COMPLETED
                    )
                    continue
                try:
                    batch = await self._claim()
                except Exception:  # the database may be away for a moment: try again later
                    log.exception("webhooks.claim_failed")
                    batch = None
                if batch is not None:
                    in_flight.add(asyncio.create_task(self._deliver(batch)))
                    in_flight = {t for t in in_flight if not t.done()}
                    continue
                await self._idle(stop)
        finally:
            if in_flight:
                _done, pending = await asyncio.wait(in_flight, timeout=drain_seconds)
                for task in pending:
                    task.cancel()  # their leases run out; the deliveries are sent again
                await asyncio.gather(*in_flight, return_exceptions=True)

    async def _idle(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=POLL_SECONDS)
        if self.wake.is_set() and not stop.is_set():
            self.wake.clear()
            await asyncio.sleep(WAKE_DEBOUNCE)

    async def _claim(self) -> _Batch | None:
        now = self._clock()
        async with reading(self._engine) as conn:  # idle polls never take SQLite's write lock
            if not await store.has_due(conn, now):
                return None
        async with self._engine.begin() as conn:
            ids = await store.claim_due(
                conn, owner=self.owner, now=now, lease=self._lease, limit=self._batch_size
            )
            jobs = await store.jobs(conn, ids)
        return _Batch(now, jobs) if jobs else None

    async def _deliver(self, batch: _Batch) -> None:
        # A job still waiting for a slot this close to its lease's end is handed back unsent
        # rather than sent by two workers at once.
        margin = timedelta(seconds=TOTAL_TIMEOUT + 5)
        deadline = batch.claimed_at + max(self._lease - margin, self._lease / 2)
        try:
            results = await asyncio.gather(*(self._attempt(job, deadline) for job in batch.jobs))
            await self._record(batch.jobs, results)
        except Exception:
            log.exception("webhooks.pass_failed deliveries=%s", len(batch.jobs))

    async def _attempt(self, job: dict[str, Any], deadline: datetime) -> AttemptResult | None:
        endpoint = self._endpoint_slots.get(job["subscription_id"])
        if endpoint is None:
            endpoint = self._endpoint_slots[job["subscription_id"]] = asyncio.Semaphore(
                self._per_endpoint
            )
        wait = (deadline - self._clock()).total_seconds()
        try:
            async with asyncio.timeout(max(wait, 0.001)):
                await endpoint.acquire()
                try:
                    await self._slots.acquire()
                except BaseException:
                    endpoint.release()
                    raise
        except TimeoutError:
            return None
        try:
            data = job["event_payload"] if job["event_payload"] is not None else job["payload"]
            body = encode_body(job["event_type"], job["created_at"], data or {})
            keys = self._signing_keys(job)
            return await self._sender.send(job["url"], job["message_id"], body, keys)
        finally:
            self._slots.release()
            endpoint.release()

    def _signing_keys(self, job: dict[str, Any]) -> list[bytes]:
        """The current secret, and during a rotation's overlap the previous one too."""
        sealed = [job["secret_enc"]]
        expires = job["previous_secret_expires_at"]
        if job["previous_secret_enc"] is not None and expires and expires > self._clock():
            sealed.append(job["previous_secret_enc"])
        keys = []
        for token in sealed:
            key = self._keys.get(token)
            if key is None:
                if len(self._keys) > 1024:
                    self._keys.clear()
                key = self._keys[token] = secret_key(self._box.decrypt(token))
            keys.append(key)
        return keys

    async def _record(
        self, jobs: Sequence[dict[str, Any]], results: Sequence[AttemptResult | None]
    ) -> None:
        now = self._clock()
        attempt_rows: list[dict[str, Any]] = []
        settled: list[dict[str, Any]] = []
        unsent: list[int] = []
        succeeded: set[int] = set()
        failed: set[int] = set()
        gone: set[int] = set()
        for job, result in zip(jobs, results, strict=True):
            if result is None:
                unsent.append(job["id"])
                continue
            made = job["attempts"] + 1
            outcome = result.verdict
            after = settle(
                attempts_made=made,
                outcome=outcome,
                now=now,
                retry_after=parse_retry_after(result.retry_after, now),
                rand=self._rand(),
            )
            _log_attempt(job, result, made, after.status)
            metrics.WEBHOOK_ATTEMPTS.labels(verdict=outcome.value).inc()
            metrics.WEBHOOK_SECONDS.observe(result.latency_ms / 1000)
            attempt_rows.append(
                {
                    "delivery_id": job["id"],
                    "attempted_at": now,
                    "status_code": result.status_code,
                    "latency_ms": result.latency_ms,
                    "response_start": result.response_start,
                    "error": result.error,
                    "verdict": outcome.value,
                }
            )
            settled.append(
                {
                    "id": job["id"],
                    "status": after.status,
                    "attempts": made,
                    "next_attempt_at": after.next_attempt_at,
                    "last_attempt_at": now,
                    "last_status_code": result.status_code,
                    "last_error": result.error,
                    "completed_at": None if after.status == "pending" else now,
                }
            )
            (succeeded if outcome is Verdict.SUCCEEDED else failed).add(job["subscription_id"])
            if after.disable_endpoint:
                gone.add(job["subscription_id"])
        still_failing = sorted(failed - succeeded)
        async with self._engine.begin() as conn:
            await store.add_attempts(conn, attempt_rows)
            await store.settle(conn, self.owner, settled)
            await store.release(conn, self.owner, unsent)
            await store.mark_failing(conn, still_failing, now)
            await store.mark_recovered(conn, sorted(succeeded), now)
            too_long = await store.failing_since_before(conn, still_failing, now - DISABLE_AFTER)
            for subscription_id in sorted(gone):
                await self._disable(conn, subscription_id, "the endpoint answered 410 Gone", now)
            for subscription_id in too_long:
                reason = f"every attempt failed for {DISABLE_AFTER.days} days"
                await self._disable(conn, subscription_id, reason, now)

    async def _disable(
        self, conn: AsyncConnection, subscription_id: int, reason: str, now: datetime
    ) -> None:
        row = await store.disable_subscription(conn, subscription_id, reason, now)
        if row is None:
            return
        log.warning("webhooks.endpoint_disabled webhook=%s reason=%s", subscription_id, reason)
        await outbox.enqueue(
            conn,
            user_id=row["user_id"],
            type=WEBHOOK_DISABLED,
            payload={
                "schema_version": 1,
                "webhook": {
                    "id": row["id"],
                    "url": row["url"],
                    "description": row["description"],
                    "event_types": row["event_types"],
                    "disabled_reason": reason,
                },
            },
            now=now,
        )


def _log_attempt(job: dict[str, Any], result: AttemptResult, attempt: int, status: str) -> None:
    log.info(
        "webhooks.attempt delivery=%s webhook=%s msg=%s attempt=%s status=%s latency_ms=%s "
        "outcome=%s next=%s body=%r error=%s",
        job["id"],
        job["subscription_id"],
        job["message_id"],
        attempt,
        result.status_code,
        result.latency_ms,
        result.verdict.value,
        status,
        result.response_start[:80],
        result.error,
    )
