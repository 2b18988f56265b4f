"""Integration fixtures: a real Dovecot for the whole session, a fresh IMAP user per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import IN_CI
from tests.factories import ImapUser
from tests.support.dovecot import DovecotServer, dovecot_available, start_dovecot


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    if not dovecot_available():
        message = "dovecot is not installed: run scripts/install-test-deps.sh (make test does)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    server = start_dovecot()
    yield server
    server.close()


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> ImapUser:
    return ImapUser.new(dovecot)
