"""The private Dovecot of `app.demo.dovecot` for the tests (the launcher lives in the app, which
`radiosilence demo` uses too); the messages tests put there come from `tests.factories`."""

from __future__ import annotations

from app.demo.dovecot import DovecotServer, dovecot_available, start_dovecot

__all__ = [
    "DovecotServer",
    "dovecot_available",
    "start_dovecot",
]
