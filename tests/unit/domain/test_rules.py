"""The default rules of PRODUCT.md, one row per case, in a Berlin mailbox."""

from datetime import UTC, date, datetime, timedelta

import pytest

from app.domain.model import MessageKind as K
from app.domain.model import Rules, ThreadHistory, ThreadMessage
from app.domain.model import ThreadState as S
from app.domain.rules import decide
from app.domain.worktime import WorkCalendar

CAL = WorkCalendar(
    timezone="Europe/Berlin",
    weekend=frozenset({5, 6}),
    holidays={date(2026, 12, 25): "Christmas Day", date(2026, 12, 26): "Second Day of Christmas"},
)
RULES = Rules()
# Fri 13 Nov 2026 14:02 in Berlin (UTC+1).
SENT = datetime(2026, 11, 13, 13, 2, tzinfo=UTC)


def msg(kind: K, at: datetime, sender: str = "anna@buyer.org") -> ThreadMessage:
    if kind is K.OUTBOUND:
        sender = "rep@seller.com"
    return ThreadMessage(
        message_id=f"<{kind}-{at.timestamp()}@x>",
        kind=kind,
        date=at,
        sender=sender,
        sender_name="Anna" if sender.startswith("anna") else "",
    )


def history(*messages: ThreadMessage, **kw: object) -> ThreadHistory:
    return ThreadHistory(messages=tuple(messages), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "thread", "now", "state", "reason_part"),
    [
        (
            "waiting",
            history(msg(K.OUTBOUND, SENT)),
            SENT + timedelta(days=2),
            S.AWAITING_REPLY,
            "quiet from Wed 18 Nov 14:02",
        ),
        (
            "quiet after 3 business days (weekend skipped)",
            history(msg(K.OUTBOUND, SENT)),
            datetime(2026, 11, 18, 13, 2, tzinfo=UTC),
            S.QUIET,
            "quiet for 3 business days since your e-mail of Fri 13 Nov 14:02 Europe/Berlin",
        ),
        (
            "one minute early",
            history(msg(K.OUTBOUND, SENT)),
            datetime(2026, 11, 18, 13, 1, tzinfo=UTC),
            S.AWAITING_REPLY,
            "awaiting reply",
        ),
        (
            "replied",
            history(msg(K.OUTBOUND, SENT), msg(K.REPLY, SENT + timedelta(hours=1))),
            SENT + timedelta(minutes=90),
            S.REPLIED,
            "Anna <anna@buyer.org> replied",
        ),
        (
            "reply before the rep's latest e-mail does not count",
            history(msg(K.REPLY, SENT - timedelta(days=1)), msg(K.OUTBOUND, SENT)),
            SENT + timedelta(days=10),
            S.QUIET,
            "quiet",
        ),
        (
            "auto-reply pauses",
            history(msg(K.OUTBOUND, SENT), msg(K.AUTO_REPLY, SENT + timedelta(minutes=1))),
            SENT + timedelta(days=4),
            S.PAUSED,
            "no return date found",
        ),
        (
            "pause over: quiet",
            history(msg(K.OUTBOUND, SENT), msg(K.AUTO_REPLY, SENT + timedelta(minutes=1))),
            SENT + timedelta(days=8),
            S.QUIET,
            "quiet",
        ),
        (
            "bounce",
            history(
                msg(K.OUTBOUND, SENT),
                msg(K.BOUNCE, SENT + timedelta(minutes=1), "mailer-daemon@mx.buyer.org"),
            ),
            SENT + timedelta(days=1),
            S.BOUNCED,
            "delivery failure",
        ),
        (
            "internal and bulk only",
            history(msg(K.INTERNAL, SENT), msg(K.BULK, SENT)),
            SENT + timedelta(days=30),
            S.IGNORED,
            "not a sales conversation",
        ),
        (
            "inbound lead",
            history(msg(K.REPLY, SENT)),
            SENT + timedelta(days=1),
            S.REPLIED,
            "new e-mail",
        ),
        (
            "snoozed",
            history(msg(K.OUTBOUND, SENT), snoozed_until=SENT + timedelta(days=20)),
            SENT + timedelta(days=10),
            S.SNOOZED,
            "snoozed until",
        ),
        (
            "closed by hand",
            history(msg(K.OUTBOUND, SENT), closed_reason="closed by you"),
            SENT + timedelta(days=10),
            S.CLOSED,
            "closed by you",
        ),
        (
            "follow-ups exhausted",
            history(*(msg(K.OUTBOUND, SENT + timedelta(days=d)) for d in (0, 5, 10, 17))),
            SENT + timedelta(days=30),
            S.CLOSED,
            "no_response",
        ),
    ],
)
def test_default_rules(
    case: str, thread: ThreadHistory, now: datetime, state: S, reason_part: str
) -> None:
    decision = decide(thread, RULES, CAL, now)
    assert decision.state is state, (case, decision.reason)
    assert reason_part in decision.reason, (case, decision.reason)


def test_holiday_is_named_in_the_reason() -> None:
    # Wed 23 Dec 14:00 Berlin + 3 business days: Thu 24, (Fri 25, Sat, Sun skipped) Mon 28, Tue 29.
    sent = datetime(2026, 12, 23, 13, 0, tzinfo=UTC)
    decision = decide(
        history(msg(K.OUTBOUND, sent)), RULES, CAL, datetime(2026, 12, 29, 13, 0, tzinfo=UTC)
    )
    assert decision.state is S.QUIET
    assert "Fri 25 Dec skipped as a holiday (Christmas Day)" in decision.reason


def test_waiting_thread_says_when_to_look_again() -> None:
    decision = decide(history(msg(K.OUTBOUND, SENT)), RULES, CAL, SENT)
    assert decision.next_check_at == datetime(2026, 11, 18, 13, 2, tzinfo=UTC)


def test_needs_response_after_one_business_hour() -> None:
    reply = SENT + timedelta(hours=1)  # Fri 15:02 Berlin
    thread = history(msg(K.OUTBOUND, SENT), msg(K.REPLY, reply))
    early = decide(thread, RULES, CAL, reply + timedelta(minutes=30))
    assert not early.needs_response
    assert early.next_check_at == reply + timedelta(hours=1)
    late = decide(thread, RULES, CAL, reply + timedelta(hours=2))
    assert late.needs_response
    assert "you have not answered yet" in late.reason


def test_the_rep_writing_again_restarts_the_wait() -> None:
    second = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)  # Tue 10:00 Berlin
    thread = history(msg(K.OUTBOUND, SENT), msg(K.OUTBOUND, second))
    decision = decide(thread, RULES, CAL, datetime(2026, 11, 18, 14, 0, tzinfo=UTC))
    assert decision.state is S.AWAITING_REPLY
    assert "Tue 17 Nov 10:00" in decision.reason


def test_a_clear_no_closes_the_thread_as_declined() -> None:
    no = ThreadMessage(
        message_id="<n@x>",
        kind=K.REPLY,
        date=SENT + timedelta(hours=2),
        sender="anna@buyer.org",
        decline=True,
    )
    decision = decide(history(msg(K.OUTBOUND, SENT), no), RULES, CAL, SENT + timedelta(days=1))
    assert decision.state is S.CLOSED
    assert decision.reason.startswith("closed: declined")


def test_return_date_pauses_until_one_business_day_after() -> None:
    from app.domain.model import Subkind

    away = ThreadMessage(
        message_id="<o@x>",
        kind=K.AUTO_REPLY,
        date=SENT + timedelta(minutes=1),
        sender="anna@buyer.org",
        subkind=Subkind.OUT_OF_OFFICE,
        return_date=date(2026, 11, 30),
    )
    thread = history(msg(K.OUTBOUND, SENT), away)
    paused = decide(thread, RULES, CAL, datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    assert paused.state is S.PAUSED
    assert "back on Mon 30 Nov" in paused.reason
    assert paused.next_check_at == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # Tue 09:00 Berlin
    assert decide(thread, RULES, CAL, datetime(2026, 12, 1, 8, 0, tzinfo=UTC)).state is S.QUIET


def test_read_receipts_and_delay_notices_do_not_move_the_clock() -> None:
    from app.domain.model import Subkind

    receipt = ThreadMessage(
        message_id="<r@x>",
        kind=K.AUTO_REPLY,
        date=SENT + timedelta(hours=1),
        sender="anna@buyer.org",
        subkind=Subkind.READ_RECEIPT,
    )
    delay = ThreadMessage(
        message_id="<d@x>",
        kind=K.BOUNCE,  # a soft bounce: still being retried
        date=SENT + timedelta(hours=2),
        sender="mailer-daemon@mx.buyer.org",
        subkind=Subkind.DELAY_NOTICE,
    )
    thread = history(msg(K.OUTBOUND, SENT), receipt, delay)
    assert decide(thread, RULES, CAL, SENT + timedelta(days=7)).state is S.QUIET


def test_a_final_failure_after_a_delay_notice_bounces_the_thread() -> None:
    from app.domain.model import Subkind

    delay = ThreadMessage(
        message_id="<d@x>",
        kind=K.BOUNCE,
        date=SENT + timedelta(hours=2),
        sender="mailer-daemon@mx.buyer.org",
        subkind=Subkind.DELAY_NOTICE,
    )
    failure = ThreadMessage(
        message_id="<f@x>",
        kind=K.BOUNCE,
        date=SENT + timedelta(days=5),
        sender="mailer-daemon@mx.buyer.org",
    )
    delayed_only = history(msg(K.OUTBOUND, SENT), delay)
    assert decide(delayed_only, RULES, CAL, SENT + timedelta(days=1)).state is S.AWAITING_REPLY
    failed = history(msg(K.OUTBOUND, SENT), delay, failure)
    assert decide(failed, RULES, CAL, SENT + timedelta(days=6)).state is S.BOUNCED


def test_left_the_company_names_the_replacement() -> None:
    from app.domain.model import Subkind

    gone = ThreadMessage(
        message_id="<g@x>",
        kind=K.AUTO_REPLY,
        date=SENT + timedelta(hours=1),
        sender="anna@buyer.org",
        subkind=Subkind.LEFT_COMPANY,
        replacement_contact="bob@buyer.org",
    )
    decision = decide(history(msg(K.OUTBOUND, SENT), gone), RULES, CAL, SENT + timedelta(days=1))
    assert decision.state is S.BOUNCED
    assert "bob@buyer.org" in decision.reason


def test_a_quiet_reason_says_the_time_really_passed_and_stays_true() -> None:
    """Weeks later the reason says how long it has really been, with the full date, and the
    thread is looked at again when the next business day completes (so it never goes stale)."""
    thread = history(msg(K.OUTBOUND, SENT))
    now = datetime(2026, 12, 14, 10, 0, tzinfo=UTC)  # Mon 14 Dec 11:00 Berlin
    decision = decide(thread, RULES, CAL, now)
    assert decision.state is S.QUIET
    assert decision.reason.startswith(
        "quiet for 20 business days since your e-mail of Fri 13 Nov 14:02 Europe/Berlin;"
    )
    assert decision.next_check_at == datetime(2026, 12, 14, 13, 2, tzinfo=UTC)
    later = decide(thread, RULES, CAL, decision.next_check_at)
    assert later.reason.startswith("quiet for 21 business days since")
