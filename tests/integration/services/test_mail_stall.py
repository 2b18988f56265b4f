"""One user's stalled mail servers cannot starve the others (issue 15, item 2), against a real
`radiosilence serve`: 42 concurrent mailbox connections to a port that accepts and never speaks
held every worker thread for 30 s, and another user's connection test hung for over a minute.
Now 50 such requests from one user take at most RADIOSILENCE_MAIL_REQUESTS_PER_USER mail
threads (the rest answer 429 with Retry-After at once), and another user's requests, a real
connection test included, are answered within 1 s meanwhile."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.factories import ImapUser, make_user
from tests.support.processes import cli_env, run_cli, serving

pytestmark = pytest.mark.integration
STALLED = 50


def test_stalled_connection_tests_of_one_user_leave_the_others_served(
    tmp_path: Path, imap_user: ImapUser
) -> None:
    env = cli_env(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'rs.db'}",
        secret_key=TEST_SECRET_KEY,
        workers_enabled="false",
    )  # the tests' IMAP hosts are on loopback: cli_env allows private hosts
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    mallory = {"Authorization": f"Bearer {make_user('mallory@seller.example', env, tmp_path)}"}
    rita = {"Authorization": f"Bearer {make_user('rita@seller.example', env, tmp_path)}"}

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(128)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_never_speak() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except TimeoutError:
                continue

    acceptor = threading.Thread(target=accept_and_never_speak)
    acceptor.start()
    stalled_body = imap_user.mailbox_body()
    stalled_body["imap"] = {**stalled_body["imap"], "port": silent.getsockname()[1]}  # type: ignore[dict-item]
    try:
        with serving(env, tmp_path, tmp_path / "serve.log") as base:
            mine = httpx.post(
                f"{base}/api/v1/mailboxes", headers=rita, json=imap_user.mailbox_body(), timeout=30
            )
            assert mine.status_code == 201, mine.text
            mailbox = f"{base}/api/v1/mailboxes/{mine.json()['id']}"

            def stalled(i: int) -> tuple[int, str | None, float]:
                started = time.monotonic()
                body = {**stalled_body, "name": f"Stalled {i}"}
                answer = httpx.post(
                    f"{base}/api/v1/mailboxes", headers=mallory, json=body, timeout=120
                )
                took = time.monotonic() - started
                return answer.status_code, answer.headers.get("retry-after"), took

            with ThreadPoolExecutor(max_workers=STALLED) as pool:
                storm = [pool.submit(stalled, i) for i in range(STALLED)]
                time.sleep(1.0)  # every stalled request is in the server now
                timings = {}
                with httpx.Client(headers=rita, timeout=30) as api:
                    for name, call in [
                        ("healthz", lambda: api.get(f"{base}/healthz")),
                        ("list", lambda: api.get(f"{base}/api/v1/mailboxes")),
                        ("test", lambda: api.post(f"{mailbox}/test")),
                        (
                            "connect",
                            lambda: api.post(
                                f"{base}/api/v1/mailboxes",
                                json={**imap_user.mailbox_body(), "name": "Second"},
                            ),
                        ),
                        ("test again", lambda: api.post(f"{mailbox}/test")),
                    ]:
                        started = time.monotonic()
                        answer = call()
                        timings[name] = time.monotonic() - started
                        assert answer.status_code < 300, (name, answer.text)
                results = [future.result() for future in storm]
    finally:
        stop.set()
        acceptor.join()
        for sock in held:
            sock.close()
        silent.close()

    assert max(timings.values()) < 1.0, timings
    busy = [r for r in results if r[0] == 429]
    tried = [r for r in results if r[0] != 429]
    assert len(tried) <= 3, tried  # RADIOSILENCE_MAIL_REQUESTS_PER_USER, the default
    assert all(status == 422 for status, _, _ in tried), tried  # the short test timeout
    assert all(took < 15 for _, _, took in tried), tried
    assert len(busy) >= STALLED - 3
    assert all(retry == "10" and took < 5 for _, retry, took in busy), busy[:5]
