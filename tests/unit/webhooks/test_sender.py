"""One signed POST through an in-memory transport: what is sent, what an answer means."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from app.webhooks.deliver import RESPONSE_START_CHARS, USER_AGENT, Sender
from app.webhooks.schedule import Verdict
from app.webhooks.signing import new_secret, secret_key

URL = "https://crm.example.com/hooks/rs?tenant=7"
BODY = b'{"type":"thread.quiet","timestamp":"2026-11-02T09:00:00+00:00","data":{}}'


def recording(answer: httpx.Response, seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    return httpx.MockTransport(handle)


async def test_a_2xx_is_success_and_the_request_verifies() -> None:
    secret = new_secret()
    seen: list[httpx.Request] = []
    sender = Sender(recording(httpx.Response(204), seen))

    result = await sender.send(URL, "evt_42", BODY, [secret_key(secret)])

    assert result.verdict is Verdict.SUCCEEDED and result.status_code == 204
    assert result.error is None and result.latency_ms >= 0
    (request,) = seen
    assert request.method == "POST" and str(request.url) == URL
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["webhook-id"] == "evt_42"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 5
    assert request.content == BODY
    assert Webhook(secret).verify(request.content, dict(request.headers))["type"] == "thread.quiet"


async def test_a_redirect_is_a_failure_and_is_not_followed() -> None:
    seen: list[httpx.Request] = []
    answer = httpx.Response(302, headers={"location": "http://169.254.169.254/"})
    result = await Sender(recording(answer, seen)).send(URL, "evt_1", BODY, [b"k" * 32])
    assert result.verdict is Verdict.FAILED and result.status_code == 302
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [(410, Verdict.GONE), (429, Verdict.THROTTLED), (503, Verdict.FAILED)],
)
async def test_status_codes_and_retry_after(status: int, expected: Verdict) -> None:
    answer = httpx.Response(status, headers={"retry-after": "120"}, text="slow down")
    result = await Sender(recording(answer, [])).send(URL, "evt_1", BODY, [b"k" * 32])
    assert result.verdict is expected
    assert result.retry_after == "120"
    assert result.response_start == "slow down"


async def test_only_the_start_of_a_long_answer_is_kept() -> None:
    answer = httpx.Response(500, text="é" * 10_000)
    result = await Sender(recording(answer, [])).send(URL, "evt_1", BODY, [b"k" * 32])
    assert result.response_start == "é" * RESPONSE_START_CHARS


async def test_a_transport_error_is_a_failure_with_its_reason() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = await Sender(httpx.MockTransport(refuse)).send(URL, "evt_1", BODY, [b"k" * 32])
    assert result.verdict is Verdict.FAILED and result.status_code is None
    assert result.error == "ConnectError: connection refused"


async def test_the_total_timeout_bounds_a_hanging_consumer() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(200)

    sender = Sender(httpx.MockTransport(hang), total_timeout=0.05)
    started = time.perf_counter()
    result = await sender.send(URL, "evt_1", BODY, [b"k" * 32])
    assert time.perf_counter() - started < 2
    assert result.verdict is Verdict.FAILED
    assert result.error == "no complete answer within 0.05 s"


async def test_the_signature_timestamp_is_the_wall_clock_of_the_attempt() -> None:
    seen: list[httpx.Request] = []
    sender = Sender(recording(httpx.Response(200), seen), wall_clock=lambda: 1_800_000_000.7)
    await sender.send(URL, "evt_1", BODY, [b"k" * 32])
    assert seen[0].headers["webhook-timestamp"] == "1800000000"
