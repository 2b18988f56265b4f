"""Who a conversation is with, as a list shows it: a name and a company for an address.

Pure: derived from the address and the display name the mail carried, nothing looked up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.domain.followup import company_of

_SEPARATORS = re.compile(r"[._\-+]+")


@dataclass(frozen=True, kw_only=True)
class Person:
    name: str
    email: str
    company: str  # "" when the address is a free-mail one


def person_of(email: str, display_name: str = "") -> Person:
    email = email.strip().lower()
    local, _, domain = email.rpartition("@")
    name = " ".join(display_name.split()).strip("\"' ")
    if not name or "@" in name:
        name = " ".join(w.capitalize() for w in _SEPARATORS.split(local) if w) or email
    return Person(name=name, email=email, company=company_of(domain))
