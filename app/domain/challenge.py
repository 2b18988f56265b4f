"""Challenge-response requests: "your message is held; click to be added to my allowed list".

They answer the rep's e-mail, often as "RE: <subject>" and without any automatic header, but
no person has read it: the thread is not answered. Known systems (Boxbe, Spam Arrest,
Bluebottle, MailWasher, Mailinblack, ChoiceMail, Sendio) give themselves away by their
sender, Return-Path, Reply-To or X-Mailer, or by naming themselves in a short text; an unknown
one by its text: a held message or an allowed list, and one verification link as the text's
only call to action.
"""

from __future__ import annotations

import re
from functools import lru_cache

from app.domain.caseless import CaselessPattern
from app.domain.model import HeaderFacts

# Name, the domains it sends from, how its name is written in its texts and X-Mailer.
_SYSTEMS = (
    ("Boxbe", ("boxbe.com",), "boxbe"),
    ("Spam Arrest", ("spamarrest.com",), "spam ?arrest"),
    ("Bluebottle", ("bluebottle.com",), "bluebottle"),
    ("MailWasher", ("mailwasher.net", "firetrust.com"), "mailwasher"),
    ("Mailinblack", ("mailinblack.com",), "mailinblack"),
    ("ChoiceMail", ("digiportal.com",), "choicemail"),
    ("Sendio", ("sendio.com",), "sendio"),
)
_DOMAINS = {d: name for name, domains, _ in _SYSTEMS for d in domains}
_NAMED_RE = re.compile("|".join(f"(?P<s{i}>{p})" for i, (_, _, p) in enumerate(_SYSTEMS)))
MAX_TEXT_CHARS = 3_000  # a challenge is short
_EMAIL_RE = re.compile(r"[^\s<>\"]+@[^\s<>\"]+")
_ROBOT_RE = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|notif(?:y|ications?)|verif(?:y|ication)|"
    r"confirm(?:ations?)?|challenge|guest(?:list)?|wait(?:list|ing)|system|mailer|auto|robot|"
    r"bounces?|admin|support)(?:[-_.+].*)?$"
)

_HELD_RE = CaselessPattern(
    r"\b(?:allow(?:ed)?[- ]?list|white[- ]?list|safe[- ]?list|approved senders?|"
    r"accepted senders?|trusted senders?|list of (?:approved|allowed|trusted) senders)\b"
    r"|\b(?:your|the|this) (?:e-?mail|message) (?:is|has been|was|will be) (?:held|"
    r"quarantined|put on hold|kept|waitlisted|pending)"
    r"|\bverify (?:that )?you(?:'re| are) (?:a )?(?:human|real person|not a (?:robot|spammer))"
    r"|\bprove (?:that )?you(?:'re| are) (?:a )?(?:human|real|not)"
    r"|\bverify (?:your|this) (?:e-?mail|message|address) (?:so|before|to be delivered)"
)
_ACTION_RE = CaselessPattern(
    r"\b(?:click|visit|follow|open|go to|tap)\b.{0,60}?(?:link|here|below|page|url|button)"
    r"|\b(?:link|url) below\b"
)
_URL_RE = re.compile(r"\bhttps?://[^\s<>\"')\]]+", re.IGNORECASE)


def known_system(facts: HeaderFacts, sender: str) -> str | None:
    """The challenge-response system that sent the message, by the X-Mailer or by a robot's
    address (noreply@, verify@, notify@ …) at its domain in From, Return-Path or Reply-To;
    None otherwise. A person who works at such a company is not a robot: their mail needs
    the wording (`challenge_request`). Runs for every message: cached look-ups first."""
    name = _system_of(sender)
    if name:
        return name
    s = facts.signals
    for header in ("return-path", "reply-to"):
        address = s.get(header)
        if address and "@" in address:
            found = _EMAIL_RE.search(address)
            name = _system_of(found.group(0)) if found else None
            if name:
                return name
    mailer = s.get("x-mailer")
    if mailer:
        named = _name_in(mailer.lower())
        if named:
            return f"{named} (X-Mailer)"
    return None


@lru_cache(maxsize=4096)  # the same few addresses write again and again
def _system_of(address: str) -> str | None:
    local, _, domain = address.strip().lower().rpartition("@")
    name = _DOMAINS.get(domain) or _DOMAINS.get(".".join(domain.rsplit(".", 2)[-2:]))
    if not name or not _ROBOT_RE.match(local):
        return None
    return f"{name} ({local}@{domain})"


def challenge_request(text: str) -> str | None:
    """What in a short text marks a challenge: a system named together with a held message
    or an allowed list, or an unknown system's one verification link; None otherwise."""
    text = text[:MAX_TEXT_CHARS]
    held = _HELD_RE.phrase(text)
    if held is None:
        return None
    phrase = " ".join(held.split())[:60]
    named = _name_in(text.lower())
    if named:
        return f"{named} named in the text ({phrase!r})"
    links = {u.rstrip(".,;:") for u in _URL_RE.findall(text)}
    if len(links) == 1 and _ACTION_RE.search(text):
        return f"the text {phrase!r} with one verification link as its only call to action"
    return None


def _name_in(lowered: str) -> str | None:
    found = _NAMED_RE.search(lowered)
    if found is None or found.lastgroup is None:
        return None
    return _SYSTEMS[int(found.lastgroup[1:])][0]
