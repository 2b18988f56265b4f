"""Text that no database column or mail can hold: the one rule, for every way in.

PostgreSQL refuses NUL characters in text (SQLite stores them), and a lone surrogate escape
("\\ud800" in JSON) cannot be encoded at all. The API checks every request body with
`unstorable_in`; services check the fields they take from elsewhere with `plain_text`.
"""

from __future__ import annotations

from typing import Any

from app.errors import InvalidInput


def unstorable(value: str) -> str | None:
    """What makes `value` impossible to store, or None."""
    if "\x00" in value:
        return "must not contain NUL characters (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate escape)"
    return None


def plain_text(value: str, field: str) -> str:
    """`value`, or InvalidInput naming `field` and what is wrong with it."""
    problem = unstorable(value)
    if problem:
        raise InvalidInput(f"{field} {problem}")
    return value


def unstorable_in(value: Any, where: str = "") -> str | None:
    """What is wrong with the first string in `value` that cannot be stored (nested lists and
    objects included, keys too), naming where it is; or None."""
    if isinstance(value, str):
        problem = unstorable(value)
        return f"text{f' in {where}' if where else ''} {problem}" if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            problem = unstorable_in(key, where) or unstorable_in(item, path)
            if problem:
                return problem
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = unstorable_in(item, f"{where}[{index}]")
            if problem:
                return problem
    return None
