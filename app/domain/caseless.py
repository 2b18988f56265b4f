"""Case-insensitive search, fast on ASCII text.

`re.IGNORECASE` stops the regex engine from skipping ahead to the first letters a long
alternation can start with, so a phrase list costs several times more per character. ASCII text
lower-cased and searched with a case-sensitive twin of the pattern gives the same matches at
the same positions; other text is searched as before. The twin spells out the few letters
outside ASCII that match ASCII ones when case is ignored (Turkish "ı" matches "i"); a pattern
with an upper-case letter, which the twin could not serve, is refused when the module loads.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator


class CaselessPattern:
    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = re.compile(pattern, flags | re.IGNORECASE)
        self._lowered = re.compile(_ascii_twin(pattern), flags & ~re.IGNORECASE)

    def search(self, text: str) -> tuple[int, int] | None:
        """The span of the first match, or None."""
        ascii_text = text.isascii()
        found = (self._lowered if ascii_text else self.pattern).search(
            text.lower() if ascii_text else text
        )
        return None if found is None else found.span()

    def matches_start(self, text: str) -> bool:
        """Whether the pattern matches at the start of `text` (re's `match`)."""
        if text.isascii():
            return self._lowered.match(text.lower()) is not None
        return self.pattern.match(text) is not None

    def phrase(self, text: str) -> str | None:
        """The first match as written in `text`, or None."""
        span = self.search(text)
        return None if span is None else text[span[0] : span[1]]

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        """The span of every match, in order."""
        if text.isascii():
            matches = self._lowered.finditer(text.lower())
        else:
            matches = self.pattern.finditer(text)
        for found in matches:
            yield found.span()


def _ascii_twin(pattern: str) -> str:
    """The pattern for lower-cased ASCII text, where case no longer needs ignoring."""
    if re.search(r"[A-Z]|\\[xuUN]", re.sub(r"\\[A-Za-z]", "", pattern)):
        raise ValueError(f"not a lower-case pattern: {pattern[:60]!r}")
    out: list[str] = []
    in_class = escaped = False
    for i, char in enumerate(pattern):
        letters = "" if char.isascii() or escaped else _ascii_letters_matching(char)
        if letters:
            out.append(letters if in_class else f"[{letters}]")
        else:
            out.append(char)
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class and pattern[i - 1] != "[" and pattern[i - 2 : i] != "[^":
            in_class = False
    return "".join(out)


def _ascii_letters_matching(char: str) -> str:
    found = {a.lower() for a in string.ascii_letters if re.fullmatch(re.escape(char), a, re.I)}
    return "".join(sorted(found))
