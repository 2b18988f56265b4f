"""Automatic replies: the headers, subjects and body phrases that give them away.

Headers decide first (RFC 3834 Auto-Submitted other than "no", X-Autoreply, Precedence
auto_reply …). Microsoft 365 out-of-office replies carry no Auto-Submitted, so a localized
"Automatic reply:" subject decides too; X-Auto-Response-Suppress is a request sent by ordinary
Outlook mail and never decides on its own. Body phrases decide only for a short text that
quotes nothing: a person who writes "I'm out until Monday, but yes" above the quoted offer
has answered.
"""

from __future__ import annotations

import re

from app.domain.caseless import CaselessPattern
from app.domain.headers import EMAIL_RE
from app.domain.model import HeaderFacts

# Subjects that automatic replies start with, in the languages mail servers localize them to.
_AUTO_SUBJECT_RE = re.compile(
    r"^\s*(?:\[automatyczna\b|\[(?:automatic reply|auto[- ]?reply|out of (?:the )?office|"
    r"abwesenheitsnotiz|automatische antwort|réponse automatique|respuesta automática)\]"
    r"|\[?(?:automatic reply|auto(?:matic)?[- ]?(?:reply|response|answer)|autoreply|"
    r"auto|out of (?:the )?office(?: auto ?reply)?|ooo|away|vacation|abwesenheitsnotiz|"
    r"automatische antwort|abwesend|abwesenheit|réponse automatique|reponse automatique|"
    r"absence du bureau|absent|respuesta automática|respuesta automatica|fuera de la oficina|"
    r"ausente|risposta automatica|fuori sede|automatisch antwoord|afwezig|autosvar|"
    r"automatisk svar|frånvaro|automatyczna odpowied[zź]|自动回复|自動回覆|自動応答)\]?\s*[:：]"
    r"|(?:automatic reply|auto[- ]?reply|out of (?:the )?office|abwesenheitsnotiz|"
    r"automatische antwort|réponse automatique|respuesta automática|fuera de la oficina|"
    r"risposta automatica|automatisch antwoord|autosvar|automatisk svar)\b)"
)  # matched against the lower-cased subject: faster than IGNORECASE on every message
_OOO_SUBJECT_RE = re.compile(
    r"out of (?:the )?office|ooo|away|vacation|abwesen|absen|fuera de la oficina|ausente|"
    r"fuori sede|afwezig|frånvaro|urlaub|congés|vacaciones"
)

# Phrases of out-of-office texts; each is specific enough to be the deciding reason.
_OOO_BODY_RE = CaselessPattern(
    r"\b(?:i am|i'm|i’m|i will be|i'll be|i’ll be|i am currently|i'm currently|currently)\s+"
    r"(?:currently\s+)?(?:out of (?:the )?office|ooo|away from (?:the|my) (?:office|desk|email)|"
    r"on (?:annual |parental |maternity |paternity |sick )?(?:leave|vacation|holiday)|"
    r"(?:travell?ing|traveling) (?:for work|on business)|on a business trip|"
    r"away (?:on business|until|till|from)|out (?:until|till|through|on)|off (?:until|till))"
    r"|\bthank you for your (?:e-?mail|message)\.?\s+i (?:am|will be) (?:out|away)"
    r"|\bout of (?:the )?office (?:until|till|through|from|and will)"
    r"|\bwith limited access to (?:e-?mail|my e-?mail)"
    r"|\bich bin (?:derzeit |zurzeit |aktuell |bis )?.{0,30}?(?:nicht im (?:büro|hause|haus)|"
    r"abwesend|im urlaub|außer haus|ausser haus|nicht erreichbar)"
    r"|\b(?:vielen )?dank für ihre (?:e-?mail|nachricht)\.?\s+ich bin"
    r"|\bje (?:suis|serai) (?:actuellement )?(?:absente?|en (?:congés?|vacances|déplacement)|"
    r"hors du bureau|en dehors du bureau)"
    r"|\b(?:estoy|estaré|estare) (?:actualmente )?(?:fuera de la oficina|de vacaciones|"
    r"ausente|fuera)"
    r"|\bsono (?:attualmente )?(?:fuori (?:sede|ufficio)|in ferie|assente)"
    r"|\bik ben (?:momenteel |tot )?.{0,20}?(?:afwezig|niet op kantoor|met vakantie)",
)
_LEFT_COMPANY_RE = CaselessPattern(
    r"\b(?:is|am|are) no longer (?:with|at|employed|working|part of)"
    r"|\bno longer (?:works?|employed) (?:at|for|with|by)"
    r"|\b(?:has|have) left (?:the company|the organi[sz]ation|the firm|\w+ (?:inc|ltd|gmbh))"
    r"|\bthis (?:e-?mail )?(?:address|mailbox|account) is no longer (?:active|monitored|in use)"
    r"|\bnicht mehr (?:im unternehmen|in unserem unternehmen|bei uns|für uns tätig|"
    r"für \w+ tätig|tätig|beschäftigt)"
    r"|\b(?:hat|habe) (?:das unternehmen|unser unternehmen|die firma) verlassen"
    r"|\bist (?:aus dem unternehmen )?ausgeschieden"
    r"|\bne fait plus partie"
    r"|\b(?:a|ai) quitté (?:la société|l['’]entreprise|le groupe|notre société)"
    r"|\bne travaille plus"
    r"|\bya no (?:trabaja|forma parte|está en|esta en|pertenece)"
    r"|\bha dejado (?:la empresa|la compañía|la compania)",
)
_AUTORESPONDER_BODY_RE = CaselessPattern(
    r"\bthis is an? (?:automated|automatic|auto-generated) (?:response|reply|message)"
    r"|\b(?:automated|automatic) (?:response|reply) to your (?:e-?mail|message)"
    r"|\bdies ist eine automatische (?:antwort|nachricht)"
    r"|\bceci est (?:une réponse|un message) automatique"
    r"|\b(?:esta es|este es) una? (?:respuesta|mensaje) automátic[oa]"
    r"|\bwe have received your (?:e-?mail|message|request|inquiry) and will",
)
_CHALLENGE_RE = CaselessPattern(
    r"\bhas been waitlisted\b|\bguest list\b|\bverify (?:that )?you are (?:a )?human\b"
    r"|\bsender verification\b|\bchallenge[- ]response\b|\bto prove you are not a spam",
)
# Any of the four phrase lists: most texts match none, and one search says so.
_ANY_PHRASE_RE = CaselessPattern(
    "|".join(
        f"(?:{p.pattern.pattern})"
        for p in (_OOO_BODY_RE, _LEFT_COMPANY_RE, _AUTORESPONDER_BODY_RE, _CHALLENGE_RE)
    )
)
# "please contact Jane Doe (jane.doe@x.com)", "wenden Sie sich bitte an …", "contactez …".
_REPLACEMENT_CUE_RE = re.compile(
    r"\b(?:please (?:contact|reach out to|e-?mail|write to|get in touch with)|contact|"
    r"reach out to|(?:direct|send|forward) (?:your|all|any) .{0,40}? to|has taken over|"
    r"will be taking over|successor|wenden sie sich (?:bitte )?an|kontaktieren sie|"
    r"ansprechpartner(?:in)?|contacter|contactez|adressez-vous à|écrivez à|contacte con|"
    r"póngase en contacto con|pongase en contacto con|escriba a|escribir a)\b",
    re.IGNORECASE,
)
_NAME_BEFORE_RE = re.compile(r"([A-ZÀ-Ý][\w'’-]+(?:\s+[A-ZÀ-Ý][\w'’-]+){1,3})\s*[(<\[:,-]*\s*$")

_AUTO_HEADERS = (
    ("x-autoreply", "X-Autoreply"),
    ("x-autorespond", "X-Autorespond"),
    ("x-autoreply-from", "X-Autoreply-From"),
    ("x-mail-autoreply", "X-Mail-Autoreply"),
)


_AUTO_HEADER_NAMES = frozenset(
    {name for name, _ in _AUTO_HEADERS}
    | {"auto-submitted", "precedence", "x-precedence", "x-apple-action", "x-autogenerated"}
)


def auto_reply_header(facts: HeaderFacts) -> str | None:
    """The header that marks the message automatic, or None; never X-Auto-Response-Suppress."""
    s = facts.signals
    if s.keys().isdisjoint(_AUTO_HEADER_NAMES):
        return None
    auto_submitted = " ".join(s.get("auto-submitted", "").split()).lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return f"Auto-Submitted: {auto_submitted[:60]}"
    for name, label in _AUTO_HEADERS:
        value = s.get(name, "").strip().lower()
        if name in s and value not in {"no", "false", "0"}:
            return f"{label}: {value[:40]}" if value else f"{label} header"
    for name, label in (("precedence", "Precedence"), ("x-precedence", "X-Precedence")):
        if s.get(name, "").strip().lower() in {"auto_reply", "auto-reply"}:
            return f"{label}: auto_reply"
    if s.get("x-apple-action", "").strip().lower() == "vacation":
        return "X-Apple-Action: vacation"
    if s.get("x-autogenerated", "").strip().lower() == "reply":
        return "X-Autogenerated: Reply"
    return None


def auto_reply_subject(facts: HeaderFacts) -> str | None:
    """An automatic-reply subject, with the Exchange headers named when they are present."""
    if not _AUTO_SUBJECT_RE.match(facts.subject.lower()):
        return None
    subject = facts.subject[:60]
    if "x-ms-exchange-inbox-rules-loop" in facts.signals:
        return f"subject {subject!r} with X-MS-Exchange-Inbox-Rules-Loop (Exchange rule)"
    return f"subject {subject!r}"


def is_out_of_office(subject: str, text: str) -> bool:
    return bool(_OOO_SUBJECT_RE.search(subject.lower()) or _OOO_BODY_RE.search(text[:3000]))


def may_have_phrase(text: str) -> bool:
    """False when none of the phrase functions below can find anything in `text`."""
    return _ANY_PHRASE_RE.search(text[:3000]) is not None


def out_of_office_phrase(text: str) -> str | None:
    return _quote(_OOO_BODY_RE.phrase(text[:3000]))


def left_company_phrase(text: str) -> str | None:
    return _quote(_LEFT_COMPANY_RE.phrase(text[:3000]))


def autoresponder_phrase(text: str) -> str | None:
    return _quote(_AUTORESPONDER_BODY_RE.phrase(text[:3000]))


def challenge_phrase(text: str) -> str | None:
    return _quote(_CHALLENGE_RE.phrase(text[:3000]))


def replacement_contact(text: str, *, sender: str) -> str | None:
    """Whom a left-the-company reply names instead: "Name <address>", an address, or None."""
    for cue in _REPLACEMENT_CUE_RE.finditer(text[:3000]):
        window = text[cue.end() : cue.end() + 160]
        found = EMAIL_RE.search(window)
        if found is None or found.group(0).lower() == sender:
            continue
        email = found.group(0).rstrip(".")
        name = _NAME_BEFORE_RE.search(window[: found.start()])
        return f"{name.group(1)} <{email}>" if name else email
    return None


def _quote(phrase: str | None) -> str | None:
    return None if phrase is None else " ".join(phrase.split())[:80]
