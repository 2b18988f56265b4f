"""What an attempt's answer means and when to try again. Pure: time and randomness come in.

Following the Standard Webhooks guidance: 2xx is success; 3xx is a failure (redirects are not
followed); 410 Gone disables the endpoint; 429, 502 and 504 mean "slow down" and back off one
step harder; `Retry-After` is honoured. Retries run with ±20% jitter for about three days
(5 s, 5 min, 30 min, 2 h, 5 h, then every 10 h), then the delivery is dead-lettered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    *(timedelta(hours=10),) * 6,
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1  # the first try, then one per delay
JITTER = 0.2
THROTTLE_STATUSES = frozenset({429, 502, 504})
# A consumer may ask for a pause, not for a week off: longer Retry-After values are capped.
MAX_RETRY_AFTER = timedelta(hours=24)
# An endpoint that has failed every attempt for this long is switched off.
DISABLE_AFTER = timedelta(days=5)


class Verdict(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    THROTTLED = "throttled"
    GONE = "gone"


def verdict(status_code: int | None) -> Verdict:
    """The meaning of an HTTP status; None (no answer: refused, timed out, reset) is a failure."""
    if status_code is None:
        return Verdict.FAILED
    if 200 <= status_code < 300:
        return Verdict.SUCCEEDED
    if status_code == 410:
        return Verdict.GONE
    if status_code in THROTTLE_STATUSES:
        return Verdict.THROTTLED
    return Verdict.FAILED


def retry_delay(
    attempts_made: int,
    *,
    throttled: bool = False,
    retry_after: timedelta | None = None,
    rand: float = 0.5,
) -> timedelta | None:
    """The wait before the next try after `attempts_made` failed tries, or None: dead-letter.

    `rand` in [0, 1) picks the jitter (0.5 means none), so tables of cases stay exact.
    """
    if attempts_made < 1:
        raise ValueError("at least one attempt has been made before a retry is scheduled")
    if attempts_made >= MAX_ATTEMPTS:
        return None
    step = attempts_made - 1 + (1 if throttled else 0)
    base = RETRY_DELAYS[min(step, len(RETRY_DELAYS) - 1)]
    delay = base * (1 + JITTER * (2 * rand - 1))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """`Retry-After: 120` or `Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`; junk is ignored."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - now, timedelta(0))


@dataclass(frozen=True, kw_only=True)
class Settlement:
    """Where a delivery goes after an attempt."""

    status: str  # pending | succeeded | dead
    next_attempt_at: datetime | None
    disable_endpoint: bool


def settle(
    *,
    attempts_made: int,
    outcome: Verdict,
    now: datetime,
    retry_after: timedelta | None = None,
    rand: float = 0.5,
) -> Settlement:
    if outcome is Verdict.SUCCEEDED:
        return Settlement(status="succeeded", next_attempt_at=None, disable_endpoint=False)
    if outcome is Verdict.GONE:
        return Settlement(status="dead", next_attempt_at=None, disable_endpoint=True)
    delay = retry_delay(
        attempts_made,
        throttled=outcome is Verdict.THROTTLED,
        retry_after=retry_after,
        rand=rand,
    )
    if delay is None:
        return Settlement(status="dead", next_attempt_at=None, disable_endpoint=False)
    return Settlement(status="pending", next_attempt_at=now + delay, disable_endpoint=False)
