"""“Connect with …” in Chromium, against `radiosilence serve`, a real authorization server
(tests/support/oauth_server.py) and a Dovecot that asks it about every token: the rep
presses the button, allows access at the provider, lands on the dashboard with the quiet
thread; the provider revokes the grant, the mailbox says to sign in again, and “Reconnect”
brings the same mailbox and threads back.

Screenshots of the connect page's buttons and of the reconnect state land in docs/screenshots/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.e2e.test_web_flow import ADMIN, DESKTOP, setup_link, shoot
from tests.factories import REP, ImapUser, now_utc, populate
from tests.support.dovecot import DovecotServer
from tests.support.oauth_server import (
    OAuthServer,
    dovecot_asking,
    provider_settings,
    running_oauth_server,
)
from tests.support.processes import cli_env, serving

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def idp() -> Iterator[OAuthServer]:
    with running_oauth_server(access_token_seconds=3) as server:
        yield server


@pytest.fixture(scope="module")
def idp_dovecot(idp: OAuthServer) -> Iterator[DovecotServer]:
    with dovecot_asking(idp) as dovecot:
        yield dovecot


def wait_for_text(page: Any, url: str, text: str, seconds: float = 30) -> None:
    """Reload `url` until it shows `text` (a sync runs in the background)."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(url)
        if text in page.content():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never showed {text!r}:\n{page.inner_text('main')}")
        time.sleep(0.3)


def test_connect_with_the_provider_then_reconnect_after_a_revoked_grant(
    browser: Any, tmp_path: Path, idp: OAuthServer, idp_dovecot: DovecotServer
) -> None:
    idp_dovecot.add_user(REP, "unused-password-1")  # the mail home; logins here use tokens
    populate(ImapUser(server=idp_dovecot, username=REP, password=""), now_utc())
    idp.signed_in_as = REP
    env = cli_env(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'rs.db'}",
        secret_key=TEST_SECRET_KEY,
        workers_enabled="false",
        oauth2_refresh_margin_seconds="1",
        **provider_settings(idp, idp_dovecot),
    )
    log = tmp_path / "serve.log"
    with serving(env, tmp_path, log) as base:
        idp.register(base + "/oauth2/callback")
        page = browser.new_context(viewport=DESKTOP).new_page()
        page.goto(setup_link(log))
        page.get_by_label("Your e-mail").fill(ADMIN[0])
        page.get_by_label("Password (at least 8 characters)").fill(ADMIN[1])
        page.get_by_label("The password again").fill(ADMIN[1])
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url(base + "/mailboxes/new")

        # One button, then the provider's own page; no password typed here.
        button = page.get_by_role("button", name="Connect with Test IdP")
        assert button.is_visible()
        shoot(page, "connect-sign-in")
        button.click()
        page.wait_for_url(re.compile(re.escape(idp.base_url) + "/authorize"))
        assert REP in page.content()
        page.get_by_role("button", name="Allow").click()
        page.wait_for_url(base + "/", timeout=30_000)  # first sync, then the dashboard
        quiet = page.locator("section", has=page.get_by_role("heading", name=re.compile("Quiet")))
        row = quiet.locator("li.row", has_text="Proposal for Buyer Inc")
        assert row.is_visible()
        row.get_by_role("link", name="Proposal for Buyer Inc").click()
        thread_url = page.url

        # The rep removes the app's access at the provider: the next read fails, once.
        idp.revoke_grants_of(REP)
        mailbox_url = base + "/mailboxes/1"
        page.goto(mailbox_url)
        page.get_by_role("button", name="Read new mail now").click()
        wait_for_text(page, mailbox_url, "Cannot be read")
        assert "sign in again" in page.inner_text("main")
        reconnect = page.get_by_role("button", name="Reconnect with Test IdP")
        assert reconnect.is_visible()
        shoot(page, "reconnect")

        reconnect.click()
        page.wait_for_url(re.compile(re.escape(idp.base_url) + "/authorize"))
        page.get_by_role("button", name="Allow").click()
        page.wait_for_url(re.compile(re.escape(mailbox_url) + r"\?notice=reconnected"))
        assert "Reconnected" in page.get_by_role("status").first.inner_text()
        wait_for_text(page, mailbox_url, "<dd>OK</dd>")
        assert page.goto(thread_url).status == 200  # the same thread, same address
        assert "Proposal for Buyer Inc" in page.content()
