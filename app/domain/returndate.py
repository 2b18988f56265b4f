"""The return date an out-of-office reply writes ("back on 12 March", "bis 14.03.", "jusqu'au
lundi 3 mars", "hasta el 5 de abril"), in English, German, French, Spanish (and some Dutch and
Italian).

A date counts only right after a cue phrase of the language ("until", "bis", "jusqu'au",
"hasta") and only inside (message date, message date + 90 days]: signatures and quoted mail are
full of other dates. Numeric dates are read day-first, except English slash dates that only
make sense month-first; when both readings fit, the earlier one wins (a follow-up a little
early beats one weeks late).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

WINDOW = timedelta(days=90)

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "january jan januar jänner janvier janv enero ene januari gennaio gen",
        "february feb februar février fevrier févr fevr febrero februari febbraio",
        "march mar märz maerz mär mars marzo maart",
        "april apr avril avr abril abr aprile",
        "may mai mayo mei maggio mag",
        "june jun juni juin junio giugno giu",
        "july jul juli juillet juil julio luglio lug",
        "august aug août aout agosto ago augustus",
        "september sep sept septembre septiembre setiembre settembre set",
        "october oct okt oktober octobre octubre ottobre ott",
        "november nov novembre noviembre",
        "december dec dez dezember décembre decembre déc diciembre dic dicembre",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number

_WEEKDAYS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "monday mon montag mo lundi lunes maandag lunedì lunedi",
        "tuesday tue tues dienstag di mardi martes dinsdag martedì martedi",
        "wednesday wed mittwoch mi mercredi miércoles miercoles woensdag mercoledì mercoledi",
        "thursday thu thurs donnerstag do jeudi jueves donderdag giovedì giovedi",
        "friday fri freitag fr vendredi viernes vrijdag venerdì venerdi",
        "saturday sat samstag sonnabend sa samedi sábado sabado zaterdag sabato",
        "sunday sun sonntag so dimanche domingo zondag domenica",
    )
):
    for _name in _names.split():
        _WEEKDAYS[_name] = _number

_TOMORROW = {"tomorrow", "morgen", "demain", "mañana", "manana", "domani"}


def _alternation(names: dict[str, int] | set[str]) -> str:
    return "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))


_MONTH = rf"(?P<{{g}}>{_alternation(_MONTHS)})\b\.?"
_WEEKDAY_WORD = _alternation({n for n in _WEEKDAYS if len(n) > 2})
_DAY = r"(?P<{g}>[0-3]?\d)(?:st|nd|rd|th|er|e|\.|º|°)?"
_YEAR = r"(?P<{g}>(?:19|20)\d\d)"

# One date expression, with an optional weekday in front ("Monday, March 12", "lundi 3 mars").
_DATE = (
    rf"(?:(?:{_WEEKDAY_WORD})\.?,?\s+(?:(?:the|den|dem|le|el)\s+)?)?"
    r"(?:"
    rf"(?P<iso_y>(?:19|20)\d\d)-(?P<iso_m>[01]?\d)-(?P<iso_d>[0-3]?\d)"
    r"|(?P<n1>[0-3]?\d)(?P<sep>[./-])(?P<n2>[01]?\d)(?:(?P=sep)(?P<ny>\d{4}|\d\d)|\.)?(?![\d:])"
    rf"|{_DAY.format(g='dm_d')}\s*(?:of\s+|de\s+)?{_MONTH.format(g='dm_m')}"
    rf"(?:,?\s*(?:de\s+)?{_YEAR.format(g='dm_y')})?"
    rf"|{_MONTH.format(g='md_m')}\s+{_DAY.format(g='md_d')}(?:,?\s*{_YEAR.format(g='md_y')})?"
    rf"|(?P<wd>{_WEEKDAY_WORD})\b"
    rf"|(?P<tm>{_alternation(_TOMORROW)})\b"
    r")"
)

# Cue phrases per language; the date follows within a few words ("back in the office on").
_CUES = (
    r"until|till|til|through|thru|up to and including|back|return|returning|returns|"
    r"in the office|available|reachable|away to|"
    r"bis|zurück|zurueck|wieder|ab dem|ab|"
    r"jusqu['’]?(?:au|à|a)|de retour|retour|rentrerai|reviens|à partir du|a partir du|"
    r"hasta|regreso|regresaré|regresare|volveré|volvere|de vuelta|vuelvo|a partir del|"
    r"tot en met|tot|terug|fino al|fino a|rientro"
)
# Compiled without IGNORECASE over lower-cased text: several times faster on every message.
_RETURN_RE = re.compile(rf"(?P<cue>\b(?:{_CUES}))\b[^.!?\n\d]{{0,40}}?(?P<date>{_DATE})")
# "from 3 to 14 March", "vom 3. bis 14. März", "du 3 au 14 mars", "del 3 al 14 de marzo".
_RANGE_RE = re.compile(
    rf"(?P<cue>\b(?:from|vom|du|del|dal|van)\s+[0-3]?\d\.?\s*(?:to|bis|au|al|-|–|tot)\s*)"
    rf"(?P<date>{_DATE})"
)


@dataclass(frozen=True, kw_only=True)
class ReturnDate:
    day: date
    phrase: str  # the words it was read from, for the reason


def find_return_date(texts: list[str], sent: datetime | None) -> ReturnDate | None:
    """The first written return date inside (sent, sent + 90 days], searching texts in order."""
    if sent is None:
        return None
    for text in texts:
        lowered = text[:4000].lower()
        for pattern in (_RANGE_RE, _RETURN_RE):
            for match in pattern.finditer(lowered):
                day = _resolve(match, sent.date())
                if day is not None:
                    written = text[match.start() : match.end()]
                    phrase = written if written.lower() == match.group(0) else match.group(0)
                    return ReturnDate(day=day, phrase=" ".join(phrase.split())[:80])
    return None


def _resolve(match: re.Match[str], sent: date) -> date | None:
    """The match's date inside the window, or None."""
    g = match.groupdict()
    if g["iso_y"]:
        return _in_window(_make(int(g["iso_y"]), int(g["iso_m"]), int(g["iso_d"])), sent)
    if g["n1"]:
        return _numeric(int(g["n1"]), int(g["n2"]), g["ny"], g["sep"], match["cue"], sent)
    if g["dm_d"]:
        return _dated(int(g["dm_d"]), _MONTHS[g["dm_m"]], g["dm_y"], sent)
    if g["md_d"]:
        return _dated(int(g["md_d"]), _MONTHS[g["md_m"]], g["md_y"], sent)
    if g["wd"]:
        ahead = (_WEEKDAYS[g["wd"]] - sent.weekday() - 1) % 7 + 1
        return sent + timedelta(days=ahead)
    if g["tm"]:
        return sent + timedelta(days=1)
    return None


def _numeric(a: int, b: int, year: str | None, sep: str, cue: str, sent: date) -> date | None:
    full_year = None if year is None else (int(year) + 2000 if len(year) == 2 else int(year))
    day_first = _dated(a, b, full_year, sent)
    month_first = _dated(b, a, full_year, sent) if sep == "/" and _english(cue) else None
    found = [d for d in (day_first, month_first) if d is not None]
    return min(found) if found else None


def _english(cue: str) -> bool:
    return cue.strip() in {
        "until", "till", "til", "through", "thru", "up to and including", "back", "return",
        "returning", "returns", "in the office", "available", "reachable", "away to",
    }  # fmt: skip


def _dated(day: int, month: int, year: str | int | None, sent: date) -> date | None:
    if year is not None:
        return _in_window(_make(int(year), month, day), sent)
    for candidate_year in (sent.year, sent.year + 1):  # a year-less date is the next one
        found = _in_window(_make(candidate_year, month, day), sent)
        if found is not None:
            return found
    return None


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _in_window(day: date | None, sent: date) -> date | None:
    if day is None or not (sent < day <= sent + WINDOW):
        return None
    return day
