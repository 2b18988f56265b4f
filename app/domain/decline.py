"""A clear "no" in a reply's own words: it closes the thread as declined.

Only unmistakable phrases count ("not interested", "please remove me", "we went with another
vendor"); a soft "not right now" keeps the conversation open. The reply's own words are read,
never the quoted e-mail, and a phrase under "if"/"unless" ("let me know if you're not
interested") is a condition, not an answer.
"""

from __future__ import annotations

import re

from app.domain.caseless import CaselessPattern

_DECLINE_RE = CaselessPattern(
    # English
    r"\b(?:(?:not|no longer) interested(?=\s*(?:[,.!;)]|$|at this (?:time|point)|"
    r"at the moment|right now|any ?more|in (?:your|this|the|these) (?:offer|offering|product|"
    r"service|solution|proposal|demo|call|meeting)s?\b))|not a (?:good )?fit for us|"
    r"(?:please\s+)?(?:remove|take) (?:me|us|my (?:e-?mail|address)) (?:from|off)|"
    r"unsubscribe me|stop (?:e-?mailing|contacting|writing to) (?:me|us)|"
    r"do not (?:contact|e-?mail) (?:me|us)|don't (?:contact|e-?mail) (?:me|us)|"
    r"(?:we|i)(?:'ve| have)? (?:went|gone|decided to go|chosen to go|chose to go|opted to go) "
    r"(?:with|for) (?:another|a different|an?other|a competing) "
    r"(?:vendor|provider|supplier|solution|company|partner|option|tool|product)|"
    r"(?:we|i)(?:'ve| have)? (?:chosen|selected|picked|signed with) (?:another|a different) "
    r"(?:vendor|provider|supplier|solution|company|partner)|"
    r"(?:will not|won't|are not|aren't) (?:be )?(?:moving|going) forward|"
    r"we(?:'ll| will) pass|"
    # German
    r"kein(?:e|en)? interesse|nicht interessiert|"
    r"(?:bitte )?(?:entfernen sie|streichen sie|nehmen sie) (?:mich|uns)|"
    r"aus (?:ihrem|dem) verteiler|keine weiteren (?:e-?mails|nachrichten|kontaktaufnahmen)|"
    r"für einen anderen anbieter entschieden|anderweitig entschieden|"
    r"gegen (?:eine zusammenarbeit|ihr angebot) entschieden|kein bedarf|"
    # French
    r"pas intéressée?s?|ne (?:suis|sommes) pas intéressée?s?|pas d['’]intérêt|"
    r"retirez[- ]moi|désinscrivez[- ]moi|ne (?:plus|pas) me (?:contacter|recontacter)|"
    r"merci de ne plus|(?:choisi|retenu|opté pour) un autre (?:fournisseur|prestataire|"
    r"partenaire)|opté pour une autre solution|pas de besoin|pas besoin de vos services|"
    # Spanish
    r"no (?:estoy|estamos) interesad[oa]s?|no (?:me|nos) interesa|"
    r"(?:elimín(?:e|a)me|bórreme|borradme|quíteme|quítenme|darme de baja|dame de baja)|"
    r"no (?:me|nos) (?:contacte|contacten|escriba|escriban) más|"
    r"(?:elegido|escogido|optado por|decidido por) otro (?:proveedor|socio)|"
    r"no necesitamos (?:sus|tus) servicios)",
    re.MULTILINE,
)
# A condition or a question about a "no" is not a "no".
_CONDITION_RE = re.compile(
    r"\b(?:if|unless|whether|falls|wenn|ob|si|sinon)\b[^.!?\n]{0,40}$", re.IGNORECASE
)
_BARE_NO_RE = re.compile(
    r"^\W*(?:no,? thanks?(?: you)?|nein,? danke|non,? merci|no,? gracias)\b"
    r"(?!\s+(?:needed|necessary|required|nötig|nécessaire))",
    re.IGNORECASE,
)
MAX_CHARS = 2_000  # a decline is said up front


def decline_phrase(own_text: str) -> str | None:
    """The phrase of a clear decline in the sender's own words, or None."""
    text = own_text[:MAX_CHARS]
    bare = _BARE_NO_RE.match(text)
    if bare:  # "No thanks." as the answer itself
        return " ".join(bare.group(0).split()).strip(" ,")
    for start, end in _DECLINE_RE.spans(text):
        line_start = text.rfind("\n", 0, start) + 1
        if _CONDITION_RE.search(text[line_start:start]):
            continue
        if text[end : end + 2].lstrip().startswith("?"):
            continue
        return " ".join(text[start:end].split())[:80]
    return None
