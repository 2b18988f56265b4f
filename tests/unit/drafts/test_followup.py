"""The follow-up plan: what to forward, to whom, under which subject, with which variables."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from app.domain.followup import (
    NothingToForward,
    StoredMessage,
    company_of,
    describe_date,
    first_name_of,
    forward_reason,
    last_outbound,
    plan_followup,
    reply_subject,
    stage_of,
    strip_reply_prefixes,
    unanswered_run,
    weigh_forward,
)
from app.domain.model import Address, Identity, MessageKind, Rules
from app.domain.worktime import WorkCalendar

REP = Address(email="rep@seller.example", name="Rita Rep")
ANNA = Address(email="anna.schmidt@buyer-group.co.uk")
BOB = Address(email="bob@buyer-group.co.uk", name="Bob Buyer")
IDENTITY = Identity.from_addresses(["rep@seller.example"])
BERLIN = WorkCalendar(
    timezone="Europe/Berlin",
    weekend=frozenset({5, 6}),
    holidays={date(2026, 12, 25): "Christmas Day"},
)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday


def out(mid: str, when: datetime, subject: str = "Proposal", **kw: object) -> StoredMessage:
    values: dict[str, object] = {
        "message_id": mid,
        "kind": MessageKind.OUTBOUND,
        "date": when,
        "subject": subject,
        "sender": REP,
        "to": (ANNA,),
        "cc": (BOB,),
    }
    values.update(kw)
    return StoredMessage(**values)  # type: ignore[arg-type]


def plan(messages: list[StoredMessage], step: int = 1, **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "thread_id": 7,
        "step": step,
        "messages": messages,
        "identity": IDENTITY,
        "rules": Rules(),
        "calendar": BERLIN,
        "now": NOW,
    }
    args.update(kw)
    return plan_followup(**args)  # type: ignore[arg-type]


def test_forwards_the_reps_last_outbound_as_a_reply_to_it() -> None:
    first = out("<o1@seller.example>", NOW - timedelta(days=12), "Proposal")
    reply = StoredMessage(
        message_id="<r1@buyer.example>",
        kind=MessageKind.REPLY,
        date=NOW - timedelta(days=11),
        subject="Re: Proposal",
        sender=Address(email="anna.schmidt@buyer-group.co.uk", name="Anna Schmidt"),
        to=(REP,),
    )
    last = out(
        "<o2@seller.example>",
        NOW - timedelta(days=6),
        "RE: AW: Re: Proposal",
        references=("<o1@seller.example>", "<r1@buyer.example>"),
    )
    p = plan([first, reply, last])
    assert p.forward is last
    assert p.from_ == REP
    assert p.to == (Address(email=ANNA.email, name="Anna Schmidt"),)  # name from her reply
    assert p.cc == (BOB,)
    assert p.subject == "Re: Proposal"
    assert p.in_reply_to == "<o2@seller.example>"
    assert p.references == ("<o1@seller.example>", "<r1@buyer.example>", "<o2@seller.example>")
    assert p.variables["first_name"] == "Anna"
    assert p.variables["company"] == "Buyer Group"
    assert p.variables["subject"] == "Proposal"


def test_an_email_without_message_id_is_followed_up_without_threading_headers() -> None:
    good = out("<o1@seller.example>", NOW - timedelta(days=9))
    broken = out(
        None,
        NOW - timedelta(days=5),
        key="<3f2a@synthetic.radiosilence.invalid>",
        references=("<o1@seller.example>",),
    )
    p = plan([good, broken])
    assert p.forward is broken and p.answers is broken
    assert p.in_reply_to is None
    assert p.references == ()  # its own References would make the draft answer another e-mail
    assert plan([broken]).in_reply_to is None
    with pytest.raises(NothingToForward):
        plan([])


def test_forwards_the_chosen_email_and_answers_the_last_one() -> None:
    offer = out("<o1@seller.example>", NOW - timedelta(days=12), "Proposal")
    bump = out(
        "<o2@seller.example>",
        NOW - timedelta(days=6),
        "Re: Proposal",
        references=("<o1@seller.example>",),
    )
    p = plan([offer, bump], forward=offer, why="forwards the offer")
    assert p.forward is offer and p.answers is bump
    assert p.in_reply_to == "<o2@seller.example>"
    assert p.references == ("<o1@seller.example>", "<o2@seller.example>")
    assert p.forward_reason == "forwards the offer"


@pytest.mark.parametrize(
    ("text", "attached", "verdict"),
    [
        ("Hi Erin, bumping this up.", False, "bump"),
        ("Any news on this?\n\nBest,\nRita", False, "bump"),
        ("Hi Erin, bumping this up.", True, "substance"),  # "here is the quote" + a PDF
        (
            "Hi Erin, bumping this up.\n\nOn Mon, 2 Mar 2026 Rita <rep@seller.example> wrote:\n"
            "> Hi Erin,\n> here is the offer for the 40 seats we discussed.",
            False,
            "quoting_bump",
        ),
        (
            "Hi Erin,\n\nhere is the offer for the 40 seats we discussed: 40 licences at 30 EUR "
            "a month, onboarding in April, a named contact for your IT team, and the security "
            "review documents you asked for. Could we talk on Thursday?\n\nBest,\nRita",
            False,
            "substance",
        ),
    ],
)
def test_weighing_an_email_to_forward(text: str, attached: bool, verdict: str) -> None:
    assert weigh_forward(text, has_attachment=attached) == verdict


def test_the_unanswered_run_is_the_reps_emails_since_the_last_answer_newest_first() -> None:
    first = out("<o1@seller.example>", NOW - timedelta(days=20))
    answer = StoredMessage(
        message_id="<r1@buyer.example>",
        kind=MessageKind.REPLY,
        date=NOW - timedelta(days=18),
        subject="Re: Proposal",
        sender=ANNA,
    )
    second = out("<o2@seller.example>", NOW - timedelta(days=12))
    third = out("<o3@seller.example>", NOW - timedelta(days=6))
    assert unanswered_run([first, answer, second, third]) == [third, second]
    assert unanswered_run([first]) == [first]


def test_the_forward_reason_names_the_email_and_why() -> None:
    offer = out("<o1@seller.example>", datetime(2026, 11, 6, 9, 7, tzinfo=UTC), "Proposal")
    bump = out("<o2@seller.example>", datetime(2026, 11, 13, 9, 0, tzinfo=UTC), "Re: Proposal")
    assert forward_reason(offer, bump, calendar=BERLIN, bumps_passed=1) == (
        "forwards your e-mail of Fri 06 Nov 2026 10:07 ('Proposal'): it carries the substance; "
        "your later nudge since (the last of Fri 13 Nov 2026 10:00) only bumped it"
    )
    assert "it quotes your earlier e-mail" in forward_reason(
        bump, bump, calendar=BERLIN, quotes_original=True
    )
    assert "every e-mail of yours since the last answer is a short nudge" in forward_reason(
        bump, bump, calendar=BERLIN, bumps_passed=2, all_bumps=True
    )
    assert forward_reason(bump, bump, calendar=BERLIN).endswith("your last e-mail in this thread")
    # The later e-mail could not be fetched (deleted from the server): say so, not "nudge".
    assert forward_reason(offer, bump, calendar=BERLIN).endswith(
        "your later e-mail of Fri 13 Nov 2026 10:00 is gone from the server"
    )


def test_of_two_sent_at_once_the_later_listed_is_forwarded() -> None:
    # Storage lists a thread by date, then by id: the later row is the later stored.
    when = NOW - timedelta(days=6)
    earlier = out("<o1@seller.example>", when)
    later = out("<o2@seller.example>", when)
    reply = StoredMessage(
        message_id="<r1@buyer.example>",
        kind=MessageKind.REPLY,
        date=NOW - timedelta(days=1),
        subject="Re: Proposal",
        sender=ANNA,
    )
    assert last_outbound([earlier, later, reply]) is later
    assert plan([earlier, later, reply]).forward is later
    assert last_outbound([reply]) is None
    idless = out(None, when, key="<k@synthetic.radiosilence.invalid>")
    assert last_outbound([reply, idless]) is idless  # a Message-ID is not needed


def test_step_stage_and_next_step_date_in_business_days() -> None:
    messages = [out("<o1@seller.example>", NOW - timedelta(days=7))]
    one = plan(messages, step=1)
    assert one.stage == "first"
    # Cadence 3 after follow-up 1: Mon 23 Nov + 3 business days = Thu 26 Nov.
    assert one.next_step_date == date(2026, 11, 26)
    assert one.variables["next_step_date"] == "Thursday 26 November"
    two = plan(messages, step=2)
    assert two.stage == "middle"
    assert two.next_step_date == date(2026, 11, 30)  # 5 business days, over a weekend
    last = plan(messages, step=3)
    assert last.stage == "last"
    assert last.next_step_date is None and last.variables["next_step_date"] == ""


def test_next_step_date_skips_holidays() -> None:
    messages = [out("<o1@seller.example>", NOW - timedelta(days=7))]
    p = plan(messages, step=2, now=datetime(2026, 12, 21, 10, tzinfo=UTC))
    # Mon 21 Dec + 5 business days, Fri 25 Dec is a holiday: Tue 29 Dec.
    assert p.next_step_date == date(2026, 12, 29)


def test_business_days_quiet() -> None:
    p = plan([out("<o1@seller.example>", datetime(2026, 11, 16, 10, tzinfo=UTC))])
    assert p.variables["business_days_quiet"] == 5
    assert p.variables["step"] == 1


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Proposal", "Re: Proposal"),
        ("Re: Proposal", "Re: Proposal"),
        ("RE: AW: Fwd: Proposal", "Re: Proposal"),
        ("Re[2]: Proposal", "Re: Proposal"),
        ("[EXT] Proposal", "Re: [EXT] Proposal"),
        ("Angebot  für\tMüller", "Re: Angebot für Müller"),
        ("", "Re:"),
    ],
)
def test_reply_subject_never_stacks_prefixes(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected
    assert strip_reply_prefixes(expected.removeprefix("Re:").strip()) == expected[4:]


@pytest.mark.parametrize(
    ("domain", "company"),
    [
        ("buyer.example", "Buyer"),
        ("mail.acme-corp.com", "Acme Corp"),
        ("buyer-group.co.uk", "Buyer Group"),
        ("gmail.com", ""),
        ("localhost", "Localhost"),
        ("", ""),
    ],
)
def test_company_from_the_domain(domain: str, company: str) -> None:
    assert company_of(domain) == company


@pytest.mark.parametrize(
    ("address", "first"),
    [
        (Address(email="x@y.example", name="Anna Schmidt"), "Anna"),
        (Address(email="x@y.example", name="Schmidt, Anna"), "Anna"),
        (Address(email="anna.schmidt@y.example"), "Anna"),
        (Address(email="info@y.example"), ""),
        (Address(email="a1@y.example"), ""),
        (Address(email="jörg@y.example", name="Jörg Müller"), "Jörg"),
    ],
)
def test_first_name(address: Address, first: str) -> None:
    assert first_name_of(address) == first


def test_stage_of_and_describe_date() -> None:
    assert [stage_of(s, 3) for s in (1, 2, 3)] == ["first", "middle", "last"]
    assert stage_of(1, 1) == "last"
    assert describe_date(date(2026, 12, 3)) == "Thursday 3 December"
