"""Request bodies are bounded, and an API request's token is checked before its body is read
(issue 15, item 4), against a real `radiosilence serve`: a 20 MB body answers 413 (401 without
a token) at once, and the server's memory does not grow by more than a few MB."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.factories import make_user
from tests.support.processes import cli_env, rss_bytes, run_cli, serving_process

pytestmark = pytest.mark.integration
LIMIT = 1_048_576  # the default, left unset below
TWENTY_MB = 20 * 1024 * 1024


@dataclass
class Server:
    base: str
    pid: int
    token: str

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.base.removeprefix("http://").split(":")
        return host, int(port)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("bodylimit")
    env = cli_env(
        database_url=f"sqlite+aiosqlite:///{tmp / 'rs.db'}",
        secret_key=TEST_SECRET_KEY,
        workers_enabled="false",
    )
    assert run_cli("migrate", env=env, cwd=tmp).returncode == 0
    token = make_user("rep@seller.example", env, tmp)
    with serving_process(env, tmp, tmp / "serve.log") as (base, proc):
        yield Server(base=base, pid=proc.pid, token=token)


def raw_request(server: Server, head: str, body: bytes = b"") -> tuple[int, bytes, float]:
    """Send the request head and `body` (perhaps less than the head announces), then read the
    answer: (status, response bytes, seconds until it came)."""
    with socket.create_connection(server.address, timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        try:
            while not complete(answer):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            pytest.fail(f"no answer within 10 s: the server waits for the body ({answer!r})")
        took = time.monotonic() - started
    return int(answer.split(b" ", 2)[1]), answer, took


def complete(answer: bytes) -> bool:
    top, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in top.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def head(path: str, *, token: str | None, length: int | None) -> str:
    lines = [f"PUT {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    chunked = "Transfer-Encoding: chunked"
    lines.append(f"Content-Length: {length}" if length is not None else chunked)
    return "\n".join(lines) + "\n"


def warm(server: Server) -> int:
    auth = {"Authorization": f"Bearer {server.token}"}
    for _ in range(20):  # the first requests import and cache what every request needs
        httpx.put(f"{server.base}/api/v1/mailboxes/1/rules", json={}, headers=auth, timeout=10)
    return rss_bytes(server.pid)


def test_a_20mb_body_is_refused_before_it_is_read(server: Server) -> None:
    before = warm(server)
    path = "/api/v1/mailboxes/1/rules"
    for _ in range(5):
        status, answer, took = raw_request(server, head(path, token=server.token, length=TWENTY_MB))
        assert status == 413, answer
        assert b"RADIOSILENCE_MAX_BODY_BYTES" in answer
        assert took < 1.0
    # Streamed without a length: read up to the limit, then refused.
    chunk = b"x" * 65536
    chunked = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * (LIMIT // len(chunk) + 1)
    status, answer, _ = raw_request(server, head(path, token=server.token, length=None), chunked)
    assert status == 413, answer
    grown = rss_bytes(server.pid) - before
    assert grown < 5 * 1024 * 1024, f"the server grew by {grown / 1e6:.1f} MB"


def test_the_token_is_checked_before_the_body_is_read(server: Server) -> None:
    before = warm(server)
    for token in (None, "not-a-token"):
        for length in (TWENTY_MB, LIMIT // 2):  # over and under the limit alike
            status, answer, took = raw_request(
                server, head("/api/v1/mailboxes/1/rules", token=token, length=length)
            )
            assert status == 401, answer
            assert b"www-authenticate: bearer" in answer.lower()
            assert took < 1.0
    grown = rss_bytes(server.pid) - before
    assert grown < 5 * 1024 * 1024, f"the server grew by {grown / 1e6:.1f} MB"


def test_bodies_within_the_limit_are_read_as_before(server: Server) -> None:
    auth = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.base, headers=auth, timeout=10) as api:
        assert api.post("/api/v1/webhooks", json={"url": "https://x.example/h"}).status_code in (
            201,
            422,
        )
        padded = {"url": "https://hooks.example.com/h", "description": "d" * (LIMIT // 2)}
        answer = api.post("/api/v1/webhooks", json=padded)
        assert answer.status_code != 413, answer.text

        def chunks() -> Iterator[bytes]:
            yield b'{"url": "https://hooks.example.com/h", "description": "'
            yield b"d" * 1000
            yield b'"}'

        streamed = api.post(
            "/api/v1/webhooks", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code != 413, streamed.text
        assert streamed.status_code < 500, streamed.text
