"""Each message's kind with the reason that decided it.

Order matters: the rep's own mail first, then machine-made mail (delivery reports,
auto-replies, bulk), because auto-replies and bounces thread like replies and must never end a
silence. The body, when the caller has it, refines the header's verdict: a delivery-status
report's recipients, a calendar answer, a quote-only "reply", a clear decline.
"""

from __future__ import annotations

from functools import lru_cache

from app.domain.autoreply import (
    auto_reply_header,
    auto_reply_subject,
    autoresponder_phrase,
    challenge_phrase,
    is_out_of_office,
    left_company_phrase,
    may_have_phrase,
    out_of_office_phrase,
    replacement_contact,
)
from app.domain.bounces import DeliveryReport, read_report
from app.domain.bulk import NOREPLY_RE, list_signal, weighed_signals
from app.domain.challenge import challenge_request, known_system
from app.domain.decline import decline_phrase
from app.domain.model import (
    Classification,
    HeaderFacts,
    Identity,
    MessageBody,
    MessageKind,
    Subkind,
)
from app.domain.replytext import ReplyText, has_own_words, split_reply
from app.domain.returndate import find_return_date
from app.domain.worktime import short_date

MAX_UNQUOTED_AUTO_CHARS = 2_000  # body phrases decide only for a short text quoting nothing


def classify(
    facts: HeaderFacts, identity: Identity, body: MessageBody | None = None
) -> Classification:
    """Decide a message's kind from its header facts, the rep's identity and, if read, its body."""
    sender = facts.from_.normalized if facts.from_ else ""

    if identity.is_own_address(sender):
        external = [a for a in _participants(facts, sender) if not identity.is_internal(a)]
        if not external:
            return _INTERNAL_OWN
        return _verdict(MessageKind.OUTBOUND, f"outbound: From {sender} is one of your addresses")

    report = read_report(facts, body, sender)
    if report is not None:
        return _reported(report, body)

    if body is not None and body.calendar_method == "REPLY":
        answer = f", PARTSTAT={body.calendar_partstat}" if body.calendar_partstat else ""
        return Classification(
            kind=MessageKind.REPLY,
            reason=f"reply: calendar answer from {sender or 'unknown'} (METHOD:REPLY{answer})",
            subkind=Subkind.CALENDAR_REPLY,
        )

    reply = split_reply(body.text) if body is not None and body.text else None
    automatic = _auto_reply(facts, reply, sender)
    if automatic is not None:
        return automatic

    relayed = False
    bulk = list_signal(facts, sender)
    if bulk is not None:
        if not _relayed_by_list(facts, sender):
            return _verdict(MessageKind.BULK, f"bulk: {bulk}")
        relayed = True
    else:
        weighed = weighed_signals(facts, sender, _own_text(body, reply))
        if weighed is not None:
            return _verdict(MessageKind.BULK, f"bulk: {weighed}")

    if identity.is_internal(sender) and all(
        identity.is_internal(a) for a in _participants(facts, sender)
    ):
        return _INTERNAL_ALL
    return _human(sender, reply, relayed=relayed)


@lru_cache(maxsize=4096)
def _verdict(kind: MessageKind, reason: str, subkind: Subkind | None = None) -> Classification:
    """A verdict with nothing but a kind and a reason; the same few recur on every sync (the
    rep's own mail, each newsletter, each correspondent), and values are immutable."""
    return Classification(kind=kind, reason=reason, subkind=subkind)


_INTERNAL_OWN = Classification(
    kind=MessageKind.INTERNAL, reason="internal: sent by you to your own organisation only"
)
_INTERNAL_ALL = Classification(
    kind=MessageKind.INTERNAL, reason="internal: every participant is in your organisation"
)


def _participants(facts: HeaderFacts, sender: str) -> list[str]:
    return [a.normalized for a in facts.recipients] + ([sender] if sender else [])


def _reported(report: DeliveryReport, body: MessageBody | None) -> Classification:
    returned = body.returned_message_ids if body is not None else ()
    if report.subkind is None or report.subkind is Subkind.DELAY_NOTICE:
        # A delay notice is a soft bounce (hard=False); the rules let it leave the thread as
        # it is, and a later final failure of the same message bounces it.
        return Classification(
            kind=MessageKind.BOUNCE,
            reason=f"bounce: {report.reason}",
            subkind=report.subkind,
            bounce_recipient=report.recipient,
            bounce_hard=report.hard,
            returned_message_ids=returned,
        )
    return Classification(
        kind=MessageKind.AUTO_REPLY,
        reason=f"auto_reply: {report.reason}",
        subkind=report.subkind,
        returned_message_ids=returned,
    )


def _auto_reply(facts: HeaderFacts, reply: ReplyText | None, sender: str) -> Classification | None:
    own = reply.own if reply is not None else ""
    system = known_system(facts, sender)
    if system is not None:
        return _challenge(f"sent by {system}")
    decided_by = auto_reply_header(facts) or auto_reply_subject(facts)
    if decided_by is None and reply is not None:
        if len(own) > MAX_UNQUOTED_AUTO_CHARS:
            return None
        # Challenges come as "RE: <subject>", some quoting the rep's e-mail: read even then.
        challenge = challenge_request(own)
        if challenge is not None:
            return _challenge(f"{challenge}, no automatic header")
        if reply.quoted or not may_have_phrase(own):
            return None
        phrase = (
            left_company_phrase(own)
            or out_of_office_phrase(own)
            or autoresponder_phrase(own)
            or challenge_phrase(own)
        )
        if phrase is None:
            return None
        decided_by = f"the text {phrase!r}"
    if decided_by is None:
        return None
    if decided_by.startswith("Auto-Submitted: auto-generated") and list_signal(facts, sender):
        return Classification(kind=MessageKind.BULK, reason=f"bulk: {decided_by} with list headers")
    return _automatic(facts, own, sender, decided_by)


def _automatic(facts: HeaderFacts, own: str, sender: str, decided_by: str) -> Classification:
    left = left_company_phrase(own)
    if left is not None:
        contact = replacement_contact(own, sender=sender)
        named = f"; names {contact} instead" if contact else ""
        return Classification(
            kind=MessageKind.AUTO_REPLY,
            reason=f"auto_reply: {decided_by}; left the company ({left!r}){named}",
            subkind=Subkind.LEFT_COMPANY,
            replacement_contact=contact,
        )
    challenge = challenge_request(own)
    if challenge is not None:
        return _challenge(f"{challenge}; {decided_by}")
    phrase = challenge_phrase(own)
    if phrase is not None:
        return _challenge(f"{phrase!r}; {decided_by}")
    returning = find_return_date([facts.subject, own], facts.date)
    away = returning is not None or is_out_of_office(facts.subject, own)
    back = ""
    if returning is not None:
        back = f"; back {short_date(returning.day)} {returning.day.year} ({returning.phrase!r})"
    return Classification(
        kind=MessageKind.AUTO_REPLY,
        reason=f"auto_reply: {decided_by}{back}",
        subkind=Subkind.OUT_OF_OFFICE if away else None,
        return_date=returning.day if returning is not None else None,
    )


def _challenge(why: str) -> Classification:
    """A challenge-response request: no person read the e-mail; the reason names the system."""
    return Classification(
        kind=MessageKind.AUTO_REPLY,
        reason=f"auto_reply: challenge-response, {why}",
        subkind=Subkind.CHALLENGE,
    )


def _own_text(body: MessageBody | None, reply: ReplyText | None) -> str | None:
    """The text the sender wrote: all of it when it quotes nothing (a newsletter's footer
    included), else only the part above the quote."""
    if body is None or reply is None:
        return None
    return reply.own if reply.quoted else body.text


def _relayed_by_list(facts: HeaderFacts, sender: str) -> bool:
    """A person's answer passed on by a mailing list or group (sales@ on Google Groups):
    it answers a message, and nothing says a mass mailer or a robot wrote it."""
    s = facts.signals
    if not (facts.in_reply_to or facts.references):
        return False
    if "feedback-id" in s or s.get("precedence", "").strip().lower() in {"bulk", "junk"}:
        return False
    return not NOREPLY_RE.match(sender.partition("@")[0])


def _human(sender: str, reply: ReplyText | None, *, relayed: bool) -> Classification:
    who = sender or "unknown"
    if reply is not None and reply.quoted and not has_own_words(reply.own):
        return Classification(
            kind=MessageKind.BULK,
            reason=f"bulk: empty reply: {who} only quoted earlier mail "
            f"({reply.cut_by[:60]!r}), no text of their own",
            subkind=Subkind.EMPTY_REPLY,
        )
    subkind = Subkind.LIST_RELAYED if relayed else None
    via = " relayed by a mailing list" if relayed else ""
    declined = decline_phrase(reply.own) if reply is not None else None
    if declined is not None:
        return Classification(
            kind=MessageKind.REPLY,
            reason=f"reply: decline from external participant {who}{via}: {declined!r}",
            subkind=subkind,
            decline=True,
        )
    return _verdict(MessageKind.REPLY, f"reply: from external participant {who}{via}", subkind)
