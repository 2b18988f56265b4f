"""Each message's kind with the reason that decided it.

Order matters: the rep's own mail first, then machine-made mail (bounces, auto-replies,
bulk), because auto-replies and bounces thread like replies and must never end a silence.
"""

from __future__ import annotations

import re

from app.domain.model import Classification, HeaderFacts, Identity, MessageKind

_BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})
_AUTO_SUBJECT_RE = re.compile(
    r"^\s*(automatic reply|auto(?:matic)?[- ]?(?:reply|response)|out of (?:the )?office|"
    r"abwesenheitsnotiz|automatische antwort|réponse automatique|respuesta automática)\b",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT_RE = re.compile(
    r"^\s*(undeliver(?:able|ed)|delivery status notification \((?:failure|delay)\)|"
    r"mail delivery (?:failed|failure|system)|returned mail|failure notice|"
    r"delivery failure|non[- ]?delivery)",
    re.IGNORECASE,
)


def classify(facts: HeaderFacts, identity: Identity) -> Classification:
    """Decide a message's kind from its header facts and the rep's identity."""
    sender = facts.from_.normalized if facts.from_ else ""
    participants = [a.normalized for a in facts.recipients] + ([sender] if sender else [])

    if sender and identity.is_own_address(sender):
        external = [a for a in participants if not identity.is_internal(a)]
        if not external:
            return Classification(
                kind=MessageKind.INTERNAL,
                reason="internal: sent by you to your own organisation only",
            )
        return Classification(
            kind=MessageKind.OUTBOUND, reason=f"outbound: From {sender} is one of your addresses"
        )

    machine = _machine_kind(facts, sender)
    if machine is not None:
        return machine

    if participants and all(identity.is_internal(a) for a in participants):
        return Classification(
            kind=MessageKind.INTERNAL, reason="internal: every participant is in your organisation"
        )
    return Classification(
        kind=MessageKind.REPLY, reason=f"reply: from external participant {sender or 'unknown'}"
    )


def _machine_kind(facts: HeaderFacts, sender: str) -> Classification | None:
    s = facts.signals
    content_type = s.get("content-type", "").lower()
    local_part = sender.partition("@")[0]
    if "multipart/report" in content_type and "delivery-status" in content_type:
        return _bounce("Content-Type multipart/report; report-type=delivery-status")
    if "x-failed-recipients" in s:
        return _bounce(f"X-Failed-Recipients: {s['x-failed-recipients'][:80]}")
    if local_part in _BOUNCE_SENDERS:
        return _bounce(f"sender {sender}")
    if _BOUNCE_SUBJECT_RE.search(facts.subject) and s.get("return-path", "").strip() in {"<>", ""}:
        return _bounce(f"subject {facts.subject[:60]!r} with an empty Return-Path")

    auto_submitted = s.get("auto-submitted", "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return _auto(f"Auto-Submitted: {auto_submitted}")
    for name in ("x-autoreply", "x-autorespond"):
        if name in s:
            return _auto(f"{name} header")
    if s.get("precedence", "").strip().lower() == "auto_reply":
        return _auto("Precedence: auto_reply")
    # Microsoft 365 out-of-office replies carry no Auto-Submitted; X-Auto-Response-Suppress
    # alone is sent by ordinary Outlook mail too, so it never decides on its own.
    if _AUTO_SUBJECT_RE.search(facts.subject) and (
        "x-ms-exchange-inbox-rules-loop" in s or "x-auto-response-suppress" in s
    ):
        return _auto(f"subject {facts.subject[:60]!r} from an Exchange rule")

    precedence = s.get("precedence", "").strip().lower()
    if precedence in {"bulk", "list", "junk"}:
        return _bulk(f"Precedence: {precedence}")
    for name, label in (
        ("list-id", "List-Id"),
        ("list-unsubscribe", "List-Unsubscribe"),
        ("feedback-id", "Feedback-ID"),
    ):
        if name in s:
            return _bulk(f"{label} header")
    return None


def _bounce(reason: str) -> Classification:
    return Classification(kind=MessageKind.BOUNCE, reason=f"bounce: {reason}")


def _auto(reason: str) -> Classification:
    return Classification(kind=MessageKind.AUTO_REPLY, reason=f"auto_reply: {reason}")


def _bulk(reason: str) -> Classification:
    return Classification(kind=MessageKind.BULK, reason=f"bulk: {reason}")
