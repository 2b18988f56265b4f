"""What a rep clicks through, in Chromium, against `radiosilence serve` and Dovecot:
first-run setup → connect the mailbox through the form → the quiet thread is on the
dashboard with its reason → edit the draft's question and approve → Dovecot's Drafts folder
holds it with the edited question. Then: another rep sees none of it, a form POST without
its CSRF token is refused, and the sixth failed sign-in in a minute is refused.

Screenshots of the pages a rep sees (desktop and phone widths) land in docs/screenshots/.
"""

from __future__ import annotations

import email
import re
import time
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.factories import REP, ImapUser, now_utc, populate
from tests.support.processes import cli_env, serving

pytestmark = pytest.mark.integration
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
ADMIN = ("lead@seller.example", "admin-password-1")
OTHER = ("other@seller.example", "other-password-1")
QUESTION = "Could we put 20 minutes in the calendar on Thursday to close this out?"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    env = cli_env(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'rs.db'}",
        secret_key=TEST_SECRET_KEY,
        workers_enabled="false",
    )
    log = tmp_path / "serve.log"
    with serving(env, tmp_path, log) as base:
        yield base, log


def setup_link(log: Path) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = re.search(r"(http://\S+/setup\?token=\S+)", log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise AssertionError(f"serve logged no setup link:\n{log.read_text()}")


def shoot(page: Any, name: str) -> None:
    """The page at desktop and phone widths, full length."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def drafts_folder_bodies(user: ImapUser) -> list[str]:
    bodies = []
    with user.server.imap(user.username) as conn:
        conn.select('"Drafts"', readonly=True)
        _, data = conn.uid("SEARCH", "ALL")
        for uid in (data[0] or b"").split():
            _, fetched = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next(part[1] for part in fetched if isinstance(part, tuple))
            msg = email.message_from_bytes(raw, policy=policy.default)
            body = msg.get_body(preferencelist=("plain",))
            bodies.append(body.get_content() if body else "")
    return bodies


def sign_in(page: Any, base: str, who: tuple[str, str]) -> Any:
    page.goto(base + "/login")
    page.get_by_label("E-mail").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()
    return page


def test_a_rep_connects_reviews_and_approves_a_follow_up_in_the_browser(
    browser: Any, server: tuple[str, Path], imap_user: ImapUser
) -> None:
    base, log = server
    populate(imap_user, now_utc())
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()

    # First run: the one-time setup link from the log creates the administrator.
    page.goto(setup_link(log))
    page.get_by_label("Your e-mail").fill(ADMIN[0])
    page.get_by_label("Password (at least 8 characters)").fill(ADMIN[1])
    page.get_by_label("The password again").fill(ADMIN[1])
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(base + "/mailboxes/new")

    # Connect: "test connection" answers in plain words, then connect and read.
    page.get_by_role("link", name="Other (IMAP)").click()
    page.get_by_label("Your e-mail address").fill(REP)
    page.get_by_label("Password or app password").fill(imap_user.password)
    page.get_by_label("IMAP server").fill(imap_user.server.host)
    page.get_by_label("Port").fill(str(imap_user.server.port))
    page.get_by_label("Security").select_option("plain")
    page.get_by_label("Username (if not your address)").fill(imap_user.username)
    shoot(page, "connect")
    page.get_by_role("button", name="Test connection").click()
    assert "folders found" in page.get_by_role("status").inner_text()
    assert page.get_by_label("Password or app password").input_value() == ""  # never filled back
    page.get_by_label("Password or app password").fill(imap_user.password)
    page.get_by_label("Username (if not your address)").fill(imap_user.username)
    page.get_by_role("button", name="Connect and read my mail").click()
    page.wait_for_url(base + "/", timeout=30_000)  # the first-sync page moves on by itself

    # The dashboard: the quiet thread with its reason, a full date and its step.
    quiet = page.locator("section", has=page.get_by_role("heading", name=re.compile("Quiet")))
    row = quiet.locator("li.row", has_text="Proposal for Buyer Inc")
    text = row.inner_text()
    assert re.search(r"quiet for \d+ business days since your e-mail of \w{3} \d+ \w{3}", text)
    assert "follow-up 1 of 3" in text
    assert "Anna" in text and "Buyer" in text  # the person and the company
    shoot(page, "dashboard")

    # The thread's timeline.
    row.get_by_role("link", name="Proposal for Buyer Inc").click()
    assert page.get_by_role("heading", name="Proposal for Buyer Inc").is_visible()
    assert "Timeline" in page.content()
    thread_url = page.url
    shoot(page, "thread")

    # The draft: exactly what will land in Drafts; edit the question and approve.
    page.get_by_role("link", name="Review the follow-up draft").click()
    draft_url = page.url
    assert "anna@buyer.example" in page.locator("dl.headers").inner_text()
    assert "Proposal for Buyer Inc" in page.locator("article.mail").inner_text()
    shoot(page, "draft")
    page.get_by_label(re.compile("Your question")).fill(QUESTION)
    page.get_by_role("button", name="Approve: put it in my Drafts folder").click()
    page.wait_for_url(re.compile(r"notice=approved"))
    assert "in your Drafts folder" in page.get_by_role("status").first.inner_text()
    bodies = drafts_folder_bodies(imap_user)
    assert len(bodies) == 1 and bodies[0].startswith(QUESTION)
    assert "Proposal for Buyer Inc" in bodies[0]  # the forwarded e-mail below it

    # Another rep, added by the administrator, sees none of it: every page answers 404.
    page.goto(base + "/account/users")
    page.get_by_label("E-mail").fill(OTHER[0])
    page.get_by_label(re.compile("First password")).fill(OTHER[1])
    page.get_by_role("button", name="Add user").click()
    assert OTHER[0] in page.locator("table").inner_text()
    mailbox_url = base + "/mailboxes/1"
    other = sign_in(browser.new_context(viewport=DESKTOP).new_page(), base, OTHER)
    other.wait_for_url(base + "/")
    for url in (thread_url, draft_url, draft_url + "/eml", mailbox_url):
        answer = other.goto(url)
        assert answer is not None and answer.status == 404, url
        assert "Not found" in other.content()
    assert "Proposal for Buyer Inc" not in other.goto(base + "/threads").text()

    # A form POST without its CSRF token is refused, even with a valid session.
    forged = context.request.post(thread_url + "/close", form={"reason": "forged"})
    assert forged.status == 403
    page.goto(thread_url)
    assert page.locator(".badge").first.inner_text() == "Quiet — follow-up due"

    # The sixth failed sign-in within a minute is refused, whatever the password.
    stranger = browser.new_context(viewport=DESKTOP).new_page()
    statuses = []
    for _ in range(6):
        stranger.goto(base + "/login")
        stranger.get_by_label("E-mail").fill(ADMIN[0])
        stranger.get_by_label("Password").fill("wrong-password")
        with stranger.expect_response(lambda r: r.request.method == "POST") as answer:
            stranger.get_by_role("button", name="Sign in").click()
        statuses.append(answer.value.status)
    assert statuses == [401] * 5 + [429]
    assert "too many failed sign-ins" in stranger.content()
    sign_in(stranger, base, ADMIN)  # the right password is refused too, for now
    assert stranger.url.startswith(base + "/login")
