"""The demo's sample mailbox, written for this project: a sales rep at Northwind Analytics and
about thirty conversations with prospects, colleagues and newsletters, dated relative to now.

Every date is placed in business days of the mailbox's own calendar (`WorkCalendar`:
weekends and public holidays), so that under the default rules each thread lands in the
state it was written for on whatever day the demo runs: quiet at follow-up 1, 2 and 3,
awaiting a reply, replied, waiting for the rep's answer, paused by an out-of-office, bounced,
declined, left the company, internal, newsletters. `expected` says which, per thread.
Pure: the caller passes the clock and the calendar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

from app.domain.worktime import WorkCalendar

REP_NAME = "Maya Lindqvist"
REP_ADDRESS = "maya@northwind-analytics.example"
REP = f"{REP_NAME} <{REP_ADDRESS}>"
OWN_DOMAIN = "northwind-analytics.example"
TIMEZONE = "America/New_York"
HOLIDAY_COUNTRY = "US"
SIGNATURE = (
    "\n\nBest,\nMaya\n\n--\nMaya Lindqvist | Account Executive\n"
    "Northwind Analytics · demand forecasting for distributors\n+1 617 555 0143"
)


@dataclass(frozen=True, kw_only=True)
class SampleMessage:
    folder: str  # "INBOX", "Sent", "Newsletters"
    date: datetime  # aware
    raw: bytes  # RFC 5322, CRLF


@dataclass(frozen=True, kw_only=True)
class Expected:
    """The state a thread must reach under the default rules (by its first Message-ID)."""

    state: str
    needs_response: bool = False
    followups_sent: int = 0
    subject: str = ""


@dataclass(frozen=True, kw_only=True)
class SampleMailbox:
    rep_address: str
    timezone: str
    holiday_country: str | None
    messages: tuple[SampleMessage, ...]
    expected: dict[str, Expected]  # first Message-ID (with angle brackets) -> its verdict


@dataclass
class _Thread:
    subject: str
    ids: list[str] = field(default_factory=list)


class _Writer:
    """Builds the messages: `day(n)` is the n-th working day before today (local)."""

    def __init__(self, now: datetime, cal: WorkCalendar) -> None:
        self.now = now
        self.cal = cal
        self.messages: list[SampleMessage] = []
        self.expected: dict[str, Expected] = {}
        self._days: list[date] = []
        self._serial = 0
        today = now.astimezone(cal.tz).date()
        d = today
        while len(self._days) < 40:
            d -= timedelta(days=1)
            if cal.is_working_day(d):
                self._days.append(d)

    def day(self, n: int, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(self._days[n - 1], time(hour, minute), self.cal.tz)

    def ago(self, minutes: int) -> datetime:
        return self.now.astimezone(self.cal.tz) - timedelta(minutes=minutes)

    def _id(self, domain: str) -> str:
        self._serial += 1
        return f"<demo.{self._serial:03d}.{self.now:%Y%m%d}@{domain}>"

    def send(
        self,
        thread: _Thread,
        when: datetime,
        to: list[str],
        body: str,
        *,
        cc: list[str] | None = None,
        signed: bool = True,
    ) -> None:
        """An e-mail of the rep's, filed in Sent."""
        subject = thread.subject if not thread.ids else f"Re: {thread.subject}"
        self._add(
            thread,
            "Sent",
            when,
            sender=REP,
            to=to,
            cc=cc or [],
            subject=subject,
            body=body + (SIGNATURE if signed else ""),
            domain=OWN_DOMAIN,
        )

    def receive(
        self,
        thread: _Thread,
        when: datetime,
        sender: str,
        body: str,
        *,
        to: list[str] | None = None,
        subject: str | None = None,
        headers: dict[str, str] | None = None,
        folder: str = "INBOX",
        content_type: tuple[str, str] | None = None,
    ) -> None:
        """A message to the rep, filed in `folder`."""
        domain = sender.rpartition("@")[2].rstrip(">")
        default = thread.subject if not thread.ids else f"Re: {thread.subject}"
        self._add(
            thread,
            folder,
            when,
            sender=sender,
            to=to or [REP],
            cc=[],
            subject=subject or default,
            body=body,
            domain=domain,
            headers=headers or {},
            content_type=content_type,
        )

    def _add(
        self,
        thread: _Thread,
        folder: str,
        when: datetime,
        *,
        sender: str,
        to: list[str],
        cc: list[str],
        subject: str,
        body: str,
        domain: str,
        headers: dict[str, str] | None = None,
        content_type: tuple[str, str] | None = None,
    ) -> None:
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = sender
        msg["To"] = ", ".join(to)
        if cc:
            msg["Cc"] = ", ".join(cc)
        msg["Subject"] = subject
        msg["Date"] = format_datetime(when)
        message_id = self._id(domain)
        msg["Message-ID"] = message_id
        if thread.ids:
            msg["In-Reply-To"] = thread.ids[-1]
            msg["References"] = " ".join(thread.ids[-10:])
        for name, value in (headers or {}).items():
            msg[name] = value
        if content_type is None:
            msg.set_content(body)
        else:  # a delivery report: its parts are written out by hand
            msg["MIME-Version"] = "1.0"
            msg["Content-Type"] = f"{content_type[0]}/{content_type[1]}"
            msg.set_payload(body)
        thread.ids.append(message_id)
        self.messages.append(SampleMessage(folder=folder, date=when, raw=msg.as_bytes()))

    def expect(
        self, thread: _Thread, state: str, *, needs_response: bool = False, followups_sent: int = 0
    ) -> None:
        self.expected[thread.ids[0]] = Expected(
            state=state,
            needs_response=needs_response,
            followups_sent=followups_sent,
            subject=thread.subject,
        )


def sample_mailbox(now: datetime, calendar: WorkCalendar) -> SampleMailbox:
    """The sample as of `now`, in `calendar` (which must be the mailbox's own)."""
    w = _Writer(now, calendar)
    _quiet(w)
    _waiting_on_them(w)
    _waiting_on_you(w)
    _machines_and_noes(w)
    _not_sales(w)
    return SampleMailbox(
        rep_address=REP_ADDRESS,
        timezone=calendar.timezone,
        holiday_country=HOLIDAY_COUNTRY,
        messages=tuple(sorted(w.messages, key=lambda m: m.date)),
        expected=w.expected,
    )


def _quiet(w: _Writer) -> None:
    """Follow-ups due: step 1 (one e-mail), step 2 (one bump sent), step 3 (two bumps)."""
    firsts = [
        (
            "Demand forecasting pilot for Alder & Finch",
            "Hannah Cole <hannah.cole@alderfinch.example>",
            4,
            "Hi Hannah,\n\nthanks again for the time on Tuesday. As promised, here is how a "
            "six-week pilot would look for your two Ohio warehouses:\n\n"
            "- weeks 1-2: we connect to your ERP export and backfill 24 months of orders\n"
            "- weeks 3-6: daily forecasts per SKU next to your current planning sheet\n"
            "- at the end: a side-by-side of forecast error and stock-outs\n\n"
            "The pilot is free; we only ask for a 30-minute review call at the end. "
            "Could you share the ERP export contact so we can get started?",
        ),
        (
            "Pricing for 3 distribution centers",
            "Marcus Webb <m.webb@kestrelsupply.example>",
            5,
            "Hi Marcus,\n\nplease find the pricing for three distribution centers below.\n\n"
            "Platform, 3 sites: $4,800 / month\nOnboarding (one-time): $6,500\n"
            "Annual prepay: 12% off\n\nThis includes unlimited planner seats and the "
            "supplier lead-time module you asked about. Happy to walk your CFO through it.",
        ),
        (
            "Follow-up from ProMat: replenishment planning",
            "Aisha Rahman <aisha.rahman@bluestemfoods.example>",
            6,
            "Hi Aisha,\n\ngreat meeting you at the ProMat booth. You mentioned that "
            "replenishment for the frozen range is still planned by hand every Monday. "
            "That is exactly where our customers see the fastest payback: Greenway Grocers "
            "cut their frozen write-offs by 18% in the first quarter.\n\n"
            "Would a 30-minute call next week make sense to see it on your own data?",
        ),
        (
            "Security review documents",
            "Oliver Brandt <oliver.brandt@meridianparts.example>",
            7,
            "Hi Oliver,\n\nas requested, attached you will find our SOC 2 Type II report, "
            "the completed CAIQ questionnaire and our data processing agreement.\n\n"
            "Let me know if your security team needs anything else before the review.",
        ),
        (
            "Proposal: forecasting for the West region",
            "Grace Liu <grace.liu@tidewaterdist.example>",
            9,
            "Hi Grace,\n\nhere is the proposal for the West region rollout we discussed with "
            "your VP of Operations: 4 warehouses, 11,000 active SKUs, go-live in 8 weeks.\n\n"
            "The summary is on page 2; pricing and the implementation plan are on pages 5-7. "
            "Could we review it together this week?",
        ),
    ]
    for subject, prospect, days, body in firsts:
        t = _Thread(subject)
        w.send(t, w.day(days, 10, 12 + days), [prospect], body)
        w.expect(t, "quiet")

    seconds = [
        (
            "Next steps after the demo",
            "Ravi Menon <ravi.menon@corbelhardware.example>",
            "Hi Ravi,\n\nthank you and your team for joining the demo yesterday. To recap "
            "the next steps we agreed on:\n\n1. you send us 12 months of sales history\n"
            "2. we prepare a forecast accuracy report on it within a week\n"
            "3. we meet again with your purchasing lead\n\nDoes the week of the 15th work?",
            "Just bringing this back to the top of your inbox - is sending the sales history "
            "still on your list?",
        ),
        (
            "Order-to-forecast integration with NetSuite",
            "Laura Gomez <lgomez@palisadeoutdoor.example>",
            "Hi Laura,\n\nyou asked how we connect to NetSuite. In short: a read-only "
            "integration role, a saved search for orders and item fulfilments, and a nightly "
            "sync. Nothing is written back unless you turn on purchase order suggestions.\n\n"
            "Would your NetSuite admin have 20 minutes for a setup call?",
            "Wanted to follow up in case this got buried. Would a short call with your "
            "NetSuite admin work next week?",
        ),
        (
            "Renewal of your planning licences",
            "Peter Novak <peter.novak@granitemachining.example>",
            "Hi Peter,\n\nyour current licences run until the end of next month. Ahead of "
            "the renewal I put together what changed this year: the new promotions module, "
            "faster nightly runs and the supplier portal. I have also kept your current "
            "price for another 12 months if we sign before the end of the quarter.",
            "Quick nudge on the renewal below - shall I send the order form?",
        ),
    ]
    for subject, prospect, body, bump in seconds:
        t = _Thread(subject)
        w.send(t, w.day(12, 9, 40), [prospect], body)
        w.send(t, w.day(7, 11, 5), [prospect], bump, signed=False)
        w.expect(t, "quiet", followups_sent=1)

    thirds = [
        (
            "Reducing stock-outs at Copperline",
            "Nina Petrov <nina.petrov@copperline.example>",
            "Hi Nina,\n\nas discussed, I looked at the stock-out numbers you shared: about "
            "6% of order lines shipped incomplete last quarter, mostly on fast movers. Our "
            "forecasting would have flagged 70% of those two weeks ahead.\n\n"
            "Could we set up a pilot on your top 500 SKUs?",
            [
                "What would be a good next step on the pilot?",
                "I will hold the pilot slot for Copperline until the end of next week, unless "
                "I hear otherwise.",
            ],
        ),
        (
            "Quote for the planning workspace",
            "Samuel Osei <s.osei@harborlinemarine.example>",
            "Hi Samuel,\n\nhere is the quote for the planning workspace for your team of "
            "eight: $2,400 per month, onboarding included, cancel any time in the first 90 "
            "days. I can have you live within three weeks of signing.",
            [
                "Is there some way to find out if this is a priority this quarter?",
                "Checking in once more on the quote - happy to adjust the scope if that helps.",
            ],
        ),
    ]
    for subject, prospect, body, bumps in thirds:
        t = _Thread(subject)
        w.send(t, w.day(22, 14, 20), [prospect], body)
        w.send(t, w.day(16, 10, 0), [prospect], bumps[0], signed=False)
        w.send(t, w.day(10, 15, 30), [prospect], bumps[1], signed=False)
        w.expect(t, "quiet", followups_sent=2)

    # Three follow-ups without an answer: the thread closed itself (no_response).
    t = _Thread("Inventory health check for Birchwood")
    prospect = "Ellen Ward <ellen.ward@birchwoodsupply.example>"
    w.send(
        t,
        w.day(32, 10, 0),
        [prospect],
        "Hi Ellen,\n\nwe offer a free inventory health check: you send an export of stock "
        "levels and sales, we send back a report of overstock and at-risk items within five "
        "days. Interested?",
    )
    w.send(t, w.day(27, 10, 0), [prospect], "Any thoughts on the health check?", signed=False)
    w.send(t, w.day(21, 10, 0), [prospect], "Following up on this one.", signed=False)
    w.send(
        t,
        w.day(13, 10, 0),
        [prospect],
        "I have not heard back, so I will assume the timing is not right and close this on "
        "my side. If things change, just reply and I will pick it up.",
        signed=False,
    )
    w.expect(t, "closed", followups_sent=3)


def _waiting_on_them(w: _Writer) -> None:
    """Sent recently: not quiet yet."""
    recent = [
        (
            "Forecast accuracy report for Lakeshore",
            "Daniel Kim <daniel.kim@lakeshoreretail.example>",
            w.day(1, 15, 30),
            "Hi Daniel,\n\nattached is the forecast accuracy report on the data you sent: "
            "our forecast would have cut the average error from 31% to 17% on your top "
            "category. Happy to go through it whenever suits you.",
        ),
        (
            "Agenda for Thursday's workshop",
            "Sofia Marin <sofia.marin@crestviewlogistics.example>",
            w.day(2, 9, 50),
            "Hi Sofia,\n\nhere is the agenda for Thursday: 9:30 current planning process, "
            "10:30 live data walkthrough, 11:30 pilot scope. Could you confirm the room and "
            "whether your IT contact will join?",
        ),
        (
            "Contract redlines",
            "James Porter <jporter@ironbridgeparts.example>",
            w.ago(95),
            "Hi James,\n\nour legal team accepted most of your redlines. Two open points: "
            "the liability cap (we propose 12 months of fees) and the data retention period "
            "after termination (we propose 60 days). The updated contract is attached.",
        ),
    ]
    for subject, prospect, when, body in recent:
        t = _Thread(subject)
        w.send(t, when, [prospect], body)
        w.expect(t, "awaiting_reply")

    # They answered, the rep answered back: the ball is in their court again.
    t = _Thread("Data export for the pilot")
    prospect = "Chloe Adams <chloe.adams@summitbuilders.example>"
    w.send(
        t,
        w.day(6, 11, 0),
        [prospect],
        "Hi Chloe,\n\nfor the pilot we need an export of orders (date, SKU, quantity, "
        "location) for the last 24 months. A CSV per month is perfect.",
    )
    w.receive(
        t,
        w.day(4, 16, 10),
        prospect,
        "Hi Maya,\n\nour IT can do that, but only as one big Excel file. Is that OK?\n\nChloe",
    )
    w.send(
        t,
        w.day(2, 8, 55),
        [prospect],
        "Hi Chloe,\n\nan Excel file is fine - upload it here whenever it is ready: "
        "https://upload.northwind-analytics.example/summit",
    )
    w.expect(t, "awaiting_reply")


def _waiting_on_you(w: _Writer) -> None:
    """Replies and a new lead: the rep owes the answer (after one business hour)."""
    t = _Thread("Pricing for 40 planner seats")
    prospect = "Rebecca Stone <rebecca.stone@fairhavenfoods.example>"
    w.send(
        t,
        w.day(5, 10, 30),
        [prospect],
        "Hi Rebecca,\n\nhere is the pricing for 40 planner seats: $6,200 per month on an "
        "annual contract, onboarding included.",
    )
    w.receive(
        t,
        w.day(1, 11, 0),
        prospect,
        "Hi Maya,\n\nthanks - this looks workable. Two questions before I take it to our "
        "CFO: can we start with 25 seats and add the rest in Q3 at the same price? And do "
        "you have a customer reference in food distribution we could call?\n\nRebecca",
    )
    w.expect(t, "replied", needs_response=True)

    t = _Thread("Request a demo")
    w.receive(
        t,
        w.day(2, 14, 15),
        "Tomás Herrera <tomas.herrera@vistaprovisions.example>",
        "Hello,\n\nI run purchasing at Vista Provisions (3 warehouses, about 6,000 SKUs). We "
        "are looking for a better way to forecast seasonal demand before next summer. Could "
        "someone show us the product in the next two weeks?\n\nThanks,\nTomás Herrera",
    )
    w.expect(t, "replied", needs_response=True)

    t = _Thread("Questions on the integration")
    prospect = "Ingrid Halvorsen <ingrid.h@northgateparts.example>"
    w.send(
        t,
        w.day(8, 13, 0),
        [prospect],
        "Hi Ingrid,\n\nas promised, here is the integration overview for SAP Business One.",
    )
    w.receive(
        t,
        w.day(3, 9, 20),
        prospect,
        "Hi Maya,\n\nour IT lead asks whether the connector needs write access to SAP, and "
        "where the data is hosted. Could you clarify?\n\nBest regards,\nIngrid",
    )
    w.expect(t, "replied", needs_response=True)

    # Answered a few minutes ago: replied, and not yet owed.
    t = _Thread("Reference call with Greenway Grocers")
    prospect = "Kevin O'Brien <kevin.obrien@oakmontwholesale.example>"
    w.send(
        t,
        w.day(3, 10, 45),
        [prospect],
        "Hi Kevin,\n\nGreenway Grocers' head of planning is happy to talk to you about "
        "their first year with us. Would Tuesday or Wednesday afternoon work?",
    )
    w.receive(
        t,
        w.ago(25),
        prospect,
        "Hi Maya,\n\nWednesday at 2pm works for me. Please send an invite.\n\nKevin",
    )
    w.expect(t, "replied")

    t = _Thread("Onboarding timeline")
    prospect = "Fatima Zahra <fatima.zahra@cedarlanehome.example>"
    w.send(
        t,
        w.day(4, 15, 0),
        [prospect],
        "Hi Fatima,\n\nhere is the onboarding timeline: kick-off, data connection in week "
        "1, first forecasts in week 3, training in week 4.",
    )
    w.receive(
        t,
        w.ago(40),
        prospect,
        "Thanks Maya, that timeline works. I have looped in our IT manager for week 1.\n\nFatima",
    )
    w.expect(t, "replied")


def _machines_and_noes(w: _Writer) -> None:
    """Out-of-office (paused), a bounce, two clear no's, and someone who left."""
    back = w.now.astimezone(w.cal.tz).date() + timedelta(days=9)
    t = _Thread("Pilot scope for Redwood Beverages")
    prospect = "Lena Fischer <lena.fischer@redwoodbev.example>"
    w.send(
        t,
        w.day(2, 10, 5),
        [prospect],
        "Hi Lena,\n\nhere is the pilot scope we discussed: two plants, the 40 best-selling "
        "SKUs, six weeks. Let me know if I missed anything.",
    )
    w.receive(
        t,
        w.day(2, 10, 6),
        prospect,
        f"Thank you for your message. I am out of the office until "
        f"{back:%B} {back.day}, {back.year}, with limited access to e-mail. For urgent "
        "matters please contact orders@redwoodbev.example.\n\nLena Fischer",
        subject="Automatic reply: Pilot scope for Redwood Beverages",
        headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
    )
    w.expect(t, "paused")

    t = _Thread("Introduction: Northwind Analytics")
    w.send(
        t,
        w.day(3, 11, 30),
        ["Jordan Okafor <j.okafor@harbourfreight.example>"],
        "Hi Jordan,\n\nAisha Rahman at Bluestem Foods suggested I get in touch. We help "
        "distributors forecast demand per SKU and location; would a short intro call make "
        "sense?",
    )
    w.receive(
        t,
        w.day(3, 11, 31),
        "Mail Delivery System <MAILER-DAEMON@mx.harbourfreight.example>",
        _bounce_report(t.ids[0], "j.okafor@harbourfreight.example"),
        subject="Undelivered Mail Returned to Sender",
        headers={"Auto-Submitted": "auto-replied"},
        content_type=("multipart", 'report; report-type=delivery-status; boundary="rs-dsn"'),
    )
    w.expect(t, "bounced")

    declines = [
        (
            "Forecasting for Silverline Distribution",
            "Mark Jensen <mark.jensen@silverlinedist.example>",
            "Hi Maya,\n\nthanks for your patience. We went with another vendor this year, "
            "mainly because they already integrate with our WMS. I'll keep your details for "
            "next year.\n\nMark",
        ),
        (
            "Planning workshop invitation",
            "Olga Ivanova <olga.ivanova@polarisfrozen.example>",
            "Hello Maya,\n\nthank you, but we are not interested at this time.\n\nOlga",
        ),
    ]
    for subject, prospect, answer in declines:
        t = _Thread(subject)
        w.send(
            t,
            w.day(9, 14, 0),
            [prospect],
            "Hi,\n\nfollowing our call, here is the summary and the proposed pilot plan. "
            "Could we pick a start date?",
        )
        w.receive(t, w.day(5, 9, 45), prospect, answer)
        w.expect(t, "closed")

    t = _Thread("Renewal options for Crestview")
    w.send(
        t,
        w.day(6, 10, 20),
        ["Daniel Reyes <daniel.reyes@crestviewlogistics.example>"],
        "Hi Daniel,\n\nahead of your renewal, here are three options for next year, from "
        "a straight renewal to the full platform with the supplier portal.",
    )
    w.receive(
        t,
        w.day(6, 10, 21),
        "Daniel Reyes <daniel.reyes@crestviewlogistics.example>",
        "Daniel Reyes is no longer with Crestview Logistics. For all matters, please contact "
        "Sofia Marin (sofia.marin@crestviewlogistics.example).",
        subject="Automatic reply: Renewal options for Crestview",
        headers={"Auto-Submitted": "auto-replied"},
    )
    w.expect(t, "bounced")


def _bounce_report(returned_id: str, recipient: str) -> str:
    return (
        "--rs-dsn\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is the mail system at host mx.harbourfreight.example.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered to one "
        "or more recipients.\r\n\r\n"
        f"<{recipient}>: host mx.harbourfreight.example said: 550 5.1.1 <{recipient}>: "
        "Recipient address rejected: User unknown in virtual mailbox table\r\n\r\n"
        "--rs-dsn\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.harbourfreight.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822;{recipient}\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected\r\n\r\n"
        "--rs-dsn\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {REP}\r\nTo: {recipient}\r\nSubject: Introduction: Northwind Analytics\r\n"
        f"Message-ID: {returned_id}\r\n\r\n"
        "--rs-dsn--\r\n"
    )


def _not_sales(w: _Writer) -> None:
    """Colleagues and newsletters: never watched."""
    priya = f"Priya Nair <priya.nair@{OWN_DOMAIN}>"
    tom = f"Tom Becker <tom.becker@{OWN_DOMAIN}>"
    t = _Thread("Q1 pipeline review")
    w.receive(
        t,
        w.day(4, 8, 30),
        priya,
        "Hi Maya,\n\ncan you update the forecast column for your top ten deals before "
        "Friday's pipeline review?\n\nThanks,\nPriya",
    )
    w.send(t, w.day(4, 9, 10), [priya], "Will do - done by Thursday noon.")
    w.expect(t, "ignored")

    t = _Thread("Demo environment for Copperline")
    w.send(
        t,
        w.day(8, 16, 0),
        [tom],
        "Hi Tom,\n\ncould you set up a demo tenant with Copperline's sample data by next week?",
    )
    w.receive(t, w.day(7, 9, 5), tom, "Sure, it will be ready on Wednesday.\n\nTom")
    w.expect(t, "ignored")

    t = _Thread("Team offsite: travel details")
    w.receive(
        t,
        w.day(3, 13, 0),
        f"People Team <people@{OWN_DOMAIN}>",
        "Hi all,\n\nthe offsite hotel is booked; please submit your travel by Friday.",
    )
    w.expect(t, "ignored")

    newsletters = [
        (
            "Supply Chain Dive <newsletter@supplychaindive.example>",
            "Weekly: freight rates fall for the fourth week",
            "This week's top stories: freight rates, port congestion and warehouse labor.",
            "Newsletters",
        ),
        (
            "SaaS Sales Weekly <hello@saassalesweekly.example>",
            "5 follow-up e-mails that actually get answers",
            "In this issue: why short follow-ups win, and when to give permission to say no.",
            "Newsletters",
        ),
        (
            "CloudDesk Billing <no-reply@clouddesk.example>",
            "Your invoice for November is ready",
            "Your invoice INV-20931 is available in your account.",
            "INBOX",
        ),
        (
            "ProMat Events <events@promatshow.example>",
            "Last chance: early-bird tickets for ProMat",
            "Early-bird pricing ends Friday. Register today and save 30%.",
            "INBOX",
        ),
    ]
    for i, (sender, subject, body, folder) in enumerate(newsletters):
        t = _Thread(subject)
        domain = sender.rpartition("@")[2].rstrip(">")
        w.receive(
            t,
            w.day(1 + i * 2, 6, 30),
            sender,
            body + "\n\nYou receive this e-mail because you subscribed. Unsubscribe: "
            f"https://{domain}/u",
            headers={
                "List-Unsubscribe": f"<https://{domain}/unsubscribe>",
                "List-Id": f"<news.{domain}>",
                "Precedence": "bulk",
            },
            folder=folder,
        )
        w.expect(t, "ignored")
