"""Bulk mail: lists, newsletters, marketing and notifications, with or without list headers.

List headers (List-Id, List-Unsubscribe, Precedence bulk/list/junk, X-Mailing-List), an ESP's
Feedback-ID and a no-reply sender decide alone. Old-style newsletters, surveys and card-issuer
news carry none of them; their signals are weaker and are weighed instead: a newsletter-like
sender, a Return-Path on a bounce or ESP domain other than the sender's, ESP headers, the
X-Mailer of a mass mailer, an unsubscribe link or a mass-mail footer in the text. No single weak
signal decides (a person may write from news@ or paste a link with "unsubscribe" in it); two
do. A Return-Path that encodes the recipient's own address (VERP) or a mass mailer's X-Mailer
is made by list software only, and counts twice; so does a newsletter-like sender that answers
no e-mail (no threading headers, no "Re:"), while one that answers is a person. Text is read
only where it is the sender's own words: a person's reply that quotes a newsletter stays a
reply, and a threaded answer is never bulk by its text alone.
"""

from __future__ import annotations

import re
from functools import lru_cache

from app.domain.caseless import CaselessPattern
from app.domain.model import HeaderFacts

NOREPLY_RE = re.compile(r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|notifications?)(?:[-+_.].*)?$")
WEIGHT_TO_DECIDE = 2

_LIST_HEADERS = (
    ("list-id", "List-Id"),
    ("list-unsubscribe", "List-Unsubscribe"),
    ("feedback-id", "Feedback-ID"),
    ("x-mailing-list", "X-Mailing-List"),
)
# Local parts of senders that write to many: newsletter@, news@, e-news@, mailer@, …
# (not marketing@ or sales@: people write from those, also first, as leads).
_MASS_SENDER_RE = re.compile(
    r"^(?:e-?)?news(?:letters?)?(?:[-_.+].*)?$|^(?:mailer|mailings?|announce(?:ments?)?|"
    r"promos?|promotions?|offers|deals|campaigns?|digest|e-?mailing)(?:[-_.+].*)?$"
)
_REPLY_SUBJECT_RE = re.compile(
    r"^\s*(?:re|aw|sv|vs|antw|rif|wg|fw|fwd|tr)\s*(?:\[\d+\])?\s*:", re.IGNORECASE
)
# Header names only e-mail service providers set (headers.FETCH_HEADER_FIELDS asks for them).
_CAMPAIGN_HEADERS = frozenset({"x-campaign", "x-campaignid", "x-campaign-id", "x-mailer-campaign"})
_ESP_HEADERS = frozenset(
    {
        "x-mailgun-sid",
        "x-mailgun-tag",
        "x-mailgun-variables",
        "x-ses-outgoing",
        "x-ses-configuration-set",
        "x-sg-eid",
        "x-sg-id",
        "x-mc-user",
        "x-mandrill-user",
        "x-csa-complaints",
        "x-mailjet-campaign",
    }
)
_MASS_MAILER_RE = re.compile(
    r"mailchimp|sendblaster|mass ?mail|bulk ?mail|groupmail|phplist|\bsendy\b|mailpoet|"
    r"mailerlite|gfimailer|campaign ?monitor|constant ?contact|exacttarget|marketo|eloqua|"
    r"silverpop|emarsys|klaviyo|sendinblue|mailjet|listmonk|interspire|oempro|acymailing|"
    r"newsletter|mailwizz|atomic mail|icontact|getresponse|aweber|activecampaign|moosend|"
    r"omnisend|cheetahmail|e-?dialog|responsys|strongmail|lyris|listserv|majordomo"
)
# Domains e-mail service providers bounce through (the Return-Path of their customers' mail).
_ESP_DOMAINS = (
    "mcsv.net",
    "mcdlv.net",
    "rsgsv.net",
    "mandrillapp.com",
    "sendgrid.net",
    "amazonses.com",
    "mailgun.org",
    "mailgun.net",
    "sparkpostmail.com",
    "sendinblue.com",
    "brevo.com",
    "createsend.com",
    "cmail19.com",
    "cmail20.com",
    "exacttarget.com",
    "hubspotemail.net",
    "mktomail.com",
    "constantcontact.com",
    "klaviyomail.com",
    "mailjet.com",
    "emarsys.net",
    "responsys.net",
)
_WEIGHED_HEADERS = _CAMPAIGN_HEADERS | _ESP_HEADERS | {"return-path", "x-mailer"}
_BOUNCE_LOCAL_RE = re.compile(r"(?:^|[-_.+])(?:bounces?|bnc|return|rp|mailer-bounces?)(?:[-_.+]|$)")
_UNSUBSCRIBE_RE = CaselessPattern(
    r"\bunsubscribe\b(?!\s+(?:me|us)\b)|\bopt[- ]out\b|\babmelden\b|\babbestellen\b|"
    r"\bse désinscrire\b|\bse desinscrire\b|\bdésabonner\b|\bdarse de baja\b|"
    r"\bcancelar (?:la )?suscripción\b"
)
_FOOTER_RE = CaselessPattern(
    r"\bview (?:this|it|the) (?:e-?mail |message |newsletter )?(?:online|in (?:your|a) "
    r"(?:web )?browser)|\byou (?:are|were) receiving this\b|\byou (?:have )?received this "
    r"(?:e-?mail|message|newsletter)\b|\b(?:manage|update) (?:your )?(?:e-?mail |mailing |"
    r"subscription |communication )?preferences\b|\bto stop receiving\b|"
    r"\bif you (?:no longer|do not|don't) wish to receive\b|\bthis (?:e-?mail|message) was "
    r"sent to\b|\bsubscribed to (?:our|this) (?:newsletter|list|mailing)"
)
TEXT_CHARS = 16_384  # a footer sits at the end of what the sync reads


def list_signal(facts: HeaderFacts, sender: str) -> str | None:
    """A signal that decides alone: list headers, an ESP's Feedback-ID, a no-reply sender."""
    s = facts.signals
    precedence = s.get("precedence", "").strip().lower()
    if precedence in {"bulk", "list", "junk"}:
        return f"Precedence: {precedence}"
    for name, label in _LIST_HEADERS:
        if name in s:
            return f"{label} header"
    if NOREPLY_RE.match(sender.partition("@")[0]):
        return f"no-reply sender {sender}"
    return None


def weighed_signals(facts: HeaderFacts, sender: str, own_text: str | None) -> str | None:
    """The weak signals of a mass mailing when together they weigh enough, else None.
    `own_text` is the sender's own words (None when the body was not read, or is a reply
    quoting earlier mail: then only its own part is passed)."""
    local, _, domain = sender.partition("@")
    mass_sender = _mass_sender(local)
    s = facts.signals
    if not (mass_sender or own_text) and s.keys().isdisjoint(_WEIGHED_HEADERS):
        return None  # most mail: nothing to weigh
    threaded = bool(facts.in_reply_to or facts.references)
    found = _header_signals(facts, local, domain, mass_sender, threaded)
    weight = sum(w for w, _ in found)
    if weight >= WEIGHT_TO_DECIDE:
        return ", ".join(why for _, why in found)
    if own_text and (found or not threaded):
        found += _text_signals(own_text[-TEXT_CHARS:])
        if sum(w for w, _ in found) >= WEIGHT_TO_DECIDE:
            return ", ".join(why for _, why in found)
    return None


def worth_reading(facts: HeaderFacts, sender: str) -> bool:
    """A message its header alone does not make bulk but marks with a weak signal: its text
    (an unsubscribe footer) may decide, so the sync reads its body even when it answers
    nothing."""
    local, _, domain = sender.partition("@")
    mass_sender = _mass_sender(local)
    if not mass_sender and facts.signals.keys().isdisjoint(_WEIGHED_HEADERS):
        return False
    threaded = bool(facts.in_reply_to or facts.references)
    return bool(_header_signals(facts, local, domain, mass_sender, threaded))


def _header_signals(
    facts: HeaderFacts, local: str, domain: str, mass_sender: bool, threaded: bool
) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    if mass_sender:
        found.append((1, f"sender {local}@"))
        if not threaded and not _REPLY_SUBJECT_RE.match(facts.subject):
            # A newsletter writes first and answers nothing; a person at news@ answers.
            found.append((1, "answers no e-mail"))
    s = facts.signals
    return_path = s.get("return-path")
    if return_path:
        found.extend(_return_path_signal(return_path, domain, facts))
    names = s.keys()
    if not names.isdisjoint(_CAMPAIGN_HEADERS):
        found.append((1, f"{min(_CAMPAIGN_HEADERS.intersection(names))} header"))
    if not names.isdisjoint(_ESP_HEADERS):
        found.append((1, f"ESP header {min(_ESP_HEADERS.intersection(names))}"))
    mailer = s.get("x-mailer")
    if mailer and _mass_mailer(mailer):
        found.append((2, f"X-Mailer of a mass mailer ({mailer.strip()[:40]!r})"))
    return found


@lru_cache(maxsize=4096)
def _mass_sender(local: str) -> bool:
    return _MASS_SENDER_RE.match(local) is not None


@lru_cache(maxsize=1024)  # few distinct mailers; every message of every sync asks
def _mass_mailer(mailer: str) -> bool:
    return _MASS_MAILER_RE.search(mailer.lower()) is not None


def _return_path_signal(value: str, from_domain: str, facts: HeaderFacts) -> list[tuple[int, str]]:
    address = value.strip().strip("<>").strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return []
    if "=" in local:
        for recipient in facts.recipients:
            rl, _, rd = recipient.normalized.partition("@")
            if rl and rd and f"{rl}={rd}" in local:
                return [(2, f"Return-Path {address[:60]} encodes the recipient (VERP)")]
    related = (
        domain == from_domain
        or domain.endswith(f".{from_domain}")
        or (from_domain.endswith(f".{domain}"))
    )
    if related:
        return []
    if domain.endswith(_ESP_DOMAINS) or _BOUNCE_LOCAL_RE.search(local):
        return [(1, f"Return-Path on bounce domain {domain} (From is {from_domain or '?'})")]
    return []


def _text_signals(text: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    unsubscribe = _UNSUBSCRIBE_RE.phrase(text)
    if unsubscribe:
        found.append((1, f"{' '.join(unsubscribe.split())!r} link in the text"))
    footer = _FOOTER_RE.phrase(text)
    if footer:
        found.append((1, f"mass-mail footer {' '.join(footer.split())[:60]!r}"))
    return found
