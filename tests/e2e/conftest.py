"""Browser tests: headless Chromium (Debian's, never a downloaded one) driven by Playwright,
against a real `radiosilence serve` and the test Dovecot."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import IN_CI
from tests.integration.conftest import dovecot, imap_user  # noqa: F401  (shared fixtures)

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
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
