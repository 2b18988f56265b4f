"""Browser tests: headless Chromium (Debian's, never a downloaded one) driven by Playwright,
against a real `radiosilence serve` and the test Dovecot."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import IN_CI
from tests.integration.conftest import dovecot, imap_user  # noqa: F401  (shared fixtures

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser() -> Iterator[object]:
    """Chromium for one test. Not longer: Playwright's sync API keeps an event loop running
    in this thread while it is open, and the async tests after it need the thread's own."""
    if shutil.which(CHROMIUM) is None:
        message = "chromium is not installed: run scripts/install-test-deps.sh (make test does)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()
