"""Delivery reports: failures (bounces), delays, successes, abuse reports and read receipts.

Only about half of real bounces are RFC 3464 delivery-status reports, so the sender
(mailer-daemon, postmaster), X-Failed-Recipients, the subject and the texts MTAs write decide
too. A delay notice ("Action: delayed", "still being retried") is a soft bounce (kind bounce,
hard false) that leaves the thread as it is: the message may still arrive. A report whose every
recipient was delivered, relayed or expanded is a receipt, neither a bounce nor an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.domain.autoreply import challenge_phrase
from app.domain.challenge import challenge_request, known_system
from app.domain.headers import EMAIL_RE
from app.domain.model import HeaderFacts, MessageBody, RecipientStatus, Subkind, cheap_init

# Local parts of the addresses MTAs send reports from (a set: this runs for every message).
_DAEMONS = frozenset(
    f"{a}{sep}{b}"
    for a, b in (("mailer", "daemon"), ("mail", "daemon"), ("post", "master"), ("mail", "delivery"))
    for sep in ("", "-", "_")
) | {"postoffice", "mdaemon", "bounce", "bounces", "mail-delivery-system", "maildeliverysystem"}
_LIST_ROBOT_SUFFIXES = ("-admin", "-owner", "-request", "-bounces", "-bounce", "_admin", "_owner")


def _is_daemon(local_part: str) -> bool:
    return local_part in _DAEMONS or local_part.startswith("microsoftexchange")


def _is_list_robot(local_part: str) -> bool:
    return local_part.endswith(_LIST_ROBOT_SUFFIXES) or local_part.startswith("owner-")


_BOUNCE_SUBJECT_RE = re.compile(
    r"^\s*(?:\w+:\s*)?(?:undeliver(?:able|ed)|delivery status notification \(failure\)|"
    r"mail delivery (?:failed|failure|system)|returned mail|failure notice|delivery failure|"
    r"non[- ]?delivery|delivery (?:has )?failed|undelivered mail|mail system error|"
    r"message (?:could not be|not) delivered|nondeliverable|rejected|permanent (?:delivery )?"
    r"(?:error|failure)|unzustellbar|nicht zustellbar|non remis|no se puede entregar|"
    r"notificación de estado de entrega|benachrichtung zum übermittlungsstatus|"
    r"mail could not be delivered|delivery notification|warning: message|"
    r"automatically rejected mail|email (?:address )?(?:not found|error))",
    re.IGNORECASE,
)
_DELAY_SUBJECT_RE = re.compile(
    r"delivery status notification \(delay\)|delayed mail|delivery delayed|"
    r"warning: (?:message .{0,80} delayed|could not send message for past)|"
    r"mail delivery warning|still being retried|delivery (?:is )?delayed|"
    r"zustellung verzögert|remise retardée",
    re.IGNORECASE,
)
_SUCCESS_SUBJECT_RE = re.compile(
    r"delivery status notification \(success\)|successful mail delivery|^\s*delivered:\s|"
    r"^\s*relayed:\s|zugestellt:\s",
    re.IGNORECASE,
)
# Texts MTAs write in non-standard bounces (qmail, Exim, Exchange, Gmail, Domino, Postfix …).
_FAILURE_TEXT_RE = re.compile(
    r"could not be delivered|couldn't be delivered|wasn't delivered|was not delivered|"
    r"delivery (?:to the following (?:recipient|recipients|destination)s? )?(?:has )?failed|"
    r"failed permanently|permanent(?:ly)? (?:error|failure|fatal)|undeliverable|"
    r"unable to deliver|i'm afraid i wasn't able to deliver|not able to deliver|"
    r"this is the mail system at host|this message was created automatically by mail delivery|"
    r"i'm sorry to have to inform you|sorry, no mailbox here|no such (?:user|mailbox|address)|"
    r"user unknown|unknown user|mailbox (?:unavailable|not found|full|is full)|"
    r"recipient address rejected|address rejected|over quota|quota exceeded|"
    r"message (?:was )?rejected|returned to sender|delivery status notification|"
    r"hi\. this is the qmail-send program|the following addresses had permanent fatal errors|"
    r"your message did not reach some or all of the intended recipients|"
    r"the original message was received at|a message that you sent could not be delivered|"
    r"there was an error delivering|not a valid user|invalid (?:user|recipient)|"
    r"recipient unknown|unknown recipient|no mailbox here|not a member of this|"
    r"duplicated message-id|"
    r"no pudo ser entregado|nicht zugestellt werden|n'a pas pu être (?:remis|distribué)",
    re.IGNORECASE,
)
_DELAY_TEXT_RE = re.compile(
    r"this is a warning only|has not yet been delivered|will (?:continue|keep) (?:trying|to try)|"
    r"delivery (?:attempts )?will continue|will retry for|still being retried|"
    r"there was a temporary problem delivering|delivery incomplete|"
    r"could not be delivered for the past|not been able to deliver .{0,40} for|"
    r"still trying to deliver|will be retried|is delayed|has been delayed",
    re.IGNORECASE,
)
_SOFT_TEXT_RE = re.compile(
    r"mailbox (?:is )?full|over quota|quota exceeded|insufficient (?:system )?storage|"
    r"temporar(?:y|ily)|try again later|\b4\.\d{1,3}\.\d{1,3}\b|\b4[25]\d[ -]",
    re.IGNORECASE,
)
_HARD_TEXT_RE = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|address|recipient)|does not exist|"
    r"doesn't exist|invalid (?:recipient|address|mailbox)|address rejected|not found|"
    r"mailbox unavailable|account (?:has been )?disabled|deactivated|\b5\.\d{1,3}\.\d{1,3}\b|"
    r"\b55\d[ -]",
    re.IGNORECASE,
)
_FEEDBACK_SUBJECT_RE = re.compile(
    r"^\s*(?:complaint about message from|abuse report|feedback loop report|spam complaint)",
    re.IGNORECASE,
)
# Amazon SES notifications sent over SNS e-mail: JSON, no MIME report.
_SES_RE = re.compile(
    r'\\?"notificationType\\?"\s*:\s*\\?"(?P<type>Bounce|Complaint|Delivery)\\?"'
    r'(?:.{0,400}?\\?"bounceType\\?"\s*:\s*\\?"(?P<bounce>\w+)\\?")?'
    r'(?:.{0,400}?\\?"emailAddress\\?"\s*:\s*\\?"(?P<address>[^"\\]+)\\?")?',
    re.DOTALL,
)
_STATUS_RE = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")


@cheap_init
@dataclass(frozen=True, kw_only=True)
class DeliveryReport:
    """What a delivery report says; subkind None is a failure (a bounce)."""

    reason: str
    subkind: Subkind | None = None
    recipient: str | None = None
    hard: bool | None = None


def read_report(facts: HeaderFacts, body: MessageBody | None, sender: str) -> DeliveryReport | None:
    """Read a delivery report, abuse report or read receipt; None for any other message."""
    report_type = _report_type(facts, body)
    if report_type == "feedback-report":
        return DeliveryReport(
            reason="multipart/report; report-type=feedback-report (ARF abuse report)",
            subkind=Subkind.FEEDBACK_REPORT,
        )
    if report_type == "disposition-notification":
        disposition = body.disposition if body and body.disposition else "read receipt"
        return DeliveryReport(
            reason=f"multipart/report; report-type=disposition-notification ({disposition[:60]})",
            subkind=Subkind.READ_RECEIPT,
        )
    if _FEEDBACK_SUBJECT_RE.match(facts.subject):
        return DeliveryReport(
            reason=f"abuse report: subject {facts.subject[:60]!r}", subkind=Subkind.FEEDBACK_REPORT
        )
    text = body.text if body else ""
    if text:
        if report_type or _is_daemon(sender.partition("@")[0]):
            challenge = challenge_request(text)
            phrase = challenge_phrase(text)
            if challenge is not None or phrase is not None:
                why = challenge or f"{phrase!r}"
                system = known_system(facts, sender)
                by = f" sent by {system}" if system and not challenge else ""
                return DeliveryReport(
                    reason=f"challenge-response{by} disguised as a report ({why})",
                    subkind=Subkind.CHALLENGE,
                )
        start = text[:4000]
        ses = _SES_RE.search(start) if "notificationType" in start else None
        if ses is not None:
            return _from_ses(ses)
    statuses = body.delivery_status if body else ()
    if statuses:
        return _from_statuses(statuses, facts, body)
    return _from_signals(facts, body, sender, dsn=report_type == "delivery-status")


def _from_ses(found: re.Match[str]) -> DeliveryReport:
    kind, address = found["type"], found["address"]
    if kind == "Complaint":
        return DeliveryReport(
            reason="Amazon SES complaint notification", subkind=Subkind.FEEDBACK_REPORT
        )
    if kind == "Delivery":
        return DeliveryReport(
            reason="Amazon SES delivery notification", subkind=Subkind.DELIVERY_RECEIPT
        )
    return DeliveryReport(
        reason=f"Amazon SES bounce notification (bounceType {found['bounce'] or '?'})",
        recipient=address.lower() if address else None,
        hard=None if found["bounce"] is None else found["bounce"] == "Permanent",
    )


def _report_type(facts: HeaderFacts, body: MessageBody | None) -> str:
    if body is not None and body.report_type:
        return body.report_type
    if body is not None and body.feedback_report:
        return "feedback-report"
    content_type = facts.signals.get("content-type", "").lower()
    if "multipart/report" not in content_type:
        return ""
    for report_type in ("delivery-status", "disposition-notification", "feedback-report"):
        if report_type in content_type:
            return report_type
    return ""


def _outcome(status: RecipientStatus) -> str:
    """One recipient's fate: "failed", "delayed", "delivered" or "" when the block says
    neither. The Action decides; without one, the Status class does (5 fails, 4 waits, 2 ok)."""
    action = status.action
    if action.startswith("fail"):
        return "failed"
    if action.startswith("delay"):
        return "delayed"
    if action in _DELIVERED_ACTIONS:
        return "delivered"
    return {"5": "failed", "4": "delayed", "2": "delivered"}.get(status.status[:1], "")


_DELIVERED_ACTIONS = frozenset({"delivered", "relayed", "expanded"})


def _from_statuses(
    statuses: tuple[RecipientStatus, ...], facts: HeaderFacts, body: MessageBody | None
) -> DeliveryReport:
    """Decided by every recipient's Action and Status: one failure is a bounce, else one
    delay is a delay notice, and a report whose every recipient got the mail is a receipt."""
    outcomes = [(_outcome(s), s) for s in statuses]
    failed = [s for o, s in outcomes if o == "failed"]
    delayed = [s for o, s in outcomes if o == "delayed"]
    if failed:
        first = failed[0]
        return DeliveryReport(
            reason=f"delivery-status report: Action {first.action or 'missing'}, Status "
            f"{first.status or '?'} for {first.recipient or 'unknown recipient'}",
            recipient=first.recipient or None,
            hard=_hardness(first.status, f"{first.diagnostic} {body.text if body else ''}"),
        )
    if delayed:
        first = delayed[0]
        return DeliveryReport(
            reason=f"delayed, still being retried (delivery-status Action "
            f"{first.action or 'missing'}, Status {first.status or '?'} for "
            f"{first.recipient or 'unknown recipient'})",
            subkind=Subkind.DELAY_NOTICE,
            recipient=first.recipient or None,
            hard=False,
        )
    if all(o == "delivered" for o, _ in outcomes):
        actions = sorted({s.action or f"Status {s.status}" for s in statuses})
        return DeliveryReport(
            reason=f"delivery-status report: {', '.join(actions)} for every recipient "
            "(a receipt, not a failure)",
            subkind=Subkind.DELIVERY_RECEIPT,
            recipient=statuses[0].recipient or None,
        )
    first = statuses[0]
    return DeliveryReport(
        reason=f"delivery-status report: Status {first.status or '?'} for "
        f"{first.recipient or 'unknown recipient'}",
        recipient=first.recipient or None,
        hard=_hardness(first.status, first.diagnostic),
    )


def _from_signals(
    facts: HeaderFacts, body: MessageBody | None, sender: str, *, dsn: bool
) -> DeliveryReport | None:
    s = facts.signals
    text = body.text if body else ""
    local_part = sender.partition("@")[0]
    return_path_empty = s.get("return-path", "").strip() in {"<>", ""} and "return-path" in s
    failed_recipients = s.get("x-failed-recipients", "").strip()

    evidence: str | None = None
    if dsn:
        evidence = "Content-Type multipart/report; report-type=delivery-status"
    elif failed_recipients:
        evidence = f"X-Failed-Recipients: {failed_recipients[:80]}"
    elif _is_daemon(local_part):
        evidence = f"sender {sender}"
    elif (
        (return_path_empty or text or "auto-submitted" in s)  # cheap first: same verdict
        and _BOUNCE_SUBJECT_RE.match(facts.subject)
        and (return_path_empty or _FAILURE_TEXT_RE.search(text) or "auto-submitted" in s)
    ):
        evidence = f"subject {facts.subject[:60]!r}"
        if return_path_empty:
            evidence += " with an empty Return-Path"
    elif (return_path_empty or not sender or _is_list_robot(local_part)) and (
        _FAILURE_TEXT_RE.search(text[:3000])
    ):
        missing = "empty Return-Path" if return_path_empty else f"sender {sender or 'missing'}"
        evidence = f"{missing} and the text {_phrase(_FAILURE_TEXT_RE, text)!r}"
    if evidence is None:
        return None

    if _DELAY_SUBJECT_RE.search(facts.subject) or (
        _DELAY_TEXT_RE.search(text) and not _FAILURE_TEXT_RE.search(_before_delay(text))
    ):
        phrase = _phrase(_DELAY_SUBJECT_RE, facts.subject) or _phrase(_DELAY_TEXT_RE, text)
        return DeliveryReport(
            reason=f"delayed, still being retried ({evidence}, {phrase!r})",
            subkind=Subkind.DELAY_NOTICE,
            recipient=_recipient(failed_recipients, text, body, sender),
            hard=False,
        )
    if _SUCCESS_SUBJECT_RE.search(facts.subject):
        return DeliveryReport(
            reason=f"delivery receipt: subject {facts.subject[:60]!r}",
            subkind=Subkind.DELIVERY_RECEIPT,
        )
    if _delivered_in_text(text):
        return DeliveryReport(
            reason=f"delivery receipt: {evidence}, every Action in its text is delivered, "
            "relayed or expanded",
            subkind=Subkind.DELIVERY_RECEIPT,
        )
    status = _STATUS_RE.search(text)
    return DeliveryReport(
        reason=evidence,
        recipient=_recipient(failed_recipients, text, body, sender),
        hard=_hardness(status.group(0) if status else "", text),
    )


def _delivered_in_text(text: str) -> bool:
    """A report whose status part was not parsed (cut, or not MIME) but whose text lists
    per-recipient Actions, every one of them a success."""
    actions = _ACTION_RE.findall(text[:8000])
    return bool(actions) and all(a.lower() in _DELIVERED_ACTIONS for a in actions)


_ACTION_RE = re.compile(r"^\s*Action:\s*(\w+)", re.IGNORECASE | re.MULTILINE)


def _hardness(status: str, text: str) -> bool | None:
    """True for a permanent failure (5.x.x, "user unknown"), False for a transient one."""
    if status.startswith("5"):
        return True
    if status.startswith("4"):
        return False
    if _SOFT_TEXT_RE.search(text[:2000]):
        return False
    if _HARD_TEXT_RE.search(text[:2000]):
        return True
    return None


def _recipient(
    failed_recipients: str, text: str, body: MessageBody | None, sender: str
) -> str | None:
    found = EMAIL_RE.search(failed_recipients)
    if found:
        return found.group(0).lower()
    for match in EMAIL_RE.finditer(text[:3000]):
        address = match.group(0).lower().rstrip(".")
        if address != sender and not _is_daemon(address.partition("@")[0]):
            return address
    if body is not None and body.returned_recipients:
        return body.returned_recipients[0]
    return None


def _before_delay(text: str) -> str:
    found = _DELAY_TEXT_RE.search(text)
    return text[: found.start()] if found else text


def _phrase(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.search(text)
    return " ".join(found.group(0).split())[:80] if found else ""
