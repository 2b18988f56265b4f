"""A reply's own words: the text before the quoted history, without signature.

The rules count a reply only when it adds text of its own, so this errs towards keeping text:
a line is cut only behind a recognised quote header ("On … wrote:", "Am … schrieb …:", an
Outlook "From:/Sent:" block, "-----Original Message-----"), a "> " quote, or a signature marker.
Measured against mail-parser-reply, email-reply-parser and quotequail on the shared corpora by
bench/classify_eval.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.domain.caseless import CaselessPattern
from app.domain.model import cheap_init

# Verbs that end a quote header ("… Jane <jane@x> wrote:") and verbs a name may follow
# ("Am … schrieb Max Mustermann <max@x>:").
_END_VERBS = (
    r"wrote|writes|a écrit|a ecrit|escribió|escribio|ha scritto|escreveu|napisał|napisała|"
    r"napisał\(a\)|napisal|написал|написала|написав|пише|пишет|kirjoitti|írta|yazdı|napsal"
)
_MID_VERBS = r"schrieb|schreibt|schreef|heeft geschreven|skrev"
_QUOTE_HEADER_RE = CaselessPattern(
    rf"^\s*(?:\S.{{0,300}}?\s)?(?:{_END_VERBS})\s*[:：]\s*$"
    rf"|^\s*(?:\S.{{0,300}}?\s)?(?:{_MID_VERBS})\b.{{0,200}}?[:：]\s*$"
    r"|^\s*(?:\S.{0,300}?)(?:写道|寫道|に書きました|님이 작성)[:：]?\s*$"
    # Gmail in some locales: "2016-03-03 17:21 GMT+01:00 Some One <one@x.org>:"
    r"|^\s*\d.{0,200}<\s*[^<>\s]+@[^<>\s]+>\s*[:：]\s*$"
    # Zoho: "---- On Tue, 22 Dec 2015 14:17:36 +0530 Sam <sam@x> wrote ----"
    r"|^\s*-{2,}\s*on\s.{0,300}\swrote\s*-{2,}\s*$",
)
# The last character of anything _QUOTE_HEADER_RE matches (trailing blanks aside).
_HEADER_ENDINGS = frozenset(":：道た성-")
# A header names a date or an address; "Here is what I wrote:" does not.
_HEADER_EVIDENCE_RE = re.compile(r"\d|@")
_HEADER_START_RE = CaselessPattern(
    r"^\s*(?:(?:on|am|le|el|il|op|den|em|dne|w dniu|в)\b|\d).{0,200}$|.{0,200}<[^<>\s]+@[^<>\s]+>",
)
_SEPARATOR_RE = CaselessPattern(
    r"^\s*[-_=*]{2,}\s*(?:original message|original e-?mail|ursprüngliche nachricht|"
    r"originalnachricht|message d'origine|message original|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|originalmeddelande|opprinnelig melding|"
    r"oprindelig meddelelse|mensagem original|wiadomość oryginalna|forwarded message|"
    r"weitergeleitete nachricht|message transféré|mensaje reenviado|messaggio inoltrato|"
    r"doorgestuurd bericht|reply message|antwort|原始邮件|原始郵件|転送されたメッセージ)"
    r"\s*[-_=*]{0,}\s*$"
    r"|^\s*_{20,}\s*$"
    r"|^\s*(?:begin forwarded message|anfang der weitergeleiteten nachricht|"
    r"début du message réexpédié|inicio del mensaje reenviado)\s*:?\s*$",
)
_FROM_FIELD_RE = CaselessPattern(
    r"^\s*[*>]?\s*\*?(?:from|von|de|da|van|från|fra|od|от|发件人|寄件者|差出人)\s*\*?\s*[:：]",
)
_SENT_FIELD_RE = CaselessPattern(
    r"^\s*[*>]?\s*\*?(?:sent|date|gesendet|datum|envoyé|envoye|date d'envoi|enviado|fecha|"
    r"inviato|data|verzonden|skickat|sendt|wysłano|отправлено|дата|to|an|à|para|a|aan|till|"
    r"subject|betreff|objet|asunto|oggetto|onderwerp|ämne|emne|temat|тема|发送时间|日期|"
    r"收件人|主题|送信日時|件名)\s*\*?\s*[:：]",
)
_SIGNATURE_RE = CaselessPattern(
    r"^\s*(?:--|—|__)\s*$"
    r"|^\s*(?:sent|envoyé|enviado|inviato|verzonden|skickat|sendt|gesendet|von meinem|"
    r"diese nachricht wurde von)\b.{0,60}\b(?:iphone|ipad|android|mobile|phone|device|"
    r"blackberry|galaxy|samsung|outlook|mail|handy|mobilgerät|smartphone|téléphone|móvil|"
    r"celular|telefono)\b.*$"
    r"|^\s*(?:sent from|envoyé de|envoyé depuis|enviado desde|enviado de|inviato da|"
    r"verzonden met|von meinem|get outlook for|obtenir outlook pour|holen sie sich outlook)\b.*$"
    r"|^\s*从我的.*发送$|^\s*從我的.*傳送$",
)
_WORD_RE = re.compile(r"\w", re.UNICODE)
_FORWARD_RE = re.compile(
    r"forward|weitergeleitet|transféré|réexpédié|reenviado|inoltrato|doorgestuurd|転送",
    re.IGNORECASE,
)


@cheap_init
@dataclass(frozen=True, kw_only=True)
class ReplyText:
    own: str  # the sender's own words, signature removed; "" when they wrote nothing
    quoted: bool  # quoted history was found
    cut_by: str = ""  # the line that started the quoted history, for the reason


def split_reply(text: str) -> ReplyText:
    """Split a plain-text body into the sender's own words and the quoted history."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = _quote_start(lines)
    if start is None:
        return ReplyText(own=_strip_signature(lines), quoted=False)
    cut_by = lines[start].strip()[:120]
    if _quoted_with_marks(lines, start):
        # Interleaved or bottom-posted: the words between and below "> " lines are theirs.
        return ReplyText(own=_strip_signature(_unquoted(lines)), quoted=True, cut_by=cut_by)
    own = _strip_signature(lines[:start])
    if has_own_words(own):
        return ReplyText(own=own, quoted=True, cut_by=cut_by)
    if _SEPARATOR_RE.matches_start(lines[start]) and _is_forward(lines[start]):
        return ReplyText(own=_strip_signature(lines), quoted=False)  # a forward is content
    end = _header_end(lines, start)
    if end is not None:
        # "On … wrote:" on top of unmarked text may be a bottom-post: keep the text, since
        # losing a real answer costs more than counting an empty one.
        return ReplyText(own=_strip_signature(lines[end + 1 :]), quoted=True, cut_by=cut_by)
    return ReplyText(own=own, quoted=True, cut_by=cut_by)


def has_own_words(text: str) -> bool:
    return bool(_WORD_RE.search(text))


def _quote_start(lines: list[str]) -> int | None:
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if _is_quote_line(line):
            return _header_before(lines, i)
        if _SEPARATOR_RE.matches_start(line):
            return i
        if _is_header(line) or _wrapped_header(lines, i):
            return i
        if _FROM_FIELD_RE.matches_start(line) and _outlook_block(lines, i):
            return i
    return None


def _is_quote_line(line: str) -> bool:
    return line.lstrip().startswith(">")


def _is_header(line: str, *, loose: bool = False) -> bool:
    """A quote header; `loose` (right above "> " lines) also takes a bare "Jane wrote:"."""
    if len(line) > 400 or line.rstrip()[-1:] not in _HEADER_ENDINGS:
        return False  # every quote header ends so: most lines are out before the long match
    if not _QUOTE_HEADER_RE.matches_start(line):
        return False
    return loose or bool(_HEADER_EVIDENCE_RE.search(line))


def _wrapped_header(lines: list[str], i: int) -> bool:
    """'On Mon, 2 Nov 2026 at 09:14, Jane Doe <' + 'jane@x.com> wrote:' split by the client."""
    if not _HEADER_START_RE.matches_start(lines[i]):
        return False
    joined = lines[i].strip()
    for follow in lines[i + 1 : i + 6]:
        joined = f"{joined} {follow.strip()}" if follow.strip() else joined
        if _is_header(joined):
            return True
    return False


def _outlook_block(lines: list[str], i: int) -> bool:
    """A From: line followed by Sent:/To:/Subject: lines is a quoted message's header."""
    fields = [ln for ln in lines[i + 1 : i + 6] if ln.strip()]
    return sum(1 for ln in fields if _SENT_FIELD_RE.matches_start(ln)) >= 2


def _header_before(lines: list[str], i: int) -> int:
    """The quote's header just above the first "> " line (maybe wrapped), if there is one."""
    j = i - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    best = i
    for first in (j, j - 1, j - 2):
        joined = " ".join(ln.strip() for ln in lines[max(first, 0) : j + 1])
        if first < 0 or not _is_header(joined, loose=True):
            continue
        if first == j or _HEADER_START_RE.matches_start(lines[first]):
            best = first  # a wrapped header's first line starts like one
    return best


def _quoted_with_marks(lines: list[str], start: int) -> bool:
    """The quote is "> " lines (maybe under a header), not a whole original below a header."""
    if _is_quote_line(lines[start]):
        return True
    end = _header_end(lines, start)
    if end is None:
        return False
    following = next((ln for ln in lines[end + 1 :] if ln.strip()), "")
    return _is_quote_line(following)


def _header_end(lines: list[str], start: int) -> int | None:
    """The last line of the (maybe wrapped) quote header that begins at `start`."""
    joined = lines[start].strip()
    if _is_header(joined, loose=True):
        return start
    for k, follow in enumerate(lines[start + 1 : start + 6], start=start + 1):
        joined = f"{joined} {follow.strip()}" if follow.strip() else joined
        if _is_header(joined):
            return k
    return None


def _is_forward(line: str) -> bool:
    return bool(_FORWARD_RE.search(line))


def _unquoted(lines: list[str]) -> list[str]:
    """Every line but the "> " runs and the quote headers above them."""
    dropped: set[int] = set()
    for i, line in enumerate(lines):
        if _is_quote_line(line):
            dropped.add(i)
            if i == 0 or not _is_quote_line(lines[i - 1]):
                dropped.update(range(_header_before(lines, i), i))
    return [line for i, line in enumerate(lines) if i not in dropped]


def _strip_signature(lines: list[str]) -> str:
    for i, line in enumerate(lines):
        if _SIGNATURE_RE.matches_start(line):
            lines = lines[:i]
            break
    while lines and not has_own_words(
        lines[-1].replace("\u1427", "")
    ):  # trailing rules, dashes, tracking marks
        lines = lines[:-1]
    return "\n".join(lines).strip()
