"""A draft template cannot stall the server (issue 15, item 1), against a real `radiosilence
serve`: `{{ 9**64**64**64**64 }}` froze every request for 14 s and then answered 500. Every
template that cannot be bounded now answers 422 at once, naming the problem, while /healthz,
polled all along, answers each time in under 100 ms."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.factories import make_user
from tests.support.processes import cli_env, run_cli, serving

pytestmark = pytest.mark.integration
ATTACKS = [
    ("{{ 9**64**64**64**64 }}", "exponents (**) are not allowed"),
    ("{{ 9**64**64**64 }}", "exponents (**) are not allowed"),
    ("{{ 'x' * 999999 }}", "repeating text with * is not allowed"),
    ("{{ subject * 999999 }}", "repeating text with * is not allowed"),
    ("{{ " + " * ".join(["999999"] * 150) + " }}", "renders to 900 characters"),
    ("{{ ('9' ~ subject)|int // 0 }}", "cannot be computed"),
    ("{{ " + "(" * 990 + "1" + ")" * 990 + " }}", "nested too deeply"),
    ("{{ (subject ~ subject ~ subject)|truncate(99999999) }}", "numbers above 1,000,000"),
]


def test_templates_that_cannot_be_bounded_answer_422_at_once(tmp_path: Path) -> None:
    mbox = tmp_path / "export.mbox"
    mbox.write_bytes(
        b"From rep@seller.example Mon Nov 23 10:00:00 2026\n"
        b"From: rep@seller.example\nTo: buyer@customer.example\nSubject: Hello\n"
        b"Date: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <imp1@seller.example>\n\nHi\n"
    )
    env = cli_env(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'rs.db'}",
        secret_key=TEST_SECRET_KEY,
        workers_enabled="false",
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    token = make_user("rep@seller.example", env, tmp_path)
    imported = run_cli(
        *("import", str(mbox), "--email", "rep@seller.example", "--mailbox", "Export"),
        *("--address", "rep@seller.example"),
        env=env,
        cwd=tmp_path,
    )
    assert imported.returncode == 0, imported.stderr
    with serving(env, tmp_path, tmp_path / "serve.log") as base:
        auth = {"Authorization": f"Bearer {token}"}
        path = f"{base}/api/v1/mailboxes/1/draft-templates"
        assert httpx.get(path, headers=auth).status_code == 200
        health: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    started = time.monotonic()
                    assert client.get(f"{base}/healthz").status_code == 200
                    health.append(time.monotonic() - started)
                    time.sleep(0.01)

        def polled(count: int) -> None:
            deadline = time.monotonic() + 10
            while len(health) < count and time.monotonic() < deadline:
                time.sleep(0.01)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            # The poller is answering before the first attack and goes on after the last: the
            # attacks are answered so fast that their window alone may hold only a few polls.
            polled(3)
            with httpx.Client(headers=auth, timeout=60) as api:
                for source, complaint in ATTACKS:
                    started = time.monotonic()
                    answer = api.put(path, json={"first": ["Fine?", source]})
                    took = time.monotonic() - started
                    assert answer.status_code == 422, (source[:40], answer.status_code, answer.text)
                    detail = answer.json()["detail"]
                    assert detail.startswith("template refused: first[1]"), detail
                    assert complaint in detail, detail
                    assert took < 1.0, (source[:40], took)
            polled(len(health) + 5)
        finally:
            stop.set()
            poller.join()
        assert len(health) > 10
        assert max(health) < 0.1, sorted(health)[-5:]
        # Nothing was saved, and the server still renders and saves good templates.
        assert not httpx.get(path, headers=auth).json()["stages"]["first"]["custom"]
        saved = httpx.put(path, headers=auth, json={"first": ["{{ step * 2 }} days on?"]})
        assert saved.status_code == 200, saved.text
